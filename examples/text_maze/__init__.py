"""TextMaze, a complete small custom environment trained end to end through the Reflect-RL pipeline."""

from examples.text_maze.env import TextMazeEnv

__all__ = ["TextMazeEnv"]

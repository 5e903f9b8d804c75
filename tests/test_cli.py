import json
import subprocess
import sys

import gymnasium as gym
import pytest

import environments  # noqa: F401
from datamodules.demo import main as demo_main
from datamodules.play import Session
from lightning_modules.cli import main as cli_main


def scripted(commands):
    queue = list(commands)

    def read(_prompt):
        if not queue:
            raise EOFError
        return queue.pop(0)

    return read


def test_play_session_takes_labels_shows_reflection_and_oracle_and_finishes_an_episode():
    env = gym.make("ReflectRL/DangerousTaxi-v0", observation_format="compact")
    _, info = env.unwrapped.reset(seed=5, options={"stage": "pickup"})
    from environments.dangerous_taxi import oracle_path

    path = oracle_path(info["state"], "pickup")
    labels = ["ABCDEF"[action] for action in path]
    screen = []
    Session(
        env, seed=5, stage="pickup", read=scripted(["help", "reflect", "oracle", "zz", *labels]), write=screen.append
    ).run()
    text = "\n".join(screen)
    assert "# Analyze:" in text and "the best action now is" in text
    assert f"oracle: {labels[0]}." in text
    assert "'zz' is not an action label" in text
    assert "episode over: success" in text
    assert "=== episode 2" in text  # a new episode starts after the end


def test_play_a_dangerous_action_ends_the_episode_as_failure():
    env = gym.make("ReflectRL/DangerousTaxi-v0")
    rows = lambda observation: observation.splitlines()[2:7]  # noqa: E731
    seed = next(s for s in range(100) if any(row[3] in "TO" for row in rows(env.reset(seed=s)[0])))  # west border
    screen = []
    Session(env, seed=seed, read=scripted(["D"]), write=screen.append).run()
    assert "reward -0.500" in screen
    assert any("episode over: failure, return -0.500" in line for line in screen)


def test_demo_writes_transcripts_with_prompts_and_negative_examples(tmp_path, capsys):
    assert demo_main(["--output-dir", str(tmp_path), "--episodes", "2", "--mistake-prob", "0.3"]) == 0
    taxi = [json.loads(line) for line in (tmp_path / "DangerousTaxi-v0.jsonl").read_text().splitlines()]
    explore = [json.loads(line) for line in (tmp_path / "AutoExplore-v0.jsonl").read_text().splitlines()]
    assert {t["seed"] for t in taxi} == {0, 1} and explore
    for turn in taxi + explore:
        assert turn["prompt"].endswith("# Action:") and "# Analyze:" in turn["prompt"]
        assert turn["negative_example"] == (turn["action"] != turn["oracle_action"])
    assert "success" in capsys.readouterr().out


def test_cli_rejects_unknown_commands_and_environments(capsys):
    assert cli_main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="unknown environment"):
        cli_main(["play", "ReflectRL/Nope-v0"])
    with pytest.raises(SystemExit, match="Unknown curriculum stage"):
        cli_main(["play", "ReflectRL/DangerousTaxi-v0", "--stage", "moon"])


def test_console_script_plays_from_stdin():
    result = subprocess.run(
        [sys.executable, "-m", "lightning_modules.cli", "play", "ReflectRL/DangerousTaxi-v0", "--seed", "1"],
        input="reflect\noracle\nquit\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "# Actions:\nA. go south" in result.stdout and "oracle:" in result.stdout

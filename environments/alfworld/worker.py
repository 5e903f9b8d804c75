"""The code that runs inside an engine's worker process: ALFWorld's text engine behind a pipe.

TextWorld's PDDL engine is not thread-safe (module-level parser state; the fast-downward translator swaps
``sys.stdout`` and ``sys.argv``), so every environment hosts its engine in a process of its own
(:class:`environments.alfworld.engine.EngineProcess`) and only this module imports ``textworld`` and ``alfworld``.

Requests are tuples ``(command, *args)``; every reply is ``("ok", payload)`` or
``("error", exception_type_name, message, traceback_text)``:

* ``("reset", game_file, build)``: build the game file first when ``build`` is ``{"trial_dir": ..., "seed": ...}``
  (and check that the planner solves it), load the game unless it is the one loaded already, start an episode;
* ``("step", command)``: play one admissible command;
* ``("close",)``: reply and exit.

A state payload is a dict with ``feedback`` (the engine's text), ``admissible_commands`` (sorted), ``won`` and
``expert_plan`` (the planner's whole remaining plan, from ``AlfredExpert(expert_type="planner")``).
"""

from __future__ import annotations

import json
import os
import traceback
from typing import Any

from environments.alfworld.dataset import GameDataError, build_game_file, write_json_atomic


class AlfredEngine:
    """One ALFWorld text game at a time: TextWorld's ``PddlEnv`` with ALFWorld's wrappers and the planner expert.

    The wrappers are built as ALFWorld's ``AlfredTWEnv.init_env`` builds them (``AlfredDemangler``,
    ``AlfredInfos``, ``AlfredExpert``), except that the expert type is passed by keyword (``init_env`` passes it
    positionally, into the ``env`` argument). The environment is created once; a new game is ``load``-ed into it.
    """

    def __init__(self) -> None:
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredExpert, AlfredInfos

        self._textworld = textworld
        self._request_infos = textworld.EnvInfos(
            won=True, admissible_commands=True, policy_commands=True, extras=["gamefile", "expert_plan"]
        )
        self._wrappers = [AlfredDemangler(shuffle=False), AlfredInfos, AlfredExpert(expert_type="planner")]
        self._env: Any = None
        self._game_file: str | None = None

    def load(self, game_file: str) -> None:
        """Load ``game_file`` unless it is loaded already (a reload re-parses the domain and grammar)."""
        if game_file == self._game_file:
            return
        self._game_file = None
        if self._env is None:
            self._env = self._textworld.start(game_file, self._request_infos, self._wrappers)
        else:
            self._env.load(game_file)
        self._game_file = game_file

    def reset(self, game_file: str) -> dict[str, Any]:
        """Start an episode of ``game_file``.

        Raises:
            GameDataError: when the game cannot be loaded or started (naming the file).
        """
        try:
            self.load(game_file)
            return self._payload(self._env.reset())
        except BaseException as error:  # the PDDL translator raises SystemExit on parse errors
            if isinstance(error, KeyboardInterrupt):
                raise
            self._game_file = None
            raise GameDataError(
                f"The ALFWorld engine cannot load the game {game_file!r} ({type(error).__name__}: {error}). Check the "
                f"initial_state.pddl it was built from (regenerate the trial, or delete its folder)."
            ) from error

    def step(self, command: str) -> dict[str, Any]:
        """Play ``command`` in the current episode."""
        if self._env is None or self._game_file is None:
            raise RuntimeError("step before reset: no game is loaded.")
        state, _, _ = self._env.step(command)
        return self._payload(state)

    def build(self, trial_dir: str, game_file: str, seed: int) -> None:
        """Build ``game_file`` from a trial folder and record whether the planner solves it, as alfworld-generate does.

        Raises:
            GameDataError: when the game cannot be built or the planner finds no plan.
        """
        path = build_game_file(trial_dir, game_file, seed)
        try:
            self._game_file = None
            payload = self.reset(str(path))
            if payload["won"] or not payload["expert_plan"]:
                raise GameDataError(
                    f"The planner finds no plan for the game of {trial_dir!r} (or it is won at the start); it cannot "
                    f"be played. Check its initial_state.pddl and traj_data.json."
                )
        except BaseException:
            path.unlink(missing_ok=True)  # leave the trial unbuilt: the next reset tries again and says why
            raise
        with open(path) as handle:
            data = json.load(handle)
        data["solvable"] = True
        data["walkthrough"] = payload["expert_plan"]
        write_json_atomic(path, data)

    @staticmethod
    def _payload(state: Any) -> dict[str, Any]:
        return {
            "feedback": str(state["feedback"]),
            "admissible_commands": [str(c) for c in state["admissible_commands"]],
            "won": bool(state["won"]),
            "expert_plan": [str(c) for c in state.get("extra.expert_plan") or []],
        }


def serve(conn: Any, alfworld_data: str) -> None:
    """Serve engine requests on ``conn`` until ``("close",)`` or the pipe closes (the worker process's target).

    ``ALFWORLD_DATA`` is set (when unset) before ``alfworld`` is imported, which would otherwise create
    ``~/.cache/alfworld``.
    """
    os.environ.setdefault("ALFWORLD_DATA", alfworld_data)
    engine: AlfredEngine | None = None
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        command, args = request[0], request[1:]
        if command == "close":
            conn.send(("ok", None))
            return
        try:
            if engine is None:
                engine = AlfredEngine()
            if command == "reset":
                game_file, build = args
                if build is not None:
                    engine.build(build["trial_dir"], game_file, build["seed"])
                reply: Any = ("ok", engine.reset(game_file))
            elif command == "step":
                reply = ("ok", engine.step(args[0]))
            else:
                raise ValueError(f"unknown engine request {command!r}")
        except BaseException as error:  # forward everything (SystemExit from the PDDL translator too)
            if isinstance(error, KeyboardInterrupt):
                return
            reply = ("error", type(error).__name__, str(error), traceback.format_exc())
        try:
            conn.send(reply)
        except (EOFError, OSError, BrokenPipeError):
            return

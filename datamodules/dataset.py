"""SFT datasets on disk: teacher rollouts as JSONL, one turn per line, to keep, share, inspect and train from.

``reflect-rl export-dataset`` plays the teacher-mode rollout of a stage's config (the same episodes that
``data.teacher_episodes`` would play on the fly, with the rule-based or the LLM teacher) and writes one record per
turn::

    {"env_id": "ReflectRL/DangerousTaxi-v0", "seed": 3, "step": 1, "observation": "...",
     "actions": ["go south", "go north", ...], "reflection": "...", "label": "B", "oracle_action": "go north",
     "taken_action": "go east", "negative": true, "teacher": "rules"}

``label`` is the label of the oracle's action among ``actions`` (shown in this order): the policy's SFT target.
``taken_action`` is what the behaviour policy did, a deliberate mistake when ``negative`` is true (the next turn's
reflection is then corrective). Required fields: ``env_id``, ``seed``, ``observation``, ``actions`` and ``label``;
the others are optional, and fields this module does not know are ignored. ``RolloutDataModule(dataset=...)`` trains
the SFT stages from such a file instead of playing the teacher.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from datamodules.prompt import action_label, label_index
from datamodules.rollout import Turn
from environments.jsonl import jsonl_records, output_file

#: Fields every record must have, with their JSON types.
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "env_id": str,
    "seed": int,
    "observation": str,
    "actions": list,
    "label": str,
}
#: Optional fields (``None`` allowed for ``reflection``).
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "step": int,
    "reflection": (str, type(None)),
    "oracle_action": str,
    "taken_action": str,
    "negative": bool,
    "teacher": str,
}


class DatasetFileError(ValueError):
    """A malformed dataset file; the message names the file and the line."""


def turn_record(turn: Turn, env_id: str, teacher: str = "rules") -> dict[str, Any]:
    """The JSONL record of one teacher turn.

    Raises:
        ValueError: for a turn without an oracle action (nothing to learn from).
    """
    if turn.oracle is None:
        raise ValueError(f"Turn {turn.step} of the episode with seed {turn.seed} has no oracle action to learn.")
    record: dict[str, Any] = {
        "env_id": env_id,
        "seed": int(turn.seed),
        "step": int(turn.step),
        "observation": turn.observation,
        "actions": list(turn.actions),
        "reflection": turn.reflection,
        "label": action_label(turn.oracle),
        "oracle_action": turn.actions[turn.oracle],
    }
    if turn.taken is not None:
        record["taken_action"] = turn.actions[turn.taken]
    record["negative"] = bool(turn.negative)
    record["teacher"] = teacher
    return record


def write_dataset(
    episodes: Iterable[Sequence[Turn]], path: str | os.PathLike[str], env_id: str, teacher: str = "rules"
) -> int:
    """Write the turns of ``episodes`` as JSONL (written to a temporary file, then moved); return the turn count.

    Example:
        >>> episodes = TeacherStream(envs, mistake_prob=0.2).episodes(100)
        >>> write_dataset(episodes, "data/taxi.jsonl", "ReflectRL/DangerousTaxi-v0", teacher="rules")  # turns written
    """
    path = output_file(path, "Dataset")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    count = 0
    with temporary.open("w", encoding="utf-8") as out:
        for episode in episodes:
            for turn in episode:
                out.write(json.dumps(turn_record(turn, env_id, teacher), ensure_ascii=True) + "\n")
                count += 1
    os.replace(temporary, path)
    return count


def _check_type(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) and kind in (int, str, list):  # JSON true is not a number
        return False
    return isinstance(value, kind)


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("null" if k is type(None) else k.__name__ for k in kinds)


def record_to_turn(record: Any, env_id: str | None = None, max_actions: int | None = None) -> Turn:
    """Check one record and turn it into a :class:`Turn` (the shown order is the record's ``actions``).

    Raises:
        ValueError: naming the missing or bad field.
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
    missing = [name for name in REQUIRED if name not in record]
    if missing:
        raise ValueError(
            f"missing field {', '.join(repr(m) for m in missing)} (every record needs {', '.join(REQUIRED)})"
        )
    for name, kind in {**REQUIRED, **OPTIONAL}.items():
        if name in record and not _check_type(record[name], kind):
            raise ValueError(f"field {name!r} must be {_type_name(kind)}, got {type(record[name]).__name__}")
    actions = record["actions"]
    if not actions or not all(isinstance(a, str) for a in actions):
        raise ValueError("field 'actions' must be a non-empty list of strings")
    if max_actions is not None and len(actions) > max_actions:
        raise ValueError(f"{len(actions)} actions, more than the environment's action space ({max_actions})")
    if env_id is not None and record["env_id"] != env_id:
        raise ValueError(f"the record is from {record['env_id']!r}, but the data module plays {env_id!r}")
    oracle = label_index(record["label"], len(actions))
    if "oracle_action" in record and record["oracle_action"] != actions[oracle]:
        raise ValueError(
            f"label {record['label']!r} is {actions[oracle]!r}, but oracle_action is {record['oracle_action']!r}"
        )
    taken = None
    if "taken_action" in record:
        if record["taken_action"] not in actions:
            raise ValueError(f"taken_action {record['taken_action']!r} is not among the actions")
        taken = actions.index(record["taken_action"])
    return Turn(
        observation=record["observation"],
        actions=list(actions),
        reflection=record.get("reflection"),
        oracle=oracle,
        negative=bool(record.get("negative", False)),
        order=list(range(len(actions))),
        seed=record["seed"],
        step=int(record.get("step", 0)),
        taken=taken,
    )


def read_dataset(path: str | os.PathLike[str], env_id: str | None = None, max_actions: int | None = None) -> list[Turn]:
    """Read a dataset written by :func:`write_dataset` (blank lines are skipped).

    Args:
        path: The JSONL file.
        env_id: If given, every record must come from this environment.
        max_actions: If given, no record may have more actions than this.

    Raises:
        FileNotFoundError: if the file does not exist; IsADirectoryError or OSError: if it is a directory, a named
            pipe or anything else than a regular file.
        DatasetFileError: for bad JSON (or not UTF-8, or nested too deeply), a missing or bad field, or an empty
            file, naming the file and the line.

    Example:
        >>> turns = read_dataset("data/taxi.jsonl", env_id="ReflectRL/DangerousTaxi-v0", max_actions=6)
        >>> turns[0].actions[turns[0].oracle], turns[0].reflection
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Dataset {path} does not exist (make one with reflect-rl export-dataset).")
    turns: list[Turn] = []
    for number, record in jsonl_records(path, DatasetFileError, "Dataset"):
        try:
            turns.append(record_to_turn(record, env_id, max_actions))
        except ValueError as error:
            raise DatasetFileError(f"{path}:{number}: {error}.") from None
    if not turns:
        raise DatasetFileError(f"{path}: no records.")
    return turns


def episode_count(turns: Sequence[Turn]) -> int:
    """Number of episodes among the turns (a turn of a new seed, or step 0, starts one)."""
    return len(_episode_starts(turns))


def _episode_starts(turns: Sequence[Turn]) -> list[int]:
    starts = []
    for index, turn in enumerate(turns):
        if index == 0 or turn.seed != turns[index - 1].seed or turn.step <= turns[index - 1].step:
            starts.append(index)
    return starts


def first_episodes(turns: Sequence[Turn], count: int) -> list[Turn]:
    """The turns of the first ``count`` episodes of a dataset.

    Raises:
        ValueError: if the dataset has fewer episodes.
    """
    starts = _episode_starts(turns)
    if count > len(starts):
        raise ValueError(
            f"teacher_episodes={count} but the dataset has only {len(starts)} episodes: lower teacher_episodes or "
            "set it to null to use all of them."
        )
    end = starts[count] if count < len(starts) else len(turns)
    return list(turns[:end])


def export_dataset(datamodule: Any, episodes: int, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Play ``episodes`` teacher episodes of a :class:`~datamodules.RolloutDataModule` and write them as JSONL.

    The episodes are those its training stream plays (seeds from ``data.seed``, the mistake probability
    ``data.mistake_prob``, the ``teacher`` of the config), i.e. what ``teacher_episodes: <episodes>`` trains on.
    With an LLM teacher the episodes are played first without reflections (what is played does not depend on them)
    and the LLM is then asked about the kept turns only: one request per distinct turn, none for the turns of the
    episodes the stream's other lanes had begun.

    Returns:
        A summary: ``episodes``, ``turns``, ``negatives``, ``teacher``, ``path`` and, with an LLM teacher, its
        ``usage`` (requests, cache hits, retries, tokens) and ``per_turn``, that usage divided by the turns written.

    Example:
        >>> datamodule = RolloutDataModule("ReflectRL/DangerousTaxi-v0", stage="pickup", mistake_prob=0.2)
        >>> export_dataset(datamodule, episodes=200, path="data/taxi.jsonl")
        {'episodes': 200, 'turns': ..., 'negatives': ..., 'teacher': 'rules', 'path': 'data/taxi.jsonl'}
    """
    if episodes < 1:
        raise ValueError(f"episodes must be a positive number, got {episodes}.")
    datamodule.with_reflection = True
    played = datamodule.train_stream().episodes(episodes)  # an LLM teacher reflects on the kept turns only
    turns = write_dataset(played, path, datamodule.hparams.env_id, datamodule.teacher_name)
    summary = {
        "episodes": len(played),
        "turns": turns,
        "negatives": sum(t.negative for episode in played for t in episode),
        "teacher": datamodule.teacher_name,
        "path": str(path),
    }
    client = datamodule.llm_client
    if client is not None:
        usage = client.usage
        summary["usage"] = usage
        summary["per_turn"] = {name: usage[name] / turns for name in ("requests", "prompt_tokens", "completion_tokens")}
    return summary


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``--data.key=value`` (or ``--data.key value``) arguments as a dict of dotted keys; values are YAML.

    Raises:
        ValueError: for an argument that is not of that form.
    """
    overrides: dict[str, Any] = {}
    items = list(items)
    while items:
        item = items.pop(0)
        if not item.startswith("--data."):
            raise ValueError(f"Unknown argument {item!r}; data options are given as --data.<name>=<value>.")
        key, has_value, value = item[len("--data.") :].partition("=")
        if not has_value:
            if not items:
                raise ValueError(f"{item} needs a value.")
            value = items.pop(0)
        overrides[key] = yaml.safe_load(value)
    return overrides


def llm_config_from_args(args: argparse.Namespace) -> dict[str, Any] | None:
    """An endpoint config from ``--base-url``/``--model``/... flags (``None`` when no ``--model`` is given)."""
    if not args.model:
        return None
    config: dict[str, Any] = {"base_url": args.base_url, "model": args.model}
    config["api_key_env"] = None if str(args.api_key_env).lower() in ("", "none", "null") else args.api_key_env
    for name in ("max_concurrency", "timeout", "max_retries"):
        value = getattr(args, name, None)
        if value is not None:
            config[name] = value
    return config


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that describe an OpenAI-compatible endpoint (shared by ``export-dataset`` and ``evaluate-llm``)."""
    from datamodules.llm.client import DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL

    group = parser.add_argument_group("endpoint (OpenAI-compatible chat completions)")
    group.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"API root (default {DEFAULT_BASE_URL})")
    group.add_argument("--model", default=None, help="model name, e.g. gpt-4 or mistralai/Mistral-7B-Instruct-v0.2")
    group.add_argument(
        "--api-key-env",
        default=DEFAULT_API_KEY_ENV,
        help=f"environment variable holding the API key (default {DEFAULT_API_KEY_ENV}; 'none' for a keyless server)",
    )
    group.add_argument("--max-concurrency", type=int, default=None, help="requests in flight at once (default 8)")
    group.add_argument("--timeout", type=float, default=None, help="seconds per request (default 60)")
    group.add_argument("--max-retries", type=int, default=None, help="retries on rate limits and errors (default 6)")
    group.add_argument("--cache-dir", default=None, help="on-disk cache of completions (default under the output)")

"""The ``reflect-rl export-dataset`` command: a stage config's teacher rollout written as a JSONL dataset.

It needs both the dataset format (:mod:`datamodules.dataset`) and the data module that plays the rollout
(:mod:`datamodules.rollout_datamodule`, which itself reads datasets), so it lives above both and neither of them
imports the other back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datamodules.dataset import add_endpoint_arguments, export_dataset, llm_config_from_args, parse_overrides
from datamodules.rollout_datamodule import RolloutDataModule
from environments.jsonl import output_file, regular_file


def main(argv: list[str] | None = None) -> int:
    """``reflect-rl export-dataset``: write a stage config's teacher rollout as a JSONL dataset.

    Prints the episodes, turns and negative examples written and, with an LLM teacher, the requests and tokens spent,
    in total and per kept turn.

    Example:
        >>> main(["--config", "configs/dangerous_taxi/reflection_sft.yaml", "--episodes", "3", "--output", "t.jsonl",
        ...       "--base-url", "http://127.0.0.1:8000/v1", "--model", "mistral", "--api-key-env", "none"])
        0
    """
    parser = argparse.ArgumentParser(
        prog="reflect-rl export-dataset",
        description="Play the teacher-mode rollout of a config's data section and write it as a JSONL dataset "
        "(train the SFT stages from it with --data.dataset=<file>).",
        epilog="Data options of the config can be overridden: --data.mistake_prob=0.3 --data.seed=5. "
        "With --model the reflections come from that model behind the endpoint (the LLM teacher).",
    )
    parser.add_argument("--config", action="append", required=True, help="a stage config (repeatable, merged)")
    parser.add_argument("--episodes", type=int, required=True, help="teacher episodes to play")
    parser.add_argument("--output", type=Path, required=True, help="the JSONL file to write")
    add_endpoint_arguments(parser)
    parser.add_argument("--max-words", type=int, default=None, help="reflection length the LLM teacher asks for")
    parser.add_argument("--temperature", type=float, default=None, help="the LLM teacher's temperature (default 0)")
    args, rest = parser.parse_known_args(argv)
    for config in args.config:
        regular_file(config, "--config")
    output_file(args.output, "--output")
    overrides = parse_overrides(rest)
    llm = llm_config_from_args(args)
    if llm is not None:
        for name in ("max_words", "temperature"):
            if getattr(args, name) is not None:
                llm[name] = getattr(args, name)
        overrides["teacher"] = llm
    datamodule = RolloutDataModule.from_config(args.config, overrides)
    datamodule.llm_cache_dir = args.cache_dir or str(args.output.parent / "llm_cache")
    summary = export_dataset(datamodule, args.episodes, args.output)
    print(
        f"{summary['episodes']} episodes, {summary['turns']} turns ({summary['negatives']} negative examples), "
        f"teacher {summary['teacher']} -> {summary['path']}",
        file=sys.stderr,
    )
    if datamodule.llm_client is not None:
        per_turn = summary["per_turn"]
        print(
            f"LLM teacher: {datamodule.llm_client.usage_summary()}; per kept turn: {per_turn['requests']:.2f} "
            f"requests, {per_turn['prompt_tokens']:.0f} prompt + {per_turn['completion_tokens']:.0f} completion tokens",
            file=sys.stderr,
        )
    return 0

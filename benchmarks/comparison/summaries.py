"""One finished run summarised into a small JSON file under ``docs/`` (runs/ is not kept), and those files read back."""

from __future__ import annotations

import json
from pathlib import Path

from datamodules.stage_config import load_stage_config
from lightning_modules.pipeline import BASELINE_STAGES, STAGES

from . import ROOT
from .curves import Validation, training_curve, validation_timeline
from .methods import METHODS
from .tensorboard import peak_memory, stage_span


def run_config(output: Path, stage: str, env: str) -> dict:
    """The configuration a stage of a run really used (LightningCLI's copy), else the profile's config."""
    saved = output / stage / "version_0" / "config.yaml"
    return load_stage_config(saved if saved.is_file() else ROOT / "configs" / env / f"{stage}.yaml")


def budget(env: str, output: Path) -> str:
    """The budget every method of ``env`` shares, read from the configs of a base run, as one sentence."""
    configs = {s: run_config(output, s, env) for s in STAGES}
    teacher = configs["reflection_sft"]["data"].get("teacher_episodes") or "unlimited"
    steps = {s: c["trainer"]["max_steps"] for s, c in configs.items()}
    rl = configs["reflect_rl"]
    per_step = rl["data"].get("episodes_per_step", "?")
    return (
        f"{teacher} teacher episodes for SFT; {steps['reflection_sft']} reflection-SFT and {steps['policy_sft']} "
        f"policy-SFT updates (the no-reflection policy: {steps['reflection_sft'] + steps['policy_sft']} SFT updates of "
        f"a fresh model of the same size); {steps['reflect_rl']} RL steps of {per_step} episodes at lr "
        f"{rl['model']['init_args'].get('lr')}, KL {rl['model']['init_args'].get('kl_coef', 0)}; the test set: "
        f"{rl['data'].get('eval_stage') or 'default'} stage, seeds from {rl['data'].get('test_seed', 2_000_000)}"
    )


def validation_intervals(env: str, output: Path) -> str:
    """How often each stage with a policy validated, read from the configs of a base run."""
    every = {stage: run_config(output, stage, env)["trainer"].get("val_check_interval")
             for stage in ("policy_sft", "reflect_rl")}  # fmt: skip
    return f"{every['policy_sft']} policy-SFT updates and {every['reflect_rl']} RL steps"


def run_minutes(output: Path) -> float:
    """Wall-clock minutes of the stages (tests included) that a run trained itself; shared stages are not counted."""
    spans = [stage_span(log_dir) for log_dir in sorted(output.glob("*/version_0")) if not log_dir.parent.is_symlink()]
    return sum((end - start) / 60 for start, end in filter(None, spans))


def summarise_run(env: str, variant: str, output: Path) -> dict:
    """Everything the page reads of one finished run, small enough to keep in docs/.

    Held-out results, the stages the run trained itself and their peak memory, the RL training curves, each method's
    validation timeline, its minutes, and the facts of its configs the page quotes (budget, validation intervals, the
    length of reflection SFT, the ``eval_group_by`` key).

    Args:
        env: A folder of ``configs/``.
        variant: The run's pipeline variant; the summary holds what the methods of this variant need.
        output: The run's output directory.

    Returns:
        A JSON-serialisable dict.
    """
    methods = [name for name, method in METHODS.items() if method.variant == variant]
    rl_stages = {METHODS[name].rl_stage for name in methods} - {None}
    paths = [output / stage for stage in (*STAGES, *BASELINE_STAGES)]
    trained = [path.name for path in paths if path.is_dir() and not path.is_symlink()]
    memory = {stage: peak for stage in trained if (peak := peak_memory(output / stage))}
    return {
        "results": json.loads((output / "results.json").read_text())["results"],
        "trained_stages": trained,  # not the stages it shares with another run (symlinked exports)
        "curves": {stage: training_curve(output / stage / "version_0") for stage in sorted(rl_stages)},
        "timelines": {name: validation_timeline(output, METHODS[name].stages) for name in methods},
        "peak_rss_mb": memory,
        "minutes": run_minutes(output),
        "budget": budget(env, output),
        "validation_intervals": validation_intervals(env, output),
        "reflection_steps": run_config(output, "reflection_sft", env)["trainer"]["max_steps"],
        "group_key": run_config(output, "reflect_rl", env)["data"].get("eval_group_by"),
    }


def summary_path(data_dir: Path, env: str, seed: int, variant: str) -> Path:
    """Where the summary of one run is kept."""
    return data_dir / env / f"seed{seed}_{variant}.json"


def save_summary(data_dir: Path, env: str, seed: int, variant: str, output: Path) -> None:
    """Summarise a finished run into ``data_dir`` (see :func:`summarise_run`)."""
    path = summary_path(data_dir, env, seed, variant)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summarise_run(env, variant, output), indent=1) + "\n")


def read_summary(path: Path) -> dict:
    """A kept summary, with its curves as tuples and its timelines as :class:`Validation` points."""
    summary = json.loads(path.read_text())
    summary["curves"] = {k: [tuple(p) for p in v] for k, v in summary["curves"].items()}
    summary["timelines"] = {k: [Validation(*p) for p in v] for k, v in summary["timelines"].items()}
    return summary


def load_summaries(data_dir: Path, envs: list[str], methods: list[str]) -> dict[tuple[str, int, str], dict]:
    """The kept summaries of ``envs`` that one of ``methods`` reads (:func:`read_summary`).

    Returns:
        ``(env, seed, variant) -> summary``.
    """
    wanted = {METHODS[m].variant for m in methods}
    summaries = {}
    for env in envs:
        for path in sorted((data_dir / env).glob("seed*_*.json")):
            seed, variant = path.stem.removeprefix("seed").split("_", 1)
            if variant in wanted:
                summaries[(env, int(seed), variant)] = read_summary(path)
    return summaries

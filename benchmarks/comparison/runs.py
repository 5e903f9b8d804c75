"""Launching the pipeline runs of the comparison: the stage configs of a variant and seed, the run, finished runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from datamodules.stage_config import load_stage_config
from lightning_modules.pipeline import STAGES

from . import ROOT
from .methods import METHODS

#: The seed of a run's training episodes is ``seed * TRAINING_SEED_STRIDE``; validation and test seeds stay fixed.
TRAINING_SEED_STRIDE = 100_003


def invocation() -> str:
    """The comparison command this process was started with, as the page and ``commands.txt`` quote it."""
    return "python benchmarks/compare.py " + " ".join(sys.argv[1:])


def without_negatives(config: dict) -> None:
    """Make an SFT stage's teacher never err on purpose: ``data.mistake_prob`` 0 is the only setting.

    ``NegativeExampleCallback`` is removed rather than patched, so that nothing else sets the probability.
    """
    config["data"]["mistake_prob"] = 0.0
    callbacks = config["trainer"]["callbacks"]
    callbacks[:] = [c for c in callbacks if not c["class_path"].endswith("NegativeExampleCallback")]


def without_curriculum(config: dict) -> None:
    """Make the RL stage train on its final curriculum stage (the held-out episodes' ``eval_stage`` if set) only."""
    for callback in config["trainer"]["callbacks"]:
        if callback["class_path"].endswith("CurriculumCallback"):
            final = config["data"].get("eval_stage") or callback["init_args"]["stages"][-1]["name"]
            callback["init_args"] = {"stages": [{"name": final}]}


def stage_config(env: str, stage: str, variant: str, seed: int) -> dict:
    """The profile's config of one stage, seeded, with peak-memory logging, changed as ``variant`` asks.

    Args:
        env: A folder of ``configs/``.
        stage: One of the pipeline's ``STAGES``.
        variant: ``"base"``, ``"no_negatives"`` (no mistakes in the SFT stages) or ``"no_curriculum"``.
        seed: Sets ``seed_everything`` and the training episodes (never the validation or test episodes).

    Returns:
        The config, ready to be written as YAML, with its data section inline: the SFT stages' shared
        ``sft_data.yaml`` is read into each (:func:`datamodules.stage_config.load_stage_config`), so the written
        config stands alone.
    """
    config = load_stage_config(ROOT / "configs" / env / f"{stage}.yaml")
    config["seed_everything"] = seed
    config["data"]["seed"] = seed * TRAINING_SEED_STRIDE
    config["trainer"].setdefault("callbacks", []).insert(0, {"class_path": "callbacks.PeakMemoryCallback"})
    if variant == "no_negatives" and stage != "reflect_rl":
        without_negatives(config)
    if variant == "no_curriculum" and stage == "reflect_rl":
        without_curriculum(config)
    return config


def variant_configs(env: str, variant: str, seed: int, directory: Path) -> Path:
    """Write the stage configs of one variant and seed (:func:`stage_config`) into ``directory`` and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        config = stage_config(env, stage, variant, seed)
        (directory / f"{stage}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return directory


def share_sft_exports(base: Path, output: Path) -> None:
    """Link the SFT stages of the ``base`` run into ``output``, where they are missing (``no_curriculum``)."""
    for stage in STAGES[:2]:
        shared, link = base / stage, output / stage
        if shared.is_dir() and not link.exists():
            output.mkdir(parents=True, exist_ok=True)
            link.symlink_to(shared.resolve(), target_is_directory=True)


def finished(output: Path, baseline: bool) -> bool:
    """Whether a run has its results, including the no-reflection baseline's when ``baseline`` is asked for."""
    results = output / "results.json"
    if not results.is_file():
        return False
    return not baseline or "RL, no reflection" in json.loads(results.read_text())["results"]


def run_pipeline(env: str, variant: str, seed: int, run_dir: Path, baseline: bool, extra: list[str]) -> Path:
    """Run (or resume, or reuse) one ``reflect-rl pipeline`` and return its output directory.

    Args:
        env: A folder of ``configs/``.
        variant: Which configs to run (see :func:`stage_config`).
        seed: The run's seed.
        run_dir: The comparison's runs: ``<run_dir>/<env>/seed<N>/<variant>`` and the configs under
            ``<run_dir>/configs``.
        baseline: Also train the no-reflection baseline (``--baseline``).
        extra: Further pipeline arguments, e.g. ``--test-episodes 50``.

    Returns:
        The run's output directory.
    """
    seed_dir = run_dir / env / f"seed{seed}"
    output = seed_dir / variant
    configs = variant_configs(env, variant, seed, run_dir / "configs" / env / f"seed{seed}" / variant)
    if variant == "no_curriculum":  # the SFT stages are Reflect-RL's own: share their exports
        share_sft_exports(seed_dir / "base", output)
    if finished(output, baseline):
        print(f"[compare] {env} seed {seed} {variant}: reusing {output}")
        return output
    command = [sys.executable, "-m", "lightning_modules.cli", "pipeline", "--env", env, "--configs", str(configs),
               "--output-dir", str(output), "--skip-existing", *(["--baseline"] if baseline else []),
               *extra]  # fmt: skip
    print(f"[compare] {env} seed {seed} {variant}: {' '.join(command[2:])}", flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return output


def record_command(env_dir: Path) -> None:
    """Remember, next to the environment's summaries, the comparison command that trains its runs.

    The page quotes these commands; each is kept once, in the order first used.
    """
    env_dir.mkdir(parents=True, exist_ok=True)
    path = env_dir / "commands.txt"
    command = invocation()
    known = path.read_text().splitlines() if path.is_file() else []
    if command not in known:
        path.write_text("".join(f"{line}\n" for line in [*known, command]))


def existing_runs(run_dir: Path, envs: list[str], methods: list[str]) -> dict[tuple[str, int, str], Path]:
    """Every finished run of ``envs`` under ``run_dir`` that one of ``methods`` reads.

    Returns:
        ``(env, seed, variant) -> the run's output directory``.
    """
    wanted = {METHODS[m].variant for m in methods}
    return {
        (env, int(results.parts[-3].removeprefix("seed")), results.parts[-2]): results.parent
        for env in envs
        for results in sorted((run_dir / env).glob("seed*/*/results.json"))
        if results.parts[-2] in wanted
    }

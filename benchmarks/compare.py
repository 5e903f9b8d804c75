"""The paper's comparisons on the tiny CPU profiles: methods x seeds x environments, written to docs/results.md.

Usage:
    python benchmarks/compare.py [--envs dangerous_taxi] [--seeds 0 1 2] [--methods sft reflect_rl ...] [pipeline args]

Every method of an environment sees the same teacher episodes (the SFT budget of its configs), the same RL budget
and the same held-out test set; a seed changes the training episodes and the initialisation, never the test set.
Each (environment, seed, variant) is one ``reflect-rl pipeline`` run under ``--run-dir``; methods that share a stage
share its export (``no_curriculum`` reuses the stage-1 and stage-2 exports of ``reflect_rl``), and a run whose export
exists is reused, so an interrupted comparison resumes where it stopped.

Each finished run is summarised into ``docs/results_data/<env>/seed<N>_<variant>.json`` (held-out results, curves,
validation timelines, memory, minutes, the budget of its configs), and the page is written from every kept summary,
so runs made by different invocations, sessions or machines (say, three seeds of DangerousTaxi today and a fourth
tomorrow) go on one page without the runs themselves. ``--report-only`` trains nothing: it refreshes the summaries of
the runs under ``--run-dir`` and rewrites the page, quoting per environment the commands that trained its runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callbacks.curves import running_mean  # noqa: E402
from lightning_modules.pipeline import BASELINE_STAGES, STAGES, group_order, success_by_group  # noqa: E402


@dataclass(frozen=True)
class Method:
    """One row of the comparison: which pipeline variant trains it, and which policy of that run it is."""

    title: str
    variant: str  # "base", "no_negatives" or "no_curriculum": which configs the pipeline runs
    policy: str  # a row of the pipeline's results.json
    rl_stage: str | None  # the pipeline stage whose training curve this method has
    stages: tuple[str, ...]  # every stage that trains this method's players, in order


METHODS = {
    "sft": Method("SFT only", "base", "SFT policy", None, STAGES[:2]),
    "rl_no_reflection": Method(
        "SFT + RL without reflection",
        "base",
        "RL, no reflection",
        "rl_no_reflection",
        BASELINE_STAGES,
    ),
    "reflect_rl": Method("Reflect-RL", "base", "Reflect-RL", "reflect_rl", STAGES),
    "no_negatives": Method("Reflect-RL without negative examples", "no_negatives", "Reflect-RL", "reflect_rl", STAGES),
    "no_curriculum": Method("Reflect-RL without curriculum", "no_curriculum", "Reflect-RL", "reflect_rl", STAGES),
}
DEFAULT_METHODS = ("sft", "rl_no_reflection", "reflect_rl", "no_curriculum")

#: The paper's GPT-2 XL numbers (Zhou, Du, Li 2024), per environment and method, as the paper reports them.
PAPER = {
    "dangerous_taxi": {"reflect_rl": "58% (drop-off)", "rl_no_reflection": "0% (drop-off)"},
    "auto_explore": {"reflect_rl": "36% / 17% (depth 1 / 2)", "rl_no_reflection": "20% / 4% (depth 1 / 2)"},
    "alfworld": {"reflect_rl": "74% (tomato task)", "rl_no_reflection": "66% (tomato task)"},
}
#: Order of the environments' sections on the page.
ENV_ORDER = ("dangerous_taxi", "auto_explore", "alfworld")
ANALYSIS_MARKER = "<!-- Written by hand below this line; compare.py keeps it when it rewrites the page. -->"


def variant_configs(env: str, variant: str, seed: int, directory: Path) -> Path:
    """Write the stage configs of one variant and seed into ``directory`` and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        config = yaml.safe_load((ROOT / "configs" / env / f"{stage}.yaml").read_text())
        config["seed_everything"] = seed
        config["data"]["seed"] = seed * 100_003  # training episodes only: validation and test seeds stay fixed
        callbacks = config["trainer"].setdefault("callbacks", [])
        callbacks.insert(0, {"class_path": "callbacks.PeakMemoryCallback"})
        if variant == "no_negatives" and stage != "reflect_rl":
            config["data"]["mistake_prob"] = 0.0
            for callback in callbacks:
                if callback["class_path"].endswith("NegativeExampleCallback"):
                    callback["init_args"] = {"probability": 0.0}
        if variant == "no_curriculum" and stage == "reflect_rl":
            for callback in callbacks:
                if callback["class_path"].endswith("CurriculumCallback"):
                    final = config["data"].get("eval_stage") or callback["init_args"]["stages"][-1]["name"]
                    callback["init_args"] = {"stages": [{"name": final}]}
        (directory / f"{stage}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return directory


def run_pipeline(env: str, variant: str, seed: int, run_dir: Path, baseline: bool, extra: list[str]) -> Path:
    """Run (or resume) one pipeline and return its output directory."""
    output = run_dir / env / f"seed{seed}" / variant
    configs = variant_configs(env, variant, seed, run_dir / "configs" / env / f"seed{seed}" / variant)
    if variant == "no_curriculum":  # the SFT stages are Reflect-RL's own: share their exports
        for stage in STAGES[:2]:
            shared = run_dir / env / f"seed{seed}" / "base" / stage
            link = output / stage
            if shared.is_dir() and not link.exists():
                output.mkdir(parents=True, exist_ok=True)
                link.symlink_to(shared.resolve(), target_is_directory=True)
    results = output / "results.json"
    if results.is_file() and (not baseline or "RL, no reflection" in json.loads(results.read_text())["results"]):
        print(f"[compare] {env} seed {seed} {variant}: reusing {output}")
        return output
    command = [sys.executable, "-m", "lightning_modules.cli", "pipeline", "--env", env, "--configs", str(configs),
               "--output-dir", str(output), "--skip-existing", *(["--baseline"] if baseline else []),
               *extra]  # fmt: skip
    print(f"[compare] {env} seed {seed} {variant}: {' '.join(command[2:])}", flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return output


def record_command(env_dir: Path) -> None:
    """Remember, next to the environment's summaries, the comparison command that trains its runs (the page quotes
    it)."""
    env_dir.mkdir(parents=True, exist_ok=True)
    path = env_dir / "commands.txt"
    command = "python benchmarks/compare.py " + " ".join(sys.argv[1:])
    known = path.read_text().splitlines() if path.is_file() else []
    if command not in known:
        path.write_text("".join(f"{line}\n" for line in [*known, command]))


def seed_count(n: int) -> str:
    """``"1 seed"``, ``"3 seeds"``: the legend's count of the runs a line averages."""
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path


def existing_runs(run_dir: Path, envs: list[str], methods: list[str]) -> dict[tuple[str, int, str], Path]:
    """Every finished run of ``envs`` under ``run_dir`` that one of ``methods`` reads."""
    variants = {METHODS[m].variant for m in methods}
    return {
        (env, int(results.parts[-3].removeprefix("seed")), results.parts[-2]): results.parent
        for env in envs
        for results in sorted((run_dir / env).glob("seed*/*/results.json"))
        if results.parts[-2] in variants
    }


@functools.cache
def scalars(log_dir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Every scalar of a TensorBoard run as ``tag -> [(step, value, wall_time)]`` (read once per run)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value, e.wall_time) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def training_curve(log_dir: Path, window: int = 10) -> list[tuple[float, float, float]]:
    """``(environment steps, running mean of rollout success, seconds since the start)`` per logged RL step."""
    tags = scalars(log_dir)
    if "rollout/success_rate" not in tags or "rollout/env_steps" not in tags:
        return []
    env_steps = {step: value for step, value, _ in tags["rollout/env_steps"]}
    points = [(step, value, wall) for step, value, wall in tags["rollout/success_rate"] if step in env_steps]
    smooth = running_mean([value for _, value, _ in points], window)
    start = min(wall for _, _, wall in tags["rollout/success_rate"])
    return [(env_steps[step], rate, wall - start) for (step, _, wall), rate in zip(points, smooth, strict=True)]


def first_reach(curve: list[tuple[float, float, float]], threshold: float) -> tuple[float, float] | None:
    """Environment steps and seconds at which the smoothed training success first reaches ``threshold``."""
    return next(((steps, seconds) for steps, rate, seconds in curve if rate >= threshold), None)


class Validation(NamedTuple):
    """One validation of a method's policy, placed on the timeline of all the stages that trained the method."""

    minutes: float  # since the method's first stage began
    updates: int  # optimizer steps of every stage so far (reflection SFT included)
    env_steps: float  # environment steps of RL so far
    success: float  # held-out validation success


def stage_span(log_dir: Path) -> tuple[float, float] | None:
    """When a stage began (its event file's time stamp, set when the logger was created) and its last logged event."""
    events = sorted(log_dir.glob("events.out.tfevents.*"))
    if not events:
        return None
    start = float(events[0].name.split(".")[3])
    return start, max((wall for values in scalars(log_dir).values() for _, _, wall in values), default=start)


def validation_timeline(output: Path, stages: tuple[str, ...]) -> list[Validation]:
    """Every validation of the policy across ``stages``, in the order the stages ran.

    A stage lasts from the moment its logger was created to its last logged event (:func:`stage_span`); validation
    success is the policy's, on held-out episodes of the task the test uses, with the reflections it really reads.
    Stages without a policy (reflection SFT) only add time and updates.
    """
    minutes, updates, points = 0.0, 0, []
    for stage in stages:
        log_dir = output / stage / "version_0"
        if (span := stage_span(log_dir)) is None:
            return []  # a stage that never ran: no timeline
        start, end = span
        tags = scalars(log_dir)
        env_steps = sorted((step, value) for step, value, _ in tags.get("rollout/env_steps", []))
        for step, rate, wall in tags.get("val/success_rate", []):
            steps = max((value for logged, value in env_steps if logged <= step), default=0.0)
            points.append(Validation(minutes + (wall - start) / 60, updates + step + 1, steps, rate))
        minutes += (end - start) / 60
        updates += max(step for step, _, _ in tags["train/loss"]) + 1
    return points


def peak_memory(stage_dir: Path) -> float | None:
    """The largest ``system/peak_rss_mb`` a stage logged."""
    if not (stage_dir / "version_0").is_dir():
        return None
    values = [value for _, value, _ in scalars(stage_dir / "version_0").get("system/peak_rss_mb", [])]
    return max(values) if values else None


def run_config(output: Path, stage: str, env: str) -> dict:
    """The configuration a stage of a run really used (LightningCLI's copy), else the profile's config."""
    saved = output / stage / "version_0" / "config.yaml"
    return yaml.safe_load((saved if saved.is_file() else ROOT / "configs" / env / f"{stage}.yaml").read_text())


def budget(env: str, output: Path) -> str:
    """The budget every method of ``env`` shares, read from the configs of a base run."""
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


def run_minutes(output: Path) -> float:
    """Wall-clock minutes of the stages (tests included) that a run trained itself; shared stages are not counted."""
    spans = [stage_span(log_dir) for log_dir in sorted(output.glob("*/version_0")) if not log_dir.parent.is_symlink()]
    return sum((end - start) / 60 for start, end in filter(None, spans))


def gpu_profile_sizes() -> list[tuple[str, int, int]]:
    """``(profile, parameters, trainable parameters)`` of the GPU profiles' GPT-2 XL with their LoRA adapters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    rows = []
    for path in sorted((ROOT / "configs").glob("*/gpu_reflection_sft.yaml")):
        backbone = yaml.safe_load(path.read_text())["model"]["init_args"]["backbone"]
        lora = backbone.get("lora") or {}
        config = GPT2Config(n_layer=48, n_embd=1600, n_head=25)  # gpt2-xl's shape, without its weights
        with torch.device("meta"):
            model = GPT2LMHeadModel(config)
        if lora:
            model = get_peft_model(model, LoraConfig(
                r=lora.get("r", 16), lora_alpha=lora.get("alpha", 32), lora_dropout=lora.get("dropout", 0.05),
                target_modules=lora.get("target_modules") or ["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True,
            ))  # fmt: skip
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append((str(path.relative_to(ROOT)), total, trainable))
    return rows


def spread(values: list[float]) -> str:
    """``mean ± standard deviation (each value)`` in percent."""
    if not values:
        return "-"
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.0%} ± {sd:.0%} ({', '.join(f'{v:.0%}' for v in values)})"


def plot_curves(env: str, curves: dict[str, list[list[tuple[float, float, float]]]], path: Path) -> None:
    """Training success against environment steps, one line per method (mean over seeds, seeds faint)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, runs in curves.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        grid = np.linspace(0, min(r[-1][0] for r in runs), 100)
        values = [np.interp(grid, [p[0] for p in r], [p[1] for p in r]) for r in runs]
        (line,) = ax.plot(grid, np.mean(values, axis=0), label=f"{METHODS[name].title} ({seed_count(len(runs))})")
        for run in runs:
            ax.plot([p[0] for p in run], [p[1] for p in run], color=line.get_color(), alpha=0.2, linewidth=0.8)
    title = f"{env}: RL training success (with a curriculum: of the current stage)"
    save_success_plot(fig, ax, "environment steps of RL", "training success (running mean of 10 steps)", title, path)


def save_success_plot(fig, ax, x_label: str, y_label: str, title: str, path: Path) -> None:
    """Label a success-rate plot (0 to 1), write it to ``path`` and close it."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def grouped_success(
    key: str | None, seeds: list[int], results: dict[tuple[int, str], dict], methods: list[str]
) -> list[str]:
    """Markdown lines: each method's greedy held-out success per value of ``eval_group_by``, over the seeds.

    ``results`` maps ``(seed, variant)`` to a run's ``results.json`` rows. A cell is the mean over the seeds that
    tested the method (with the standard deviation when there are several) and the episodes per seed.
    """
    if not key:
        return []
    table = {}
    for name in methods:
        method = METHODS[name]
        per_seed = [success_by_group(rows[method.policy], key) for seed in seeds
                    if method.policy in (rows := results.get((seed, method.variant), {}))]  # fmt: skip
        if per_seed:
            table[METHODS[name].title] = per_seed
    values = sorted({v for per_seed in table.values() for groups in per_seed for v in groups}, key=group_order)
    if not values:
        return []
    lines = [f"Greedy held-out success by {key} (mean over seeds; n: test episodes of the group per seed):", "",
             f"| method | {' | '.join(values)} |", "|---" + "|---:" * len(values) + "|"]  # fmt: skip
    for title, per_seed in table.items():
        cells = []
        for value in values:
            rates = [groups[value][0] for groups in per_seed if value in groups]
            counts = sorted({groups[value][1] for groups in per_seed if value in groups})
            sd = f" ± {statistics.stdev(rates):.0%}" if len(rates) > 1 else ""
            n = "/".join(map(str, counts))
            cells.append(f"{statistics.fmean(rates):.0%}{sd} (n={n})" if rates else "-")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def validation_intervals(env: str, output: Path) -> str:
    """How often each stage with a policy validated, read from the configs of a base run."""
    every = {stage: run_config(output, stage, env)["trainer"].get("val_check_interval")
             for stage in ("policy_sft", "reflect_rl")}  # fmt: skip
    return f"{every['policy_sft']} policy-SFT updates and {every['reflect_rl']} RL steps"


def plot_timelines(env: str, timelines: dict[str, list[list[Validation]]], reflection_steps: int, path: Path) -> None:
    """Validation success against optimizer steps since training began, one line per method and seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.axvspan(0, reflection_steps, color="grey", alpha=0.12, label="reflection SFT")
    for name, runs in timelines.items():
        colour = None
        for i, run in enumerate(runs):
            label = f"{METHODS[name].title} ({seed_count(len(runs))})" if i == 0 else None
            updates, success = [v.updates for v in run], [v.success for v in run]
            (line,) = ax.plot(updates, success, marker="o", markersize=3, color=colour, alpha=0.8, label=label)
            colour = line.get_color()
    x_label = "optimizer steps of every stage of the method, in order (reflection SFT included)"
    save_success_plot(fig, ax, x_label, "validation success", f"{env}: held-out validation success of the policy", path)


def summarise_run(env: str, variant: str, output: Path) -> dict:
    """Everything the page reads of one finished run, small enough to keep in docs/ (runs/ is not kept).

    Held-out results, the stages the run trained itself and their peak memory, the RL training curves, each method's
    validation timeline, its minutes, and the facts of its configs the page quotes (budget, validation intervals, the
    length of reflection SFT, the ``eval_group_by`` key).
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


def load_summaries(data_dir: Path, envs: list[str], methods: list[str]) -> dict[tuple[str, int, str], dict]:
    """The kept summaries of ``envs`` that one of ``methods`` reads, keyed ``(env, seed, variant)``.

    Curves and timelines come back as tuples and :class:`Validation` points, as the page's functions expect them.
    """
    variants = {METHODS[m].variant for m in methods}
    summaries = {}
    for env in envs:
        for path in sorted((data_dir / env).glob("seed*_*.json")):
            seed, variant = path.stem.removeprefix("seed").split("_", 1)
            if variant in variants:
                summary = json.loads(path.read_text())
                summary["curves"] = {k: [tuple(p) for p in v] for k, v in summary["curves"].items()}
                summary["timelines"] = {k: [Validation(*p) for p in v] for k, v in summary["timelines"].items()}
                summaries[(env, int(seed), variant)] = summary
    return summaries


def report(args: argparse.Namespace, runs: dict[tuple[str, int, str], dict], minutes: float) -> str:
    """The markdown page from the runs' summaries: results per method and environment, the paper's numbers, curves,
    times and memory."""
    command = "python benchmarks/compare.py " + " ".join(sys.argv[1:])
    lines = [
        "# The paper's comparisons on the tiny CPU profiles",
        "",
        f"Page written by `{command}` ({minutes:.0f} min for this invocation, which reuses finished runs), "
        f"{platform.machine()}, 2 CPU cores, from the summaries of the runs kept in `{_shown(args.data_dir)}` "
        "(one JSON file per run); the commands that trained them are listed per environment. Held-out greedy "
        "success, mean ± standard deviation over seeds (each seed in brackets), on the same test set for every "
        "method. Choices were made on validation seeds only; nothing here is tuned for one method. The section of an "
        "environment that has no kept summaries is kept from the page's previous version, with the commands that "
        "made it.",
        "",
    ]
    for env in args.envs:
        seeds = sorted({seed for e, seed, _ in runs if e == env})
        if not seeds:
            continue
        recorded = args.data_dir / env / "commands.txt"
        commands = recorded.read_text().splitlines() if recorded.is_file() else ["(not recorded)"]
        base = next((runs[(env, seed, "base")] for seed in seeds if (env, seed, "base") in runs), None)
        tested = {(seed, variant): summary["results"] for (e, seed, variant), summary in runs.items() if e == env}
        lines += [f"## {env}", "", f"Seeds: {', '.join(map(str, seeds))}. Trained by:", ""]
        lines += [f"    {c}" for c in commands] + [""]
        lines += [f"Budget shared by every method: {base['budget'] if base else '-'}.", ""]
        lines += ["| method | held-out success | sampled | paper (GPT-2 XL) |", "|---|---|---|---|"]
        curves = {}
        for name in args.methods:
            method = METHODS[name]
            greedy, sampled, curve_runs = [], [], []
            for seed in seeds:
                summary = runs.get((env, seed, method.variant))
                results = summary["results"] if summary else {}
                if method.policy in results:
                    greedy.append(results[method.policy]["test/success_rate"])
                    sampled.append(results[method.policy]["test/success_rate_sampled"])
                if summary and method.rl_stage:
                    curve_runs.append(summary["curves"].get(method.rl_stage, []))
            curves[name] = curve_runs
            paper = PAPER.get(env, {}).get(name, "-")
            lines.append(f"| {method.title} | {spread(greedy)} | {spread(sampled)} | {paper} |")
        picture = args.output.parent / f"results_{env}_curves.png"
        plot_curves(env, {k: v for k, v in curves.items() if v}, picture)
        lines += ["", f"![training curves]({picture.name})", ""]
        lines += ["Environment steps and minutes of RL until the smoothed training success first reaches 50% and "
                  "80% (mean over the seeds that reached it; with a curriculum, of the stage being trained):",
                  ""]  # fmt: skip
        lines += ["| method | 50%: env steps | 50%: min | 80%: env steps | 80%: min |", "|---|---:|---:|---:|---:|"]
        for name, curve_runs in curves.items():
            if not curve_runs:
                continue
            cells = []
            for threshold in (0.5, 0.8):
                reached = [r for c in curve_runs if c and (r := first_reach(c, threshold))]
                if reached and all(r[1] == 0 for r in reached):
                    cells += [f"at the first RL step ({len(reached)}/{len(curve_runs)})", "0"]
                elif reached:
                    cells += [f"{statistics.fmean(r[0] for r in reached):,.0f} ({len(reached)}/{len(curve_runs)})",
                              f"{statistics.fmean(r[1] for r in reached) / 60:.1f}"]  # fmt: skip
                else:
                    cells += [f"not reached (0/{len(curve_runs)})", "-"]
            lines.append(f"| {METHODS[name].title} | " + " | ".join(cells) + " |")
        timelines = {
            name: [
                summary["timelines"].get(name, [])
                for seed in seeds
                if (summary := runs.get((env, seed, METHODS[name].variant)))
            ]
            for name in args.methods
        }
        timelines = {name: [t for t in runs_ if t] for name, runs_ in timelines.items()}
        picture = args.output.parent / f"results_{env}_validation.png"
        reflection_steps = base["reflection_steps"] if base else 0
        plot_timelines(env, {k: v for k, v in timelines.items() if v}, reflection_steps, picture)
        intervals = base["validation_intervals"] if base else "-"
        lines += ["", "From the start of training, every stage a method needs counted in order (reflection SFT too): "
                  "optimizer steps, minutes and RL environment steps until the policy's validation success on the "
                  "test's task first reaches 50% and 80% (mean over the seeds that reached it). Validation runs every "
                  f"{intervals}, so these are upper bounds at that resolution. The SFT stages of "
                  "every method read the same teacher episodes, so only RL adds environment steps; minutes depend "
                  "on the load of the machine, optimizer steps do not.", ""]  # fmt: skip
        lines += ["| method | 50%: steps | 50%: min | 50%: RL env steps | 80%: steps | 80%: min | 80%: RL env steps "
                  "| last validation |", "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for name, runs_ in timelines.items():
            if not runs_:
                continue
            cells = []
            for threshold in (0.5, 0.8):
                reached = [v for t in runs_ if (v := next((v for v in t if v.success >= threshold), None))]
                if reached:
                    cells += [f"{statistics.fmean(v.updates for v in reached):,.0f} ({len(reached)}/{len(runs_)})",
                              f"{statistics.fmean(v.minutes for v in reached):.1f}",
                              f"{statistics.fmean(v.env_steps for v in reached):,.0f}"]  # fmt: skip
                else:
                    cells += [f"not reached (0/{len(runs_)})", "-", "-"]
            cells.append(spread([t[-1].success for t in runs_]))
            lines.append(f"| {METHODS[name].title} | " + " | ".join(cells) + " |")
        lines += ["", f"![validation success against optimizer steps]({picture.name})", ""]
        group_key = base["group_key"] if base else None
        lines += grouped_success(group_key, seeds, tested, args.methods)
        variants = list(dict.fromkeys(METHODS[m].variant for m in args.methods))
        lines += ["Wall-clock minutes of each run (its own stages and tests; `no_curriculum` reuses the base run's SFT "
                  "stages when it ran on the same machine); minutes depend on what else the machine was running:",
                  ""]  # fmt: skip
        lines += ["| seed | " + " | ".join(variants) + " |", "|---" + "|---:" * len(variants) + "|"]
        cells = {seed: [minutes_cell(runs.get((env, seed, v)), v) for v in variants] for seed in seeds}
        lines += [f"| {seed} | " + " | ".join(row) + " |" for seed, row in cells.items()]
        if any(cell.endswith("\\*") for row in cells.values() for cell in row):
            lines += ["", "\\* trained its own SFT stages: the base run's were not on the machine it ran on."]
        lines += ["", "Peak resident memory per stage (MiB, the first seed's runs):", "",
                  "| stage | peak RSS |", "|---|---:|"]  # fmt: skip
        seed = seeds[0]
        for variant in variants:
            memory = runs[(env, seed, variant)]["peak_rss_mb"] if (env, seed, variant) in runs else {}
            lines += [f"| {variant}: {stage} | {peak:,.0f} |" for stage, peak in memory.items()]
        lines.append("")
    lines += ["## GPU profiles", "", "| profile | parameters | trainable (LoRA) |", "|---|---:|---:|"]
    lines += [f"| `{p}` | {total:,} | {trainable:,} ({trainable / total:.2%}) |" for p, total, trainable in
              gpu_profile_sizes()]  # fmt: skip
    return "\n".join(lines) + "\n"


def minutes_cell(summary: dict | None, variant: str) -> str:
    """A run's minutes for the wall-clock table; a star marks a ``no_curriculum`` run that trained its own SFT."""
    if summary is None:
        return "-"
    own_sft = variant == "no_curriculum" and "policy_sft" in summary["trained_stages"]
    return f"{summary['minutes']:.1f}" + ("\\*" if own_sft else "")


def split_sections(page: str) -> tuple[str, dict[str, str], str]:
    """A page as (text before the first ``## `` heading, ``heading -> section``, hand-written part with its marker)."""
    generated, marker, analysis = page.partition(ANALYSIS_MARKER)
    head, *parts = generated.split("\n## ")
    sections = {part.split("\n", 1)[0]: "## " + part.rstrip("\n") + "\n" for part in parts}
    return head.rstrip("\n") + "\n", sections, marker + analysis


def merge_pages(previous: str, page: str) -> str:
    """The new page, plus the environment sections of ``previous`` that the new page has none of, plus its hand-written
    part: an invocation that ran one environment leaves the others' results where they are (runs/ is not kept)."""
    head, sections, _ = split_sections(page)
    _, kept, analysis = split_sections(previous)
    merged = {**{k: v for k, v in kept.items() if k != "GPU profiles"}, **sections}
    order = [*ENV_ORDER, *sorted(k for k in merged if k not in ENV_ORDER and k != "GPU profiles"), "GPU profiles"]
    body = "\n".join(merged[k] for k in order if k in merged)
    return f"{head}\n{body}" + (f"\n{analysis}" if analysis else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=["dangerous_taxi"], help="folders of configs/")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=list(METHODS),
                        help=f"default: {' '.join(DEFAULT_METHODS)}")  # fmt: skip
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "compare")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "docs" / "results_data",
                        help="where each finished run's summary is kept; the page is written from these")  # fmt: skip
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: summarise the finished runs under --run-dir, then write the page from "
                        "every kept summary")  # fmt: skip
    args, extra = parser.parse_known_args()  # anything else goes to every pipeline, e.g. --test-episodes 50
    args.run_dir = args.run_dir.resolve()
    start = time.perf_counter()
    runs = existing_runs(args.run_dir, args.envs, args.methods) if args.report_only else {}
    for env in [] if args.report_only else args.envs:
        record_command(args.data_dir / env)
        for seed in args.seeds:
            variants = dict.fromkeys(METHODS[m].variant for m in args.methods)
            for variant in sorted(variants, key=["base", "no_negatives", "no_curriculum"].index):
                baseline = variant == "base" and "rl_no_reflection" in args.methods
                runs[(env, seed, variant)] = run_pipeline(env, variant, seed, args.run_dir, baseline, extra)
    for (env, seed, variant), output in runs.items():  # runs on this machine refresh their kept summaries
        save_summary(args.data_dir, env, seed, variant, output)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    summaries = load_summaries(args.data_dir, args.envs, args.methods)
    page = report(args, summaries, (time.perf_counter() - start) / 60)
    if args.output.is_file():
        page = merge_pages(args.output.read_text(), page)
    args.output.write_text(page)
    print(page)


if __name__ == "__main__":
    main()

"""The Markdown page written from the runs' summaries: per environment, results, curves, times and memory."""

from __future__ import annotations

import argparse
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path

from lightning_modules.pipeline import group_order, success_by_group

from . import ROOT
from .curves import Curve, Validation, first_reach, first_validation
from .methods import METHODS, PAPER, variants
from .plots import plot_curves, plot_timelines
from .profiles import gpu_profile_sizes
from .runs import invocation
from .stats import mean_and_sd, spread

THRESHOLDS = (0.5, 0.8)


@dataclass(frozen=True)
class EnvironmentRuns:
    """The kept summaries of one environment.

    Attributes:
        env: The environment (a folder of ``configs/``).
        summaries: ``(seed, variant) -> summary`` (see ``summaries.summarise_run``).
    """

    env: str
    summaries: dict[tuple[int, str], dict]

    @classmethod
    def of(cls, env: str, runs: dict[tuple[str, int, str], dict]) -> EnvironmentRuns:
        """The summaries of ``env`` among ``runs``, which are keyed ``(env, seed, variant)``."""
        return cls(env, {(seed, variant): summary for (e, seed, variant), summary in runs.items() if e == env})

    @property
    def seeds(self) -> list[int]:
        """Every seed with a summary, in order."""
        return sorted({seed for seed, _ in self.summaries})

    @property
    def base(self) -> dict | None:
        """The base run of the first seed that has one: the facts every method shares are read from it."""
        return next((self.summaries[(s, "base")] for s in self.seeds if (s, "base") in self.summaries), None)

    def per_seed(self, name: str) -> list[dict]:
        """The summaries of the runs that trained method ``name``, one per seed that has one."""
        variant = METHODS[name].variant
        return [self.summaries[(s, variant)] for s in self.seeds if (s, variant) in self.summaries]

    def results(self) -> dict[tuple[int, str], dict]:
        """``(seed, variant) -> the run's results.json rows``."""
        return {key: summary["results"] for key, summary in self.summaries.items()}


def _shown(path: Path) -> Path:
    """``path`` relative to the repository when it is inside it."""
    return path.relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path


def _reached(reached: list, runs: list) -> str:
    """``(reached/runs)``: how many of the seeds reached a level."""
    return f"({len(reached)}/{len(runs)})"


def _row(title: str, cells: list[str]) -> str:
    """A table row: the method's title, then the cells."""
    return f"| {title} | " + " | ".join(cells) + " |"


def header_lines(data_dir: Path, minutes: float) -> list[str]:
    """The page's title and how it was written."""
    return [
        "# The paper's comparisons on the tiny CPU profiles",
        "",
        f"Page written by `{invocation()}` ({minutes:.0f} min for this invocation, which reuses finished runs), "
        f"{platform.machine()}, 2 CPU cores, from the summaries of the runs kept in `{_shown(data_dir)}` "
        "(one JSON file per run); the commands that trained them are listed per environment. Held-out greedy "
        "success, mean ± standard deviation over seeds (each seed in brackets), on the same test set for every "
        "method. Choices were made on validation seeds only; nothing here is tuned for one method. The section of an "
        "environment that has no kept summaries is kept from the page's previous version, with the commands that "
        "made it.",
        "",
    ]


def intro_lines(runs: EnvironmentRuns, data_dir: Path) -> list[str]:
    """An environment's heading, its seeds, the commands that trained its runs and the budget they share."""
    recorded = data_dir / runs.env / "commands.txt"
    commands = recorded.read_text().splitlines() if recorded.is_file() else ["(not recorded)"]
    lines = [f"## {runs.env}", "", f"Seeds: {', '.join(map(str, runs.seeds))}. Trained by:", ""]
    lines += [f"    {c}" for c in commands] + [""]
    return [*lines, f"Budget shared by every method: {runs.base['budget'] if runs.base else '-'}.", ""]


def results_lines(runs: EnvironmentRuns, methods: list[str]) -> list[str]:
    """The held-out table: greedy and sampled success of each method over the seeds, and the paper's number."""
    lines = ["| method | held-out success | sampled | paper (GPT-2 XL) |", "|---|---|---|---|"]
    for name in methods:
        policy = METHODS[name].policy
        tested = [s["results"][policy] for s in runs.per_seed(name) if policy in s["results"]]
        greedy = [r["test/success_rate"] for r in tested]
        sampled = [r["test/success_rate_sampled"] for r in tested]
        paper = PAPER.get(runs.env, {}).get(name, "-")
        lines.append(f"| {METHODS[name].title} | {spread(greedy)} | {spread(sampled)} | {paper} |")
    return lines


def method_curves(runs: EnvironmentRuns, methods: list[str]) -> dict[str, list[Curve]]:
    """Each method's RL training curve per seed (none for a method without RL)."""
    curves = {}
    for name in methods:
        stage = METHODS[name].rl_stage
        curves[name] = [s["curves"].get(stage, []) for s in runs.per_seed(name)] if stage else []
    return curves


def curve_reach_cells(curves: list[Curve], threshold: float) -> list[str]:
    """Mean environment steps and minutes over the seeds whose training curve reached ``threshold``."""
    reached = [r for c in curves if c and (r := first_reach(c, threshold))]
    if not reached:
        return [f"not reached (0/{len(curves)})", "-"]
    if all(seconds == 0 for _, seconds in reached):
        return [f"at the first RL step {_reached(reached, curves)}", "0"]
    steps = statistics.fmean(steps for steps, _ in reached)
    return [f"{steps:,.0f} {_reached(reached, curves)}", f"{statistics.fmean(s for _, s in reached) / 60:.1f}"]


def curve_lines(curves: dict[str, list[Curve]]) -> list[str]:
    """The table of environment steps and minutes of RL until training success reaches 50% and 80%."""
    lines = ["Environment steps and minutes of RL until the smoothed training success first reaches 50% and "
             "80% (mean over the seeds that reached it; with a curriculum, of the stage being trained):",
             ""]  # fmt: skip
    lines += ["| method | 50%: env steps | 50%: min | 80%: env steps | 80%: min |", "|---|---:|---:|---:|---:|"]
    for name, runs in curves.items():
        if runs:
            lines.append(_row(METHODS[name].title, [c for t in THRESHOLDS for c in curve_reach_cells(runs, t)]))
    return lines


def method_timelines(runs: EnvironmentRuns, methods: list[str]) -> dict[str, list[list[Validation]]]:
    """Each method's validation timeline per seed, leaving out empty ones."""
    return {name: [t for s in runs.per_seed(name) if (t := s["timelines"].get(name, []))] for name in methods}


def validation_reach_cells(timelines: list[list[Validation]], threshold: float) -> list[str]:
    """Mean optimizer steps, minutes and RL environment steps over the seeds whose validation reached ``threshold``."""
    reached = [v for t in timelines if (v := first_validation(t, threshold))]
    if not reached:
        return [f"not reached (0/{len(timelines)})", "-", "-"]
    return [f"{statistics.fmean(v.updates for v in reached):,.0f} {_reached(reached, timelines)}",
            f"{statistics.fmean(v.minutes for v in reached):.1f}",
            f"{statistics.fmean(v.env_steps for v in reached):,.0f}"]  # fmt: skip


def timeline_lines(timelines: dict[str, list[list[Validation]]], intervals: str) -> list[str]:
    """The table of updates, minutes and environment steps until validation success reaches 50% and 80%."""
    lines = ["From the start of training, every stage a method needs counted in order (reflection SFT too): "
             "optimizer steps, minutes and RL environment steps until the policy's validation success on the "
             "test's task first reaches 50% and 80% (mean over the seeds that reached it). Validation runs every "
             f"{intervals}, so these are upper bounds at that resolution. The SFT stages of "
             "every method read the same teacher episodes, so only RL adds environment steps; minutes depend "
             "on the load of the machine, optimizer steps do not.", ""]  # fmt: skip
    lines += ["| method | 50%: steps | 50%: min | 50%: RL env steps | 80%: steps | 80%: min | 80%: RL env steps "
              "| last validation |", "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, runs in timelines.items():
        if runs:
            cells = [c for t in THRESHOLDS for c in validation_reach_cells(runs, t)]
            lines.append(_row(METHODS[name].title, [*cells, spread([t[-1].success for t in runs])]))
    return lines


def group_cell(per_seed: list[dict[str, tuple[float, int]]], value: str) -> str:
    """Success on one group over the seeds that tested it: ``mean[ ± sd] (n=episodes per seed)``, or ``-``."""
    rates = [groups[value][0] for groups in per_seed if value in groups]
    counts = sorted({groups[value][1] for groups in per_seed if value in groups})
    return f"{mean_and_sd(rates)} (n={'/'.join(map(str, counts))})" if rates else "-"


def grouped_success(
    key: str | None, seeds: list[int], results: dict[tuple[int, str], dict], methods: list[str]
) -> list[str]:
    """Markdown lines: each method's greedy held-out success per value of ``eval_group_by``, over the seeds.

    A cell is the mean over the seeds that tested the method (with the standard deviation when there are several)
    and the episodes per seed.

    Args:
        key: The ``eval_group_by`` key; ``None`` gives no lines.
        seeds: The seeds to read.
        results: ``(seed, variant)`` -> a run's ``results.json`` rows.
        methods: The methods, in the table's order; a method no seed tested has no row.

    Returns:
        The table and a blank line after it, or nothing when no group was logged.
    """
    if not key:
        return []
    table = {}
    for name in methods:
        method = METHODS[name]
        per_seed = [success_by_group(rows[method.policy], key) for seed in seeds
                    if method.policy in (rows := results.get((seed, method.variant), {}))]  # fmt: skip
        if per_seed:
            table[method.title] = per_seed
    values = sorted({v for per_seed in table.values() for groups in per_seed for v in groups}, key=group_order)
    if not values:
        return []
    lines = [f"Greedy held-out success by {key} (mean over seeds; n: test episodes of the group per seed):", "",
             f"| method | {' | '.join(values)} |", "|---" + "|---:" * len(values) + "|"]  # fmt: skip
    lines += [_row(title, [group_cell(per_seed, value) for value in values]) for title, per_seed in table.items()]
    return [*lines, ""]


def minutes_cell(summary: dict | None, variant: str) -> str:
    """A run's minutes for the wall-clock table; a star marks a ``no_curriculum`` run that trained its own SFT."""
    if summary is None:
        return "-"
    own_sft = variant == "no_curriculum" and "policy_sft" in summary["trained_stages"]
    return f"{summary['minutes']:.1f}" + ("\\*" if own_sft else "")


def minutes_lines(runs: EnvironmentRuns, variants: list[str]) -> list[str]:
    """The table of each run's wall-clock minutes, seeds by variants."""
    lines = ["Wall-clock minutes of each run (its own stages and tests; `no_curriculum` reuses the base run's SFT "
             "stages when it ran on the same machine); minutes depend on what else the machine was running:",
             ""]  # fmt: skip
    lines += ["| seed | " + " | ".join(variants) + " |", "|---" + "|---:" * len(variants) + "|"]
    cells = {seed: [minutes_cell(runs.summaries.get((seed, v)), v) for v in variants] for seed in runs.seeds}
    lines += [f"| {seed} | " + " | ".join(row) + " |" for seed, row in cells.items()]
    if any(cell.endswith("\\*") for row in cells.values() for cell in row):
        lines += ["", "\\* trained its own SFT stages: the base run's were not on the machine it ran on."]
    return lines


def memory_lines(runs: EnvironmentRuns, variants: list[str]) -> list[str]:
    """The table of each stage's peak resident memory in the first seed's runs."""
    lines = ["Peak resident memory per stage (MiB, the first seed's runs):", "", "| stage | peak RSS |", "|---|---:|"]
    for variant in variants:
        memory = runs.summaries.get((runs.seeds[0], variant), {}).get("peak_rss_mb", {})
        lines += [f"| {variant}: {stage} | {peak:,.0f} |" for stage, peak in memory.items()]
    return lines


def environment_section(runs: EnvironmentRuns, methods: list[str], data_dir: Path, picture_dir: Path) -> list[str]:
    """The section of one environment, writing its two pictures into ``picture_dir``.

    Args:
        runs: The environment's kept summaries (at least one).
        methods: The methods to show, in order.
        data_dir: Where the summaries and the environment's ``commands.txt`` are kept.
        picture_dir: The page's folder.

    Returns:
        The section's lines, ending with a blank line.
    """
    base = runs.base
    curves = method_curves(runs, methods)
    curve_picture = picture_dir / f"results_{runs.env}_curves.png"
    plot_curves(runs.env, {k: v for k, v in curves.items() if v}, curve_picture)
    timelines = method_timelines(runs, methods)
    timeline_picture = picture_dir / f"results_{runs.env}_validation.png"
    plot_timelines(runs.env, {k: v for k, v in timelines.items() if v}, base["reflection_steps"] if base else 0,
                   timeline_picture)  # fmt: skip
    ran = variants(methods)
    return [
        *intro_lines(runs, data_dir),
        *results_lines(runs, methods),
        *["", f"![training curves]({curve_picture.name})", ""],
        *curve_lines(curves),
        "",
        *timeline_lines(timelines, base["validation_intervals"] if base else "-"),
        *["", f"![validation success against optimizer steps]({timeline_picture.name})", ""],
        *grouped_success(base["group_key"] if base else None, runs.seeds, runs.results(), methods),
        *minutes_lines(runs, ran),
        "",
        *memory_lines(runs, ran),
        "",
    ]


def gpu_profile_lines() -> list[str]:
    """The section with the GPU profiles' parameter counts."""
    lines = ["## GPU profiles", "", "| profile | parameters | trainable (LoRA) |", "|---|---:|---:|"]
    return lines + [f"| `{p}` | {total:,} | {trainable:,} ({trainable / total:.2%}) |"
                    for p, total, trainable in gpu_profile_sizes()]  # fmt: skip


def report(args: argparse.Namespace, runs: dict[tuple[str, int, str], dict], minutes: float) -> str:
    """The Markdown page from the runs' summaries.

    Per environment: results per method with the paper's numbers, training curves, validation timelines, success
    per group, times and memory; then the GPU profiles' sizes.

    Args:
        args: The command line: ``envs``, ``methods``, ``data_dir`` and ``output`` (the pictures go next to it).
        runs: ``(env, seed, variant) -> summary``, as ``summaries.load_summaries`` gives them.
        minutes: How long this invocation ran, for the header.

    Returns:
        The page; an environment without summaries has no section.
    """
    lines = header_lines(args.data_dir, minutes)
    for env in args.envs:
        if (env_runs := EnvironmentRuns.of(env, runs)).summaries:
            lines += environment_section(env_runs, args.methods, args.data_dir, args.output.parent)
    return "\n".join([*lines, *gpu_profile_lines()]) + "\n"

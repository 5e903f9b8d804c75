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

This file is the command line; the work is done by the package ``benchmarks/comparison/`` (see its ``__init__``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comparison.methods import DEFAULT_METHODS, METHODS, VARIANT_ORDER, variants  # noqa: E402
from comparison.page import merge_pages  # noqa: E402
from comparison.report import report  # noqa: E402
from comparison.runs import existing_runs, record_command, run_pipeline  # noqa: E402
from comparison.summaries import load_summaries, save_summary  # noqa: E402


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    """The comparison's options, and every other argument (passed to each pipeline, e.g. ``--test-episodes 50``)."""
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
    args, extra = parser.parse_known_args()
    args.run_dir = args.run_dir.resolve()
    return args, extra


def train(args: argparse.Namespace, extra: list[str]) -> dict[tuple[str, int, str], Path]:
    """Run (or reuse) every pipeline the methods need, per environment and seed: ``(env, seed, variant) -> run``."""
    runs = {}
    for env in args.envs:
        record_command(args.data_dir / env)
        for seed in args.seeds:
            for variant in sorted(variants(args.methods), key=VARIANT_ORDER.index):
                baseline = variant == "base" and "rl_no_reflection" in args.methods
                runs[(env, seed, variant)] = run_pipeline(env, variant, seed, args.run_dir, baseline, extra)
    return runs


def write_page(args: argparse.Namespace, minutes: float) -> str:
    """Write the page from every kept summary into ``args.output``, merged into its previous version; return it."""
    args.output.parent.mkdir(parents=True, exist_ok=True)
    page = report(args, load_summaries(args.data_dir, args.envs, args.methods), minutes)
    if args.output.is_file():
        page = merge_pages(args.output.read_text(), page)
    args.output.write_text(page)
    return page


def main() -> None:
    """Train (unless ``--report-only``), refresh the summaries of the runs on this machine, write the page."""
    args, extra = parse_args()
    start = time.perf_counter()
    runs = existing_runs(args.run_dir, args.envs, args.methods) if args.report_only else train(args, extra)
    for (env, seed, variant), output in runs.items():  # runs on this machine refresh their kept summaries
        save_summary(args.data_dir, env, seed, variant, output)
    print(write_page(args, (time.perf_counter() - start) / 60))


if __name__ == "__main__":
    main()

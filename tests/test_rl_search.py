"""The RL-settings search's table (benchmarks/rl_search.py): mean ± sd over seeds, per variant and method."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from rl_search import report  # noqa: E402


def test_a_row_is_the_mean_over_seeds_of_each_column():
    def row(seed, val, test, follows=None):
        metrics = {"success_rate": test, "success_rate_sampled": test / 2, "follows_reflection": follows,
                   "overrules_wrong_reflection": None}  # fmt: skip
        return {"variant": "eps", "method": "reflect_rl", "seed": seed, "extra": "--x=1", "val": {"success_rate": val},
                "test": metrics}  # fmt: skip

    sft = {"variant": "sft_start", "method": "reflect_rl", "val": {"success_rate": 0.25},
           "test": {"success_rate": 0.5, "success_rate_sampled": 0.25, "follows_reflection": 0.75,
                    "overrules_wrong_reflection": 0.0}}  # fmt: skip
    args = argparse.Namespace(steps=10, val_episodes=20, test_episodes=30)

    lines = report([sft, row(0, 0.2, 0.3, 0.5), row(1, 0.4, 0.5)], args).splitlines()

    assert lines[4] == "| sft_start | reflect_rl | 25% | 50% | 25% | 75% | 0% | `` |"
    assert lines[5] == "| eps | reflect_rl | 30% ± 14% | 40% ± 14% | 20% ± 7% | 50% | - | `--x=1` |"

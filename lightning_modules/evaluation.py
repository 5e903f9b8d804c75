"""The one held-out evaluation: play a split's episodes with any player and report what came of them.

Every stage that plays held-out episodes (policy SFT, RLFT), the LLM agent (``reflect-rl evaluate-llm``) and the
pipeline's table use :func:`evaluate_player` and :func:`results_table`, so a metric means the same everywhere:

* ``<split>/success_rate`` with its 95% Wilson interval (``_ci_low``, ``_ci_high``), ``return``, ``episode_length``
  and ``invalid_rate`` (answers that named no admissible action);
* how the policy used its reflection: ``follows_reflection`` (turns whose reflection recommends an admissible action
  on which the policy took that action), ``wrong_reflection_rate`` (recommendations that differ from the oracle's
  action) and ``overrules_wrong_reflection`` (of those, turns on which the policy did not take the recommendation),
  logged when the split's reflections recommended anything;
* with ``eval_group_by`` (AutoExplore ``depth``, ALFWorld ``task_type``), success per group
  (``success_rate_<key>_<value>`` with its interval and ``episodes_<key>_<value>``).

Sampled play adds the suffix ``_sampled`` to every key. Under DDP each rank plays its share of the seeds and the
counts are summed, so every rank returns the same numbers for the whole set.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import torch

from datamodules.rollout import EpisodeResult

#: The play modes of an evaluation: name, greedy.
MODES = (("greedy", True), ("sampled", False))


class Player(Protocol):
    """Anything that plays episodes: our :class:`~lightning_modules.agent.Agent`, the LLM agent, a module."""

    def play(
        self, envs: Sequence[gym.Env], seeds: Sequence[int], stage: str | None, greedy: bool
    ) -> list[EpisodeResult]: ...


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (0 for a single value) of a non-empty sequence, e.g. over seeds."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12))  # no 1e-17 for an exact 0


#: The counts each group of episodes is summarised by (summed over ranks before the metrics are formed).
_COUNTS = ("episodes", "wins", "return", "length", "turns", "invalid", "recommended", "followed", "wrong", "overruled")


def episode_counts(results: Sequence[EpisodeResult]) -> dict[str, float]:
    """Sums over episodes of everything the metrics are made from (see the module's docstring)."""
    counts = dict.fromkeys(_COUNTS, 0.0)
    counts["episodes"] = float(len(results))
    for result in results:
        counts["wins"] += float(result.success)
        counts["return"] += result.episode_return
        counts["length"] += result.length
        for turn in result.transcript:
            counts["turns"] += 1
            counts["invalid"] += bool(turn.get("invalid_action"))
            recommended = turn.get("recommended")
            if recommended is None:
                continue
            counts["recommended"] += 1
            counts["followed"] += turn.get("choice") == recommended
            if turn.get("oracle") is not None and recommended != turn["oracle"]:
                counts["wrong"] += 1
                counts["overruled"] += turn.get("choice") != recommended
    return counts


def outcome_metrics(prefix: str, suffix: str, counts: Mapping[str, float], summary: bool = True) -> dict[str, float]:
    """The metrics of one group of episodes from its (summed) :func:`episode_counts`.

    Args:
        prefix: ``"<split>/"``.
        suffix: Appended to every key (a group and/or ``_sampled``).
        counts: The group's counts.
        summary: The whole split (return, length, the reflection metrics) rather than a group (episode count only).
    """
    episodes, wins = int(counts["episodes"]), int(counts["wins"])
    low, high = wilson_interval(wins, episodes)
    metrics = {
        f"{prefix}success_rate{suffix}": wins / max(1, episodes),
        f"{prefix}success_rate{suffix}_ci_low": low,
        f"{prefix}success_rate{suffix}_ci_high": high,
    }
    if not summary:
        metrics[f"{prefix}episodes{suffix}"] = float(episodes)
        return metrics
    metrics[f"{prefix}return{suffix}"] = counts["return"] / max(1, episodes)
    metrics[f"{prefix}episode_length{suffix}"] = counts["length"] / max(1, episodes)
    metrics[f"{prefix}invalid_rate{suffix}"] = counts["invalid"] / max(1, counts["turns"])
    if counts["recommended"]:
        metrics[f"{prefix}follows_reflection{suffix}"] = counts["followed"] / counts["recommended"]
        metrics[f"{prefix}wrong_reflection_rate{suffix}"] = counts["wrong"] / counts["recommended"]
        if counts["wrong"]:
            metrics[f"{prefix}overrules_wrong_reflection{suffix}"] = counts["overruled"] / counts["wrong"]
    return metrics


@dataclass
class Evaluation:
    """What :func:`evaluate_player` found.

    Example:
        >>> evaluation = evaluate_player(agent, datamodule, "val", 64)
        >>> evaluation.metrics["val/success_rate"], evaluation.records[0]["turns"][0]["reflection"]

    Attributes:
        metrics: Metric name -> value (the keys of the module docstring), the same on every rank.
        records: This rank's episodes: mode, seed, success, return, final ``info`` and the turns (the policy's
            prompt ids left out), one JSON-ready dict per episode.
    """

    metrics: dict[str, float]
    records: list[dict[str, Any]]


def _record(mode: str, result: EpisodeResult) -> dict[str, Any]:
    turns = []
    for turn in result.transcript:
        turn = dict(turn)
        if "extra" in turn:
            turn["extra"] = {k: v for k, v in turn["extra"].items() if k != "prompt_ids"}
        turns.append(turn)
    return {
        "mode": mode, "seed": result.seed, "success": result.success, "return": result.episode_return,
        "info": result.info, "turns": turns,
    }  # fmt: skip


def evaluate_player(
    player: Player,
    datamodule: Any,
    split: str,
    episodes: int,
    modes: Sequence[str] = ("greedy", "sampled"),
    trainer: Any = None,
) -> Evaluation:
    """Play ``episodes`` held-out episodes of ``split`` with ``player`` and return the metrics and records.

    The seeds, environments and curriculum stage are the datamodule's (``eval_seeds``, ``make_eval_envs``,
    ``evaluation_stage``), the episodes every stage is validated and tested on; ``eval_group_by`` adds success per
    group.

    Args:
        player: Plays ``(envs, seeds, stage, greedy)``.
        datamodule: A :class:`~datamodules.RolloutDataModule` (or anything with the same four members).
        split: ``"val"`` or ``"test"``.
        episodes: Held-out episodes, played once per mode.
        modes: ``"greedy"`` and/or ``"sampled"``.
        trainer: Under DDP, the Lightning trainer: the seeds are dealt out to its ranks and the counts summed.

    Example:
        >>> datamodule = RolloutDataModule.from_config(["configs/dangerous_taxi/reflect_rl.yaml"])
        >>> datamodule.bind(module.tokenizer, examples="rollout")  # e.g. for a trained ReflectRLModule
        >>> evaluation = evaluate_player(module.agent, datamodule, "test", 100)
        >>> evaluation.metrics["test/success_rate"], evaluation.metrics["test/follows_reflection"]
    """
    rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
    seeds = datamodule.eval_seeds(split, episodes)[rank::world]
    envs = datamodule.make_eval_envs(split, max(1, min(len(seeds), datamodule.hparams.num_envs)))
    group_by = datamodule.hparams.eval_group_by
    metrics: dict[str, float] = {}
    records: list[dict[str, Any]] = []
    try:
        for mode, greedy in MODES:
            if mode not in modes:
                continue
            results = player.play(envs, seeds, datamodule.evaluation_stage, greedy)
            suffix = "" if greedy else "_sampled"
            groups: dict[str, list[EpisodeResult]] = {"": results}
            if group_by:
                values = {str(r.info.get(group_by)) for r in results}
                for value in _union_over_ranks(values, trainer):
                    groups[f"_{group_by}_{value}"] = [r for r in results if str(r.info.get(group_by)) == value]
            summed = _sum_over_ranks([episode_counts(members) for members in groups.values()], trainer)
            for (group, _), counts in zip(groups.items(), summed, strict=True):
                metrics.update(outcome_metrics(f"{split}/", f"{group}{suffix}", counts, summary=not group))
            records += [_record(mode, r) for r in results]
    finally:
        for env in envs:
            env.close()
    return Evaluation(metrics, records)


def _sum_over_ranks(counts: list[dict[str, float]], trainer: Any) -> list[dict[str, float]]:
    if trainer is None or trainer.world_size == 1:
        return counts
    flat = torch.tensor([[c[k] for k in _COUNTS] for c in counts], dtype=torch.float64)
    flat = trainer.strategy.reduce(flat.to(trainer.strategy.root_device), reduce_op="sum").cpu().tolist()
    return [dict(zip(_COUNTS, row, strict=True)) for row in flat]


def _union_over_ranks(values: set[str], trainer: Any) -> list[str]:
    """Every rank's group values, sorted (each rank must form the same groups: the sums are collective)."""
    if trainer is not None and trainer.world_size > 1:
        gathered: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(gathered, sorted(values))
        values = set().union(*gathered)
    return sorted(values)


def results_table(
    results: Mapping[str, Mapping[str, float]],
    episodes: int,
    env: str,
    split: str = "test",
    columns: Sequence[str] = ("sampled", "return", "length", "invalid", "follows"),
) -> str:
    """The held-out table of several policies: greedy success (95% CI) and the chosen columns.

    A value a row does not have (e.g. invalid answers of our own models, which cannot give one) is ``-``.

    Example:
        >>> print(results_table({"SFT policy": sft.metrics, "Reflect-RL": rl.metrics}, 100, "dangerous_taxi"))
    """
    p = f"{split}/"
    known = {
        "sampled": ("sampled success", "success_rate_sampled", ".0%"),
        "return": ("return", "return", ".2f"),
        "length": ("length", "episode_length", ".1f"),
        "invalid": ("invalid", "invalid_rate", ".0%"),
        "follows": ("follows refl.", "follows_reflection", ".0%"),
    }

    def cell(metrics: Mapping[str, float], key: str, spec: str) -> str:
        return format(metrics[p + key], spec) if p + key in metrics else "-"

    width = max([20, *(len(name) for name in results)])
    header = f"{'policy':{width}} {'greedy success (95% CI)':>24}"
    header += "".join(f" {known[c][0]:>{max(8, len(known[c][0]))}}" for c in columns)
    lines = [f"Held-out {split} ({episodes} episodes, {env}, stage as configured in eval_stage):", header]
    for name, m in results.items():
        ci = "-"
        if p + "success_rate" in m:
            ci = f"{m[p + 'success_rate']:.0%} ({m[p + 'success_rate_ci_low']:.0%}-{m[p + 'success_rate_ci_high']:.0%})"
        row = f"{name:{width}} {ci:>24}"
        row += "".join(f" {cell(m, known[c][1], known[c][2]):>{max(8, len(known[c][0]))}}" for c in columns)
        lines.append(row)
    return "\n".join(lines)

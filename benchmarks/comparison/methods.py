"""The methods the comparison trains, the pipeline variant each one comes from, and the paper's numbers."""

from __future__ import annotations

from dataclasses import dataclass

from lightning_modules.pipeline import BASELINE_STAGES, STAGES


@dataclass(frozen=True)
class Method:
    """One row of the comparison: which pipeline variant trains it, and which policy of that run it is.

    Attributes:
        title: The row's name on the page.
        variant: ``"base"``, ``"no_negatives"`` or ``"no_curriculum"``: which configs the pipeline runs.
        policy: A row of the pipeline's ``results.json``.
        rl_stage: The pipeline stage whose training curve this method has (``None``: no RL).
        stages: Every stage that trains this method's players, in order.
    """

    title: str
    variant: str
    policy: str
    rl_stage: str | None
    stages: tuple[str, ...]


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
#: The order in which a seed's variants run: ``no_curriculum`` reuses the SFT exports of ``base``.
VARIANT_ORDER = ("base", "no_negatives", "no_curriculum")

#: The paper's GPT-2 XL numbers (Zhou, Du, Li 2024), per environment and method, as the paper reports them.
PAPER = {
    "dangerous_taxi": {"reflect_rl": "58% (drop-off)", "rl_no_reflection": "0% (drop-off)"},
    "auto_explore": {"reflect_rl": "36% / 17% (depth 1 / 2)", "rl_no_reflection": "20% / 4% (depth 1 / 2)"},
    "alfworld": {"reflect_rl": "74% (tomato task)", "rl_no_reflection": "66% (tomato task)"},
}


def variants(methods: list[str]) -> list[str]:
    """The pipeline variants that train ``methods``, each once, in the order the methods first need them."""
    return list(dict.fromkeys(METHODS[m].variant for m in methods))

"""Mean and standard deviation over seeds, formatted as the benchmark tables print success rates."""

from __future__ import annotations

from collections.abc import Iterable

from lightning_modules.evaluation import mean_sd


def spread(values: list[float]) -> str:
    """``mean ± standard deviation (each value)`` in percent, ``-`` without values.

    Example:
        >>> spread([0.5, 0.75])
        '62% ± 18% (50%, 75%)'
    """
    if not values:
        return "-"
    mean, sd = mean_sd(values)
    return f"{mean:.0%} ± {sd:.0%} ({', '.join(f'{v:.0%}' for v in values)})"


def mean_and_sd(values: Iterable[float | None]) -> str:
    """``mean ± sd`` in percent over the values that are not ``None``; only the mean for one, ``-`` for none.

    Example:
        >>> mean_and_sd([0.2, None, 0.4]), mean_and_sd([0.25]), mean_and_sd([None])
        ('30% ± 14%', '25%', '-')
    """
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    mean, sd = mean_sd(known)
    return f"{mean:.0%} ± {sd:.0%}" if len(known) > 1 else f"{mean:.0%}"

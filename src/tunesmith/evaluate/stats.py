"""Uncertainty and significance: seeded bootstrap intervals, paired tests, flips. Pure numpy, no I/O."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def bootstrap_indices(n: int, samples: int, seed: int) -> np.ndarray:
    """``(samples, n)`` resampling indices drawn with replacement from a seeded generator."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(samples, n))


def bootstrap_ci(
    values: Sequence[float], samples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile bootstrap interval: ``(mean, low, high)``."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (math.nan, math.nan, math.nan)
    means = arr[bootstrap_indices(arr.size, samples, seed)].mean(axis=1)
    alpha = (1 - level) / 2
    return float(arr.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def bootstrap_stat(
    stat: Callable[[np.ndarray], float], n: int, samples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """A corpus statistic ``stat(indices)`` (e.g. macro-F1) and its bootstrap interval."""
    if n == 0:
        return (math.nan, math.nan, math.nan)
    vals = np.array([stat(idx) for idx in bootstrap_indices(n, samples, seed)])
    alpha = (1 - level) / 2
    return float(stat(np.arange(n))), float(np.quantile(vals, alpha)), float(np.quantile(vals, 1 - alpha))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], samples: int = 1000, seed: int = 0) -> dict[str, float]:
    """Paired bootstrap of ``mean(a) - mean(b)`` over the same examples.

    Returns:
        ``diff``, its 95% interval ``low``/``high``, and ``p_value``: a two-sided bootstrap p-value
        (twice the share of resamples on the far side of zero, capped at 1).
    """
    da = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if da.size == 0:
        return {"diff": math.nan, "low": math.nan, "high": math.nan, "p_value": math.nan}
    diffs = da[bootstrap_indices(da.size, samples, seed)].mean(axis=1)
    mean = float(da.mean())
    if mean == 0 and not diffs.any():
        p = 1.0
    else:
        far = (diffs <= 0).mean() if mean > 0 else (diffs >= 0).mean()
        p = min(1.0, 2 * float(far))
    return {
        "diff": mean,
        "low": float(np.quantile(diffs, 0.025)),
        "high": float(np.quantile(diffs, 0.975)),
        "p_value": p,
    }


def mcnemar_exact(a_pass: Sequence[bool], b_pass: Sequence[bool]) -> dict[str, float]:
    """Exact McNemar (sign) test on discordant pairs: ``b01`` a-only passes, ``b10`` b-only passes."""
    only_a = sum(bool(x) and not bool(y) for x, y in zip(a_pass, b_pass, strict=True))
    only_b = sum(bool(y) and not bool(x) for x, y in zip(a_pass, b_pass, strict=True))
    n = only_a + only_b
    if n == 0:
        return {"only_a": 0, "only_b": 0, "p_value": 1.0}
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return {"only_a": only_a, "only_b": only_b, "p_value": min(1.0, 2 * tail)}


def flips(before: Sequence[bool], after: Sequence[bool]) -> dict[str, list[int]]:
    """Example indices that went pass->fail and fail->pass from ``before`` to ``after``."""
    pairs = list(zip(before, after, strict=True))
    return {
        "pass_to_fail": [i for i, (b, a) in enumerate(pairs) if b and not a],
        "fail_to_pass": [i for i, (b, a) in enumerate(pairs) if a and not b],
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, NaN when empty."""
    return float(np.percentile(values, q)) if len(values) else math.nan

"""Means with 95 % percentile-bootstrap intervals.

`bootstrap_ci(values)`: draw `RESAMPLES` (2000) resamples of the n values with replacement
from `numpy.random.default_rng(seed)` (resample b is the b-th `rng.integers(0, n, size=n)`
draw; drawn in blocks, which gives the same stream), take each resample's mean, and return the
2.5th and 97.5th percentiles of those means (numpy's default linear interpolation). The same
values and seed give the same interval. `summary(values)` is what `metrics.json` records:
`{"mean", "ci95", "n"}` over the finite values (NaN marks "not defined for this image").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["LEVEL", "RESAMPLES", "SEED", "bootstrap_ci", "summary"]

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
_BLOCK = 1 << 22  # indices drawn at once (32 MiB of int64)


def bootstrap_ci(values: Iterable[float], *, resamples: int = RESAMPLES, seed: int = SEED,
                 level: float = LEVEL) -> tuple[float, float]:
    """The percentile-bootstrap interval of the mean of `values` (see the module's
    docstring); `(nan, nan)` for no values."""
    x = np.asarray(list(values), dtype=np.float64)
    n = len(x)
    if n == 0:
        return float("nan"), float("nan")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    rows = max(1, _BLOCK // n)
    for start in range(0, resamples, rows):
        count = min(rows, resamples - start)
        picks = rng.integers(0, n, size=(count, n))
        means[start:start + count] = x[picks].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def summary(values: Iterable[float | None], *, resamples: int = RESAMPLES, seed: int = SEED
            ) -> dict[str, Any]:
    """`{"mean": m, "ci95": [low, high], "n": n}` over the finite values; mean and interval
    None when there is none."""
    x = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"mean": None, "ci95": None, "n": 0}
    low, high = bootstrap_ci(x, resamples=resamples, seed=seed)
    return {"mean": float(x.mean()), "ci95": [low, high], "n": len(x)}

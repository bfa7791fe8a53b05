"""Bootstrap intervals against a brute-force resampling with the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from xaigraph.explain import stats


def brute_force(values: list[float], resamples: int, seed: int) -> tuple[float, float]:
    """One resample at a time: n indices with replacement, the resample's mean; then the
    2.5th and 97.5th percentiles, interpolated by hand between order statistics."""
    rng = np.random.default_rng(seed)
    n = len(values)
    means = []
    for _ in range(resamples):
        picks = rng.integers(0, n, size=n)
        means.append(sum(values[i] for i in picks) / n)
    means.sort()

    def percentile(q: float) -> float:
        pos = q / 100.0 * (len(means) - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, len(means) - 1)
        return means[lo] + (pos - lo) * (means[hi] - means[lo])

    return percentile(2.5), percentile(97.5)


@pytest.mark.parametrize("n, resamples, seed", [(1, 50, 0), (7, 2000, 0), (50, 999, 3)])
def test_interval_equals_brute_force(n: int, resamples: int, seed: int) -> None:
    values = list(np.random.default_rng(100 + n).random(n))
    got = stats.bootstrap_ci(values, resamples=resamples, seed=seed)
    want = brute_force(values, resamples, seed)
    assert got == pytest.approx(want, abs=1e-12)


def test_blocks_do_not_change_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    values = list(np.random.default_rng(1).random(30))
    whole = stats.bootstrap_ci(values, resamples=500)
    monkeypatch.setattr(stats, "_BLOCK", 30 * 7)  # 7 resamples per block
    assert stats.bootstrap_ci(values, resamples=500) == pytest.approx(whole, abs=1e-12)


def test_summary_drops_undefined_values_and_holds_the_mean() -> None:
    got = stats.summary([1.0, None, float("nan"), 0.0, 1.0, 1.0])
    assert got["n"] == 4 and got["mean"] == 0.75
    low, high = got["ci95"]
    assert 0.0 <= low <= 0.75 <= high <= 1.0
    assert got["ci95"] == pytest.approx(list(brute_force([1.0, 0.0, 1.0, 1.0], 2000, 0)))
    assert stats.summary([0.3, 0.3, 0.3])["ci95"] == pytest.approx([0.3, 0.3])
    assert stats.summary([None, float("nan")]) == {"mean": None, "ci95": None, "n": 0}


def test_an_interval_of_a_wide_sample_covers_its_mean_and_narrows_with_n() -> None:
    rng = np.random.default_rng(7)
    small = stats.bootstrap_ci(rng.random(20))
    large = stats.bootstrap_ci(rng.random(2000))
    assert small[1] - small[0] > 3 * (large[1] - large[0])
    assert large[0] < 0.5 < large[1]

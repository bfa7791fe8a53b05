"""AISE: adaptive input sampling for explanation, with Gaussian-kernel masks.

What is implemented here (written from the method's public description: for a few kernel
widths, a global optimiser looks for the regions that matter, and the map sums the sampled
kernels weighted by their scores):

- A kernel of width `sigma` (a fraction of the input's short side `L`) centred at `c` is
  `K_c(y, x) = exp(-((y - c_y)^2 + (x - c_x)^2) / (2 (sigma L)^2))`, in input pixels.
- For one target `t` and one width, the objective of a centre `c` is
  `f(c) = score_t(keep K_c) - score_t(remove K_c)`, where "keep" applies the mask `K_c` and
  "remove" the mask `1 - K_c` (as RISE: `baseline + mask * (x - baseline)`). `f` is high when
  the kernel's region alone keeps the score and removing it loses the score.
- DIRECT (`scipy.optimize.direct`, locally biased) maximises `f` over the centres in the
  input's rectangle with at most `evals` evaluations per width. Every evaluated centre is a
  sample; DIRECT samples densely where `f` is high.
- The map of target `t` is `sum_i f(c_i) K_{c_i}` over all samples of all widths.
- Detectors: `score_t` is D-RISE's similarity of the masked image's detections to target box
  `t` (`drise.det_weights`), so the same code explains both.

Batching: DIRECT asks for one point at a time, so every (target, width) search runs in a
thread of its own, and a barrier gathers the point each running search waits for into one
predict call (2 inputs per point: keep and remove). A batch is `2 x targets x widths` inputs;
the points are ordered by search, so the maps do not depend on thread timing.
Cost: `2 x T x len(widths) x evals` inferences at most (DIRECT's calls beyond the budget are
answered without inference and ignored).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.explain.rise import check_input

__all__ = ["aise", "kernel"]

Scores = Callable[[np.ndarray], np.ndarray]  # [B, C, H, W] masked inputs -> [B, T]


def kernel(center: tuple[float, float], sigma: float, size: tuple[int, int]) -> np.ndarray:
    """`[H, W]` float32 Gaussian of width `sigma` (pixels) centred at `center` (y, x pixels,
    pixel centres at 0.5, 1.5, ...)."""
    ys = np.arange(size[0], dtype=np.float64) + 0.5
    xs = np.arange(size[1], dtype=np.float64) + 0.5
    gy = np.exp(-((ys - center[0]) ** 2) / (2 * sigma**2))
    gx = np.exp(-((xs - center[1]) ** 2) / (2 * sigma**2))
    return np.outer(gy, gx).astype(np.float32)


class _Barrier:
    """Gathers one pending point from every running search into one scores call."""

    def __init__(self, searches: int, run: Callable[[list[tuple[int, np.ndarray]]],
                                                    list[float]]) -> None:
        self.active = searches
        self.run = run
        self.pending: dict[int, np.ndarray] = {}
        self.results: dict[int, float] = {}
        self.error: BaseException | None = None
        self.cond = threading.Condition()

    def _flush(self) -> None:  # with the lock held
        if not self.pending or len(self.pending) < self.active:
            return
        points = sorted(self.pending.items())
        self.pending.clear()
        try:
            values = self.run(points)
        except BaseException as exc:
            self.error = exc
            values = [0.0] * len(points)
        self.results.update({k: v for (k, _), v in zip(points, values, strict=True)})
        self.cond.notify_all()

    def ask(self, search: int, point: np.ndarray) -> float:
        with self.cond:
            if self.error is not None:
                return 0.0
            self.pending[search] = point
            self._flush()
            while search not in self.results and self.error is None:
                self.cond.wait()
            return self.results.pop(search, 0.0)

    def done(self) -> None:
        with self.cond:
            self.active -= 1
            self._flush()


class _Sampler:
    """The searches' shared state: for each (target, width) search, the samples it
    evaluated; `run` scores a batch of pending centres (keep and remove masks) and counts
    the inferences."""

    def __init__(self, x: np.ndarray, scores: Scores, searches: list[tuple[int, float]],
                 baseline: np.ndarray | float) -> None:
        base = np.asarray(baseline, x.dtype)
        self.base = base[0] if base.ndim == 4 else base
        self.diff = (x[0] - self.base).astype(x.dtype)
        self.dtype = x.dtype
        self.size = (x.shape[2], x.shape[3])
        self.scores = scores
        self.searches = searches
        self.samples: list[list[tuple[float, float, float]]] = [[] for _ in searches]
        self.inferences = 0

    def run(self, points: list[tuple[int, np.ndarray]]) -> list[float]:
        """`f(c)` of each search's pending centre `c` (pixels), recorded as its sample."""
        ks = np.stack([kernel((p[0], p[1]), self.searches[k][1], self.size)
                       for k, p in points])
        keep = self.base + ks[:, None] * self.diff
        remove = self.base + (1.0 - ks[:, None]) * self.diff
        s = np.asarray(self.scores(np.concatenate([keep, remove]).astype(self.dtype)),
                       np.float64)
        self.inferences += 2 * len(points)
        n = len(points)
        values = []
        for j, (k, p) in enumerate(points):
            t = self.searches[k][0]
            value = float(s[j, t] - s[n + j, t])
            self.samples[k].append((float(p[0]), float(p[1]), value))
            values.append(value)
        return values

    def maps(self, targets: int) -> np.ndarray:
        """`[T, H, W]` float32: each target's samples' kernels, weighted by their values."""
        maps = np.zeros((targets, *self.size), np.float64)
        for (t, sigma), found in zip(self.searches, self.samples, strict=True):
            for cy, cx, value in found:
                maps[t] += value * kernel((cy, cx), sigma, self.size)
        return maps.astype(np.float32)


def _check(evals: int, widths: Sequence[float]) -> None:
    """`BadInputError` unless `evals` is positive and every width is in (0, 1]."""
    if evals < 1:
        raise BadInputError(f"AISE needs at least one evaluation per kernel width, not {evals}")
    if not widths or any(not 0 < w <= 1 for w in widths):
        raise BadInputError(f"AISE kernel widths must be in (0, 1], not {list(widths)}")


def _search(barrier: _Barrier, k: int, evals: int, size: tuple[int, int]) -> None:
    """Search `k`: DIRECT over the centres in the unit square (scaled to `size` pixels),
    each asked through `barrier`, at most `evals` of them answered."""
    calls = 0

    def objective(c: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        if calls > evals:
            return 0.0
        return -barrier.ask(k, np.array([c[0] * size[0], c[1] * size[1]]))

    try:
        from scipy.optimize import direct  # lazily: scipy's import is slow

        direct(objective, [(0.0, 1.0), (0.0, 1.0)], maxfun=evals, maxiter=10 * evals,
               locally_biased=True)
    finally:
        barrier.done()


def aise(x: np.ndarray, scores: Scores, *, targets: int, widths: Sequence[float], evals: int,
         baseline: np.ndarray | float = 0.0) -> tuple[np.ndarray, int]:
    """AISE maps `[T, H, W]` float32 for one input `x` `[1, C, H, W]`, and the number of
    model inferences it took. `scores(inputs)` gives the `[B, targets]` target scores."""
    check_input(x)
    _check(evals, widths)
    height, width = x.shape[2], x.shape[3]
    if targets == 0:
        return np.zeros((0, height, width), np.float32), 0
    side = float(min(height, width))
    searches = [(t, float(w) * side) for t in range(targets) for w in widths]
    sampler = _Sampler(x, scores, searches, baseline)
    barrier = _Barrier(len(searches), sampler.run)
    threads = [threading.Thread(target=_search, args=(barrier, k, evals, (height, width)),
                                daemon=True)
               for k in range(len(searches))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if barrier.error is not None:
        raise barrier.error
    return sampler.maps(targets), sampler.inferences

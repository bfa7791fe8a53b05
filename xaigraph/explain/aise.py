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


def aise(x: np.ndarray, scores: Scores, *, targets: int, widths: Sequence[float], evals: int,
         baseline: np.ndarray | float = 0.0) -> tuple[np.ndarray, int]:
    """AISE maps `[T, H, W]` float32 for one input `x` `[1, C, H, W]`, and the number of
    model inferences it took. `scores(inputs)` gives the `[B, targets]` target scores."""
    check_input(x)
    if evals < 1:
        raise BadInputError(f"AISE needs at least one evaluation per kernel width, not {evals}")
    if not widths or any(not 0 < w <= 1 for w in widths):
        raise BadInputError(f"AISE kernel widths must be in (0, 1], not {list(widths)}")
    height, width = x.shape[2], x.shape[3]
    if targets == 0:
        return np.zeros((0, height, width), np.float32), 0
    side = float(min(height, width))
    base = np.asarray(baseline, x.dtype)
    if base.ndim == 4:
        base = base[0]
    diff = (x[0] - base).astype(x.dtype)
    searches = [(t, float(w) * side) for t in range(targets) for w in widths]
    samples: list[list[tuple[float, float, float]]] = [[] for _ in searches]
    inferences = 0

    def run(points: list[tuple[int, np.ndarray]]) -> list[float]:
        nonlocal inferences
        ks = np.stack([kernel((p[0], p[1]), searches[k][1], (height, width))
                       for k, p in points])
        keep = base + ks[:, None] * diff
        remove = base + (1.0 - ks[:, None]) * diff
        s = np.asarray(scores(np.concatenate([keep, remove]).astype(x.dtype)), np.float64)
        inferences += 2 * len(points)
        n = len(points)
        values = []
        for j, (k, p) in enumerate(points):
            t = searches[k][0]
            value = float(s[j, t] - s[n + j, t])
            samples[k].append((float(p[0]), float(p[1]), value))
            values.append(value)
        return values

    barrier = _Barrier(len(searches), run)

    def search(k: int) -> None:
        calls = 0

        def objective(c: np.ndarray) -> float:
            nonlocal calls
            calls += 1
            if calls > evals:
                return 0.0
            return -barrier.ask(k, np.array([c[0] * height, c[1] * width]))

        try:
            from scipy.optimize import direct  # lazily: scipy's import is slow

            direct(objective, [(0.0, 1.0), (0.0, 1.0)], maxfun=evals, maxiter=10 * evals,
                   locally_biased=True)
        finally:
            barrier.done()

    threads = [threading.Thread(target=search, args=(k,), daemon=True)
               for k in range(len(searches))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if barrier.error is not None:
        raise barrier.error
    maps = np.zeros((targets, height, width), np.float64)
    for (t, sigma), found in zip(searches, samples, strict=True):
        for cy, cx, value in found:
            maps[t] += value * kernel((cy, cx), sigma, (height, width))
    return maps.astype(np.float32), inferences

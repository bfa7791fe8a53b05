"""RISE: randomized input sampling for explanation (Petsiuk, Das, Saenko, BMVC 2018,
arXiv 1806.07421).

For one input `I` and `N` random masks `M_i` (`masks.grid_masks`: `s x s` cells kept with
probability `p`, bilinear upsampling, random shift), the map of class `k` is

    S_k = sum_i score_k(I ⊙ M_i) * M_i / (N * p)

the Monte-Carlo estimate of the expected score given that a pixel is kept (the paper's eq. 6).
A mask is applied in the input's pixel space as `baseline + M * (x - baseline)`, so a removed
pixel takes the baseline's value (the model input of a black image, by default 0).

`mask_sum` is the loop RISE and D-RISE share. A `Runner` turns a `MaskPlan` (seed, number of
masks, grid) into batches of (draws, model outputs): `HostRunner` makes the masked inputs in
numpy (never more than `batch x C x H x W` of them at a time, the next batch in a worker
thread while the model runs the current one); `explain.masked.MaskedModel` makes and applies
the masks inside the compiled model, so the host sends `s x s` grids and two shifts per mask.
Either way the weighted masks are summed per shift (`masks.GridSum`, float64), so the engine
and the batch size change only the rounding of the last bits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.explain.masks import Draws, GridSum, check_grid, draw_batches, masks_of

__all__ = ["HostRunner", "MaskPlan", "Predict", "Runner", "auto_batch_size", "mask_sum", "rise"]

Predict = Callable[[np.ndarray], np.ndarray]  # [B, C, H, W] -> [B, K] class probabilities


class MaskPlan(NamedTuple):
    """Which masks a sampler runs: masks `0 .. num_masks - 1` of `seed`, grids of
    `cells x cells` cells kept with probability `prob`."""

    seed: int
    num_masks: int
    cells: int
    prob: float


Runner = Callable[[MaskPlan], Iterator[tuple[Draws, Any]]]  # batches of (draws, outputs)

BATCH_BYTES = 32 << 20  # masked inputs per batch: about this many bytes at most


def auto_batch_size(x: np.ndarray, limit: int = 64) -> int:
    """Masked inputs per batch for input `x` `[1, C, H, W]`: at most `limit`, and no more
    than `BATCH_BYTES` of them (4 at 1024x1024x3 float32)."""
    return max(1, min(limit, BATCH_BYTES // max(x.nbytes, 1)))


def check_input(x: np.ndarray) -> None:
    if x.ndim != 4 or x.shape[0] != 1:
        raise BadInputError(f"a black-box method takes one input [1, C, H, W], not shape "
                            f"{list(x.shape)}")


class HostRunner:
    """A `Runner` that makes the masked inputs `baseline + M * (x - baseline)` in numpy and
    gives each batch to `predict` (any function of a batch of inputs)."""

    def __init__(self, x: np.ndarray, predict: Callable[[np.ndarray], Any], *,
                 baseline: np.ndarray | float = 0.0, batch_size: int = 0) -> None:
        check_input(x)
        base = np.asarray(baseline, x.dtype)
        self.base = base[0] if base.ndim == 4 else base
        self.diff = (x[0] - self.base).astype(x.dtype)
        self.shifted = bool(np.any(self.base != 0))
        self.predict = predict
        self.size = (int(x.shape[2]), int(x.shape[3]))
        self.batch = batch_size if batch_size > 0 else auto_batch_size(x)

    def inputs(self, d: Draws) -> np.ndarray:
        """The masked inputs of draws `d`: `[count, C, H, W]`."""
        m = masks_of(d, self.size)
        out = np.empty((d.length, *self.diff.shape), self.diff.dtype)
        np.multiply(m[:, None], self.diff, out=out)
        if self.shifted:
            out += self.base
        return out

    def __call__(self, plan: MaskPlan) -> Iterator[tuple[Draws, Any]]:
        batches = draw_batches(plan.seed, plan.num_masks, self.batch, plan.cells, plan.prob,
                               self.size)

        def make() -> tuple[Draws, np.ndarray] | None:
            d = next(batches, None)
            return None if d is None else (d, self.inputs(d))

        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(make)
            while (ready := pending.result()) is not None:
                pending = pool.submit(make)
                yield ready[0], self.predict(ready[1])


def mask_sum(x: np.ndarray, weights: Callable[[Any], np.ndarray], run: Runner,
             plan: MaskPlan, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """`sum_i weights(outputs_i)[t] * M_i` over the masks of `plan`: `[T, H, W]` float64,
    where `run` gives the model's outputs for each batch of masked inputs and `weights` maps
    them to `[count, T]`. `progress` is called with the number of masks of each batch."""
    check_input(x)
    if plan.num_masks < 1:
        raise BadInputError(f"--num-masks must be a positive integer, not {plan.num_masks}")
    size = (int(x.shape[2]), int(x.shape[3]))
    check_grid(plan.cells, plan.prob, size)
    total: GridSum | None = None
    for d, outputs in run(plan):
        w = np.asarray(weights(outputs), np.float64)
        if w.ndim != 2 or w.shape[0] != d.length:
            raise BadInputError(f"the model gave scores of shape {list(w.shape)} for a "
                                f"batch of {d.length} inputs")
        if total is None:
            total = GridSum(w.shape[1], plan.cells, size)
        total.add(w, d)
        if progress is not None:
            progress(d.length)
    assert total is not None
    return total.total()


def rise(x: np.ndarray, predict: Predict, *, targets: Sequence[int], num_masks: int,
         cells: int, prob: float, seed: int, batch_size: int = 0,
         baseline: np.ndarray | float = 0.0, runner: Runner | None = None,
         progress: Callable[[int], None] | None = None) -> np.ndarray:
    """RISE maps of classes `targets` for one input `x` `[1, C, H, W]`: `[T, H, W]` float32.

    `predict` maps a batch of inputs to class probabilities `[B, K]`; `batch_size` masked
    inputs go to it at a time (0: `auto_batch_size`). `runner`: another way to run the
    masked inputs (`explain.masked`), giving the same probabilities; None: `HostRunner`.
    `progress`: called with the number of masks of each batch done."""
    picks = [int(t) for t in targets]
    if not picks:
        raise BadInputError("RISE needs at least one target class")

    def weights(probabilities: np.ndarray) -> np.ndarray:
        scores = np.asarray(probabilities)
        if scores.ndim != 2:
            raise BadInputError(f"the model gave scores of shape {list(scores.shape)}; "
                                f"RISE needs [batch, classes]")
        bad = [t for t in picks if not 0 <= t < scores.shape[1]]
        if bad:
            raise BadInputError(f"target class {bad[0]} is not one of the model's "
                                f"{scores.shape[1]} classes")
        return scores[:, picks]

    run = runner or HostRunner(x, predict, baseline=baseline, batch_size=batch_size)
    total = mask_sum(x, weights, run, MaskPlan(seed, num_masks, cells, prob), progress)
    return (total / (num_masks * prob)).astype(np.float32)

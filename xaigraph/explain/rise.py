"""RISE: randomized input sampling for explanation (Petsiuk, Das, Saenko, BMVC 2018,
arXiv 1806.07421).

For one input `I` and `N` random masks `M_i` (`masks.grid_masks`: `s x s` cells kept with
probability `p`, bilinear upsampling, random shift), the map of class `k` is

    S_k = sum_i score_k(I ⊙ M_i) * M_i / (N * p)

the Monte-Carlo estimate of the expected score given that a pixel is kept (the paper's eq. 6).
A mask is applied in the input's pixel space as `baseline + M * (x - baseline)`, so a removed
pixel takes the baseline's value (the model input of a black image, by default 0).

`mask_sum` is the loop both RISE and D-RISE use: masks are made batch by batch (never more
than `batch_size x H x W` of them at a time), the next batch is made in a worker thread while
the model runs the current one, and `weights(batch of masked inputs) -> [B, T]` weighs them.
Sums are kept in float64 so that the batch size changes only the rounding of the last bits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.explain.masks import check_grid, grid_masks

__all__ = ["Predict", "Weights", "auto_batch_size", "mask_sum", "rise"]

Predict = Callable[[np.ndarray], np.ndarray]  # [B, C, H, W] -> [B, K] class probabilities
Weights = Callable[[np.ndarray], np.ndarray]  # [B, C, H, W] masked inputs -> [B, T] weights

BATCH_BYTES = 32 << 20  # masked inputs per batch: about this many bytes at most


def auto_batch_size(x: np.ndarray, limit: int = 64) -> int:
    """Masked inputs per batch for input `x` `[1, C, H, W]`: at most `limit`, and no more
    than `BATCH_BYTES` of them (4 at 1024x1024x3 float32)."""
    return max(1, min(limit, BATCH_BYTES // max(x.nbytes, 1)))


def check_input(x: np.ndarray) -> None:
    if x.ndim != 4 or x.shape[0] != 1:
        raise BadInputError(f"a black-box method takes one input [1, C, H, W], not shape "
                            f"{list(x.shape)}")


def mask_sum(x: np.ndarray, weights: Weights, *, num_masks: int, cells: int, prob: float,
             seed: int, batch_size: int, baseline: np.ndarray | float = 0.0) -> np.ndarray:
    """`sum_i weights(x ⊙ M_i)[t] * M_i` over masks `0 .. num_masks - 1` of `seed`:
    `[T, H, W]` float64 (T is the number of columns `weights` returns)."""
    check_input(x)
    if num_masks < 1:
        raise BadInputError(f"--num-masks must be a positive integer, not {num_masks}")
    height, width = x.shape[2], x.shape[3]
    check_grid(cells, prob, (height, width))
    batch = batch_size if batch_size > 0 else auto_batch_size(x)
    base = np.asarray(baseline, x.dtype)
    if base.ndim == 4:
        base = base[0]
    diff = (x[0] - base).astype(x.dtype)

    def make(start: int) -> tuple[np.ndarray, np.ndarray]:
        m = grid_masks(seed, start, min(batch, num_masks - start), cells, prob, (height, width))
        return m, base + m[:, None] * diff

    total: np.ndarray | None = None
    starts = list(range(0, num_masks, batch))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(make, starts[0])
        for k in range(len(starts)):
            masks, inputs = pending.result()
            if k + 1 < len(starts):
                pending = pool.submit(make, starts[k + 1])
            w = np.asarray(weights(inputs), np.float64)
            if w.ndim != 2 or w.shape[0] != len(masks):
                raise BadInputError(f"the model gave scores of shape {list(w.shape)} for a "
                                    f"batch of {len(masks)} inputs")
            part = w.T @ masks.reshape(len(masks), -1).astype(np.float64)
            total = part if total is None else total + part
    assert total is not None
    return total.reshape(-1, height, width)


def rise(x: np.ndarray, predict: Predict, *, targets: Sequence[int], num_masks: int,
         cells: int, prob: float, seed: int, batch_size: int = 0,
         baseline: np.ndarray | float = 0.0) -> np.ndarray:
    """RISE maps of classes `targets` for one input `x` `[1, C, H, W]`: `[T, H, W]` float32.

    `predict` maps a batch of inputs to class probabilities `[B, K]`; `batch_size` masked
    inputs go to it at a time (0: `auto_batch_size`)."""
    picks = [int(t) for t in targets]
    if not picks:
        raise BadInputError("RISE needs at least one target class")

    def weights(inputs: np.ndarray) -> np.ndarray:
        scores = np.asarray(predict(inputs))
        if scores.ndim != 2:
            raise BadInputError(f"the model gave scores of shape {list(scores.shape)}; "
                                f"RISE needs [batch, classes]")
        bad = [t for t in picks if not 0 <= t < scores.shape[1]]
        if bad:
            raise BadInputError(f"target class {bad[0]} is not one of the model's "
                                f"{scores.shape[1]} classes")
        return scores[:, picks]

    total = mask_sum(x, weights, num_masks=num_masks, cells=cells, prob=prob, seed=seed,
                     batch_size=batch_size, baseline=baseline)
    return (total / (num_masks * prob)).astype(np.float32)

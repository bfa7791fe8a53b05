"""Random masks for the black-box samplers, made batch by batch from a seed.

RISE's masks (Petsiuk, Das, Saenko, BMVC 2018, arXiv 1806.07421, section 3.2): a binary grid
of `s x s` cells, each cell 1 with probability `p`, upsampled bilinearly to
`(s + 1) * cell` pixels per side (`cell = ceil(H / s)`, `ceil(W / s)`), then cropped to
`H x W` at a random integer shift in `[0, cell)` along each axis. The shift moves the cell
borders so the masks do not all share one lattice.

Reproducibility: all of mask `i`'s randomness comes from a counter-based generator keyed by
`(seed, i)` (numpy's Philox), so a mask does not depend on which batch it is made in: the same
seed gives the same masks, hence the same maps, whatever the batch size. `grid_mask` makes one
mask; `grid_masks` makes a batch of consecutive indices with the same numbers.

The bilinear upsampling is a matrix product: `mask = A_dy @ grid @ B_dx^T`, where the rows of
`A` (`B`) are the interpolation weights of each output row (column) from the `s` grid rows
(columns), half-pixel centres (`u = (y + 0.5) * s / S - 0.5`, clamped to the grid). A batch is
made by batched matrix products, never more than `count x H x W` floats at a time.
"""

from __future__ import annotations

import math

import numpy as np

from xaigraph.errors import BadInputError

__all__ = ["check_grid", "grid_mask", "grid_masks", "interpolation_matrix", "mask_randomness"]


def check_grid(cells: int, prob: float, size: tuple[int, int]) -> None:
    """A `BadInputError` (one line) for grid settings that make no sense."""
    if not isinstance(cells, int) or cells < 1:
        raise BadInputError(f"--mask-cells must be a positive integer, not {cells}")
    if not 0.0 < prob <= 1.0:
        raise BadInputError(f"--mask-prob must be in (0, 1], not {prob}")
    if cells > min(size):
        raise BadInputError(f"--mask-cells {cells} is more than the input's side "
                            f"({min(size)} pixels)")


def interpolation_matrix(cells: int, length: int) -> np.ndarray:
    """`[length, cells]` float32: bilinear weights from `cells` samples to `length` pixels
    (half-pixel centres, clamped at the ends); every row sums to 1."""
    u = (np.arange(length, dtype=np.float64) + 0.5) * cells / length - 0.5
    u = np.clip(u, 0.0, cells - 1)
    lo = np.floor(u).astype(np.int64)
    hi = np.minimum(lo + 1, cells - 1)
    frac = u - lo
    m = np.zeros((length, cells), np.float64)
    rows = np.arange(length)
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    return m.astype(np.float32)


def _cell(cells: int, length: int) -> int:
    return math.ceil(length / cells)


def mask_randomness(seed: int, index: int, cells: int, prob: float, size: tuple[int, int]
                    ) -> tuple[np.ndarray, int, int]:
    """Mask `index`'s random draws: (grid `[cells, cells]` float32 of 0/1, shift dy, shift dx).

    Drawn from Philox keyed by `(seed, index)`: first the `cells * cells` uniforms of the
    grid (a cell is 1 when its uniform is < `prob`), then the two shifts."""
    rng = np.random.Generator(np.random.Philox(key=np.array([seed, index], dtype=np.uint64)))
    grid = (rng.random((cells, cells)) < prob).astype(np.float32)
    dy = int(rng.integers(0, _cell(cells, size[0])))
    dx = int(rng.integers(0, _cell(cells, size[1])))
    return grid, dy, dx


def _matrices(cells: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = size
    return (interpolation_matrix(cells, (cells + 1) * _cell(cells, h)),
            interpolation_matrix(cells, (cells + 1) * _cell(cells, w)))


def grid_mask(seed: int, index: int, cells: int, prob: float, size: tuple[int, int]
              ) -> np.ndarray:
    """Mask `index` of the sequence of `seed`: `[H, W]` float32 in 0..1 (one at a time)."""
    grid, dy, dx = mask_randomness(seed, index, cells, prob, size)
    up_h, up_w = _matrices(cells, size)
    h, w = size
    return (up_h[dy:dy + h] @ grid @ up_w[dx:dx + w].T).astype(np.float32)


def grid_masks(seed: int, start: int, count: int, cells: int, prob: float,
               size: tuple[int, int]) -> np.ndarray:
    """Masks `start .. start + count - 1` of the sequence of `seed`: `[count, H, W]` float32,
    each equal to `grid_mask(seed, i, ...)`."""
    h, w = size
    up_h, up_w = _matrices(cells, size)
    grids = np.empty((count, cells, cells), np.float32)
    rows = np.empty((count, h, cells), np.float32)
    cols = np.empty((count, cells, w), np.float32)
    for j in range(count):
        grids[j], dy, dx = mask_randomness(seed, start + j, cells, prob, size)
        rows[j] = up_h[dy:dy + h]
        cols[j] = up_w[dx:dx + w].T
    return np.matmul(np.matmul(rows, grids), cols)

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

Sums of weighted masks (`GridSum`): `M_i = A_{dy_i} G_i B_{dx_i}^T` is linear in its grid, so

    sum_i w_i M_i = sum_{dy, dx} A_dy (sum_{i: shift (dy, dx)} w_i G_i) B_dx^T.

A sampler adds `w_i G_i` (`s x s` numbers, float64) to the bin of mask `i`'s shift and the
`H x W` sum is made once at the end: a mask costs `s x s` additions instead of `H x W`, the
sum needs no mask in the host's memory (so the masks can be made inside the model,
`explain.masked`), and it does not depend on how the masks were batched.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from xaigraph.errors import BadInputError

__all__ = [
    "Draws",
    "GridSum",
    "check_grid",
    "draw_batches",
    "draws",
    "grid_mask",
    "grid_masks",
    "interpolation_matrix",
    "mask_randomness",
    "masks_of",
    "windows",
]


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


class Draws(NamedTuple):
    """The random draws of a batch of masks: `grids` `[count, s, s]` float32 0/1 and the
    shifts `dy`, `dx` `[count]` int32."""

    grids: np.ndarray
    dy: np.ndarray
    dx: np.ndarray

    @property
    def length(self) -> int:
        return len(self.grids)


def draws(seed: int, start: int, count: int, cells: int, prob: float, size: tuple[int, int]
          ) -> Draws:
    """The draws of masks `start .. start + count - 1` of the sequence of `seed`."""
    grids = np.empty((count, cells, cells), np.float32)
    dy = np.empty(count, np.int32)
    dx = np.empty(count, np.int32)
    for j in range(count):
        grids[j], dy[j], dx[j] = mask_randomness(seed, start + j, cells, prob, size)
    return Draws(grids, dy, dx)


def draw_batches(seed: int, num_masks: int, batch: int, cells: int, prob: float,
                 size: tuple[int, int]) -> Iterator[Draws]:
    """The draws of masks `0 .. num_masks - 1` of `seed`, `batch` masks at a time."""
    for start in range(0, num_masks, batch):
        yield draws(seed, start, min(batch, num_masks - start), cells, prob, size)


def windows(cells: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Every shift's interpolation matrices: rows `[cell_h, H, s]` (`A_dy`) and columns
    `[cell_w, s, W]` (`B_dx^T`), float32."""
    h, w = size
    up_h, up_w = _matrices(cells, size)
    rows = np.stack([up_h[dy:dy + h] for dy in range(_cell(cells, h))])
    cols = np.stack([up_w[dx:dx + w].T for dx in range(_cell(cells, w))])
    return rows, cols


def masks_of(d: Draws, size: tuple[int, int]) -> np.ndarray:
    """The masks `[count, H, W]` float32 of draws `d`."""
    rows, cols = windows(d.grids.shape[1], size)
    return np.matmul(np.matmul(rows[d.dy], d.grids), cols[d.dx])


def grid_masks(seed: int, start: int, count: int, cells: int, prob: float,
               size: tuple[int, int]) -> np.ndarray:
    """Masks `start .. start + count - 1` of the sequence of `seed`: `[count, H, W]` float32,
    each equal to `grid_mask(seed, i, ...)`."""
    return masks_of(draws(seed, start, count, cells, prob, size), size)


FLUSH_MASKS = 128  # GridSum gathers this many masks' weights before adding them


class GridSum:
    """`sum_i w_i[t] M_i` for `T` targets, kept as per-shift sums of weighted grids in
    float64 (see the module's docstring)."""

    def __init__(self, targets: int, cells: int, size: tuple[int, int]) -> None:
        self.size = size
        self.cells = cells
        self.bins = np.zeros((_cell(cells, size[0]), _cell(cells, size[1]), targets, cells,
                              cells), np.float64)
        self.pending: list[tuple[np.ndarray, Draws]] = []
        self.waiting = 0

    def add(self, weights: np.ndarray, d: Draws) -> None:
        """Add the masks of draws `d`, weighted by `weights` `[count, T]` (gathered a few
        batches at a time: one vectorised update costs less than many small ones)."""
        self.pending.append((np.asarray(weights, np.float64), d))
        self.waiting += d.length
        if self.waiting >= FLUSH_MASKS:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        w = np.concatenate([p[0] for p in self.pending])
        grids = np.concatenate([p[1].grids for p in self.pending])
        dy = np.concatenate([p[1].dy for p in self.pending])
        dx = np.concatenate([p[1].dx for p in self.pending])
        np.add.at(self.bins, (dy, dx), w[:, :, None, None] * grids[:, None])
        self.pending.clear()
        self.waiting = 0

    def total(self) -> np.ndarray:
        """`[T, H, W]` float64: the weighted sum of the masks added."""
        self._flush()
        rows, cols = (m.astype(np.float64) for m in windows(self.cells, self.size))
        out = np.zeros((self.bins.shape[2], *self.size), np.float64)
        for dy in range(self.bins.shape[0]):
            if self.bins[dy].any():
                right = np.einsum("xtab,xbw->taw", self.bins[dy], cols)  # [T, s, W]
                out += np.matmul(rows[dy], right)
        return out

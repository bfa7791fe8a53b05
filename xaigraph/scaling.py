"""Min-max scaling of each saliency map to 0..255 (uint8), built inside the graph."""

from __future__ import annotations

import numpy as np

from xaigraph.ops import OpBuilder, T

__all__ = ["EPS", "scale_to_u8"]

EPS = 1e-12  # a constant map scales to all zeros instead of dividing by zero


def scale_to_u8(b: OpBuilder, maps: T, rank: int) -> T:
    """Scale each `[h, w]` map of `maps` (rank 3 `[N, h, w]` or 4 `[N, K, h, w]`) to u8."""
    x = maps if b.dtype(maps) == "f32" else b.cast(maps, "f32")
    shape = b.shape_of(x)
    lead = b.dims(x, list(range(rank - 2)))
    flat = b.reshape(x, b.concat([lead, b.const(np.asarray([-1], dtype=np.int64))], 0))
    lo = b.reduce_min(flat, [-1], keepdims=True)
    hi = b.reduce_max(flat, [-1], keepdims=True)
    span = b.maximum(b.sub(hi, lo), b.const(np.asarray(EPS, dtype=np.float32)))
    unit = b.div(b.sub(flat, lo), span)
    scaled = b.mul(unit, b.const(np.asarray(255.0, dtype=np.float32)))
    scaled = b.clip(b.round(scaled), 0.0, 255.0)
    return b.reshape(b.cast(scaled, "u8"), shape)

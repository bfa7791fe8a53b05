"""Min-max scaling of each saliency map to 0..255 (uint8), built inside the graph.

    u8 = floor((x - min) * 255 / max(max - min, EPS) + 0.5)

per `[h, w]` map: round half up of the min-max scaled value. The ops are chosen to be few
(a runtime pays a fixed cost per op) and exact in both runtimes: both truncate when they cast
a float to u8, and the value cast lies in [0.5, 255.5) by construction, so no clamp is needed.
"""

from __future__ import annotations

import numpy as np

from xaigraph.ops import OpBuilder, T

__all__ = ["EPS", "scale_to_u8"]

EPS = 1e-12  # a constant map scales to all zeros instead of dividing by zero


def scale_to_u8(b: OpBuilder, maps: T, rank: int) -> T:
    """Scale each `[h, w]` map of `maps` (rank 3 `[N, h, w]` or 4 `[N, K, h, w]`) to u8."""
    x = maps if b.dtype(maps) == "f32" else b.cast(maps, "f32")
    spatial = [rank - 2, rank - 1]
    lo = b.reduce_min(x, spatial, keepdims=True)
    hi = b.reduce_max(x, spatial, keepdims=True)
    span = b.maximum(b.sub(hi, lo), b.const(np.asarray(EPS, dtype=np.float32)))
    gain = b.div(b.const(np.asarray(255.0, dtype=np.float32)), span)
    scaled = b.add(b.mul(b.sub(x, lo), gain), b.const(np.asarray(0.5, dtype=np.float32)))
    return b.cast(scaled, "u8")

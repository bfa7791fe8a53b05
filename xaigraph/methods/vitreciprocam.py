"""ViT-ReciproCAM (Byun & Lee, arXiv 2310.02588), built inside the graph.

The target is the token map `X` `[N, L, D]` at the input of the last transformer block: `P`
prefix tokens (CLS, distillation, registers) then an `H x W` grid. For each grid location
`m = (i, j)` the mosaic keeps the prefix tokens, weights the grid tokens by a 3x3 binomial
kernel centred on `m` (1 at `m`, 1/2 at its edge neighbours, 1/4 at its corners, 0 elsewhere)
and runs the last block, the final norm and the head on it: `S[k, i, j]` is class `k`'s score.

Plain form: a copy of that head runs on the batch of `H*W` masked sequences per image.
"""

from __future__ import annotations

import numpy as np

from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.methods.headcopy import copy_head
from xaigraph.methods.pooled import to_maps
from xaigraph.ops import OpBuilder, T
from xaigraph.target import Target
from xaigraph.tokens import TokenGrid

__all__ = ["ViTReciproCAM", "token_masks"]

KERNEL = np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5])  # 3x3, 1 at the centre


def token_masks(grid: TokenGrid) -> np.ndarray:
    """`[H*W, L]`: the weight of every token in the mosaic of each grid location."""
    h, w, p = grid.height, grid.width, grid.prefix
    masks = np.zeros((h * w, p + h * w), dtype=np.float32)
    masks[:, :p] = 1.0
    for i in range(h):
        for j in range(w):
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    ti, tj = i + di, j + dj
                    if 0 <= ti < h and 0 <= tj < w:
                        masks[i * w + j, p + ti * w + tj] = KERNEL[di + 1, dj + 1]
    return masks


class ViTReciproCAM:
    name = "vitreciprocam"
    per_class = True
    summary = "last block + head re-run on kernel-masked token maps, [N, K, H, W]"

    def check(self, view: GraphView, target: Target, head: Head) -> str | None:
        if target.tokens is None:
            return ("the target is not a transformer's token map (no transformer block after "
                    "the last spatial feature map)")
        if head.side_inputs:
            names = ", ".join(view.describe(v) for v in head.side_inputs[:3])
            return f"the head also reads {names}, which does not come from the token map"
        if view.tensor(target.value).dtype not in ("f32", "f16"):
            return "the token map is not a float tensor"
        return None

    def form(self, view: GraphView, target: Target, head: Head) -> str:
        grid = target.tokens
        assert grid is not None
        return (f"plain form: the last block and the head run on {grid.locations} masked copies "
                f"of the token map per image ({grid.prefix} prefix + {grid.height}x"
                f"{grid.width} grid tokens)")

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head) -> T:
        grid = target.tokens
        assert grid is not None
        x = b.value(target.value)
        n = b.dims(x, [0])
        masks = token_masks(grid)
        if b.dtype(x) == "f16":
            masks = masks.astype(np.float16)
        weights = b.const(masks.reshape(1, grid.locations, -1, 1))  # [1, HW, L, 1]
        mosaics = b.mul(b.unsqueeze(x, [1]), weights)  # [N, HW, L, D]
        flat = b.reshape(mosaics, b.concat([b.const(np.asarray([-1], dtype=np.int64)),
                                            b.dims(x, [1, 2])], 0))  # [N*HW, L, D]
        (out,) = copy_head(b, view, head, head.ops, {target.value: flat}, [head.scores],
                           b.dims(flat, [0]))
        h = b.const(np.asarray([grid.height], dtype=np.int64))
        w = b.const(np.asarray([grid.width], dtype=np.int64))
        maps = to_maps(b, target, out, n, h, w)
        return maps if b.dtype(maps) == "f32" else b.cast(maps, "f32")

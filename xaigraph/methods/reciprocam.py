"""ReciproCAM (Byun & Lee, arXiv 2209.14074), built inside the graph.

For a target map `F` (`C x H x W`) and each location `(i, j)`, the mosaic `M_ij` keeps `F` at
`(i, j)` and zeroes it elsewhere; `S[k, i, j] = head(M_ij)[k]`.

Two exact forms:

- fast: when the head starts with global average pooling, `GAP(M_ij) = F[:, i, j] / (H*W)`,
  so only the ops after the pooling run, on the `H*W` location vectors as one batch. When
  per-location ops P (1x1 convolutions, activations) come before the pooling, the mosaic is
  zero away from `(i, j)`, so `GAP(P(M_ij)) = (P(F[:, i, j]) + (H*W - 1) * P(0)) / (H*W)`;
- mosaic: otherwise a copy of the whole head runs on the batch of `H*W` mosaics per image.

Both use the map's runtime shape, so dynamic batch and spatial sizes keep working.
"""

from __future__ import annotations

import numpy as np

from xaigraph.errors import MethodError
from xaigraph.graph_view import GraphView, Value
from xaigraph.head import Head
from xaigraph.ops import OpBuilder, T
from xaigraph.target import Target

__all__ = ["ReciproCAM"]

_NP = {"f32": np.float32, "f16": np.float16}


def _op_list(view: GraphView, op_ids: list[str]) -> str:
    return " > ".join(view.ops[o].type for o in op_ids if not view.is_shape_computation(o))


def _i64(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


class ReciproCAM:
    name = "reciprocam"
    per_class = True
    summary = "head re-run on one-location mosaics of the target, [N, K, H, W]"

    def check(self, view: GraphView, target: Target, head: Head) -> str | None:
        if head.side_inputs:
            names = ", ".join(view.describe(v) for v in head.side_inputs[:3])
            return (
                f"the head also reads {names}, which does not come from the target, so it "
                "cannot be re-run on mosaics (choose a target every path to the output "
                "passes through)"
            )
        dtype = view.tensor(target.value).dtype
        if dtype not in _NP:
            return f"target element type {dtype} is not a float type"
        return None

    def form(self, view: GraphView, target: Target, head: Head) -> str:
        h, w = target.shape[2], target.shape[3]
        hw = f"{h * w}" if h is not None and w is not None else "H*W"
        if head.pool is not None:
            before = _op_list(view, head.prefix)
            after = _op_list(view, head.post_pool) or "nothing"
            pre = f"per-location {before}, then " if before else ""
            return (
                f"fast exact form: {pre}the head after global average pooling ({after}) runs "
                f"on the {hw} location vectors"
            )
        text = f"mosaic form: the whole head runs on {hw} masked copies of the target per image"
        shape = view.tensor(target.value).probe
        if shape is not None:
            mosaic_bytes = 4 * (shape[2] * shape[3]) ** 2 * shape[1]
            if mosaic_bytes >= 256 << 20:
                text += f" (~{mosaic_bytes / (1 << 30):.1f} GiB of mosaics per image at this size)"
        return text

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head) -> T:
        f = b.value(target.value)
        fdt = b.dtype(f)
        n, c, h, w = (b.dims(f, [i]) for i in range(4))
        if head.pool is not None:
            out = self._fast(b, view, head, f, c, h, w, fdt)
        else:
            out = self._mosaic(b, view, head, f, c, h, w, fdt)
        # [N*H*W, K...] -> [N, H, W, K] -> [N, K, H, W]
        maps = b.reshape(out, b.concat([n, h, w, b.const(_i64([target.num_classes]))], 0))
        maps = b.transpose(maps, [0, 3, 1, 2])
        return maps if b.dtype(maps) == "f32" else b.cast(maps, "f32")

    def _fast(self, b: OpBuilder, view: GraphView, head: Head, f: T, c: T, h: T, w: T,
              fdt: str) -> T:
        """`GAP(P(M_ij)) = (P(F[:, i, j]) + (H*W - 1) * P(0)) / (H*W)` for a per-location
        prefix P (identity when the head starts with the pooling)."""
        assert head.pool is not None
        pooled = Value(head.pool, 0)
        pool_in = view.ops[head.pool].inputs[0]
        locs = b.transpose(f, [0, 2, 3, 1])  # [N, H, W, C]
        vectors = b.reshape(locs, b.concat([b.const(_i64([-1])), c, b.const(_i64([1, 1]))], 0))
        area = b.cast(b.mul(h, w), fdt)
        if head.prefix:
            channels = view.tensor(head.target).probe
            if channels is None:
                raise MethodError("the target's channel count is unknown")
            zeros = b.const(np.zeros((1, channels[1], 1, 1), dtype=_NP[fdt]))
            at_location = b.copy(head.prefix, {head.target: vectors}, pool_in)
            elsewhere = b.copy(head.prefix, {head.target: zeros}, pool_in)
            one = b.const(np.ones((1,), dtype=_NP[fdt]))
            vectors = b.add(at_location, b.mul(elsewhere, b.sub(area, one)))
        vectors = b.div(vectors, area)  # [N*H*W, C', 1, 1]
        rank = view.tensor(pooled).rank or 4
        if rank != 4:
            keep = b.dims(vectors, [1])
            ones = [b.const(_i64([1] * (rank - 2)))] if rank > 2 else []
            vectors = b.reshape(vectors, b.concat([b.const(_i64([-1])), keep, *ones], 0))
        if not head.post_pool:
            return vectors
        return b.copy(head.post_pool, {pooled: vectors}, head.scores)

    def _mosaic(self, b: OpBuilder, view: GraphView, head: Head, f: T, c: T, h: T, w: T,
                fdt: str) -> T:
        idx = b.arange(b.mul(h, w))  # [HW]
        eye = b.cast(b.equal(b.unsqueeze(idx, [1]), b.unsqueeze(idx, [0])), fdt)
        masks = b.reshape(eye, b.concat([b.const(_i64([-1, 1])), h, w], 0))  # [HW, 1, H, W]
        mosaics = b.mul(b.unsqueeze(f, [1]), b.unsqueeze(masks, [0]))  # [N, HW, C, H, W]
        mosaics = b.reshape(mosaics, b.concat([b.const(_i64([-1])), c, h, w], 0))
        return b.copy(head.ops, {head.target: mosaics}, head.scores)

"""Detector class probability map: where a single-stage detector sees each class.

For the per-level class-score maps `[N, A*K, h_l, w_l]` of the classification head (see
`xaigraph.detector`; anchor-major channels): per level, the maximum over the A anchors of
each location, `[N, K, h_l, w_l]`; every level resized to the largest level's size (nearest
neighbour, so a level `s` times smaller repeats each value `s x s` times); the mean over the
levels; a softmax over the classes. `[N, K, h, w]`.
"""

from __future__ import annotations

import numpy as np

from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.methods.base import Method
from xaigraph.ops import OpBuilder, T, ints
from xaigraph.target import Target

__all__ = ["DetClassProbabilityMap"]


class DetClassProbabilityMap(Method):
    name = "detclassprobabilitymap"
    per_class = True
    summary = "detector: per-level class maps, max over anchors, mean over levels, softmax"
    target_kind = "detector"

    def form(self, view: GraphView, target: Target, head: Head,
             form: str | None = None) -> str:
        det = target.detector
        assert det is not None
        return f"class-score maps of {det.describe()}"

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
              form: str | None = None) -> T:
        det = target.detector
        assert det is not None
        k = det.num_classes
        first = b.value(det.levels[0])
        size = b.dims(first, [2, 3])
        total = None
        for level, anchors in zip(det.levels, det.num_anchors, strict=True):
            x = b.value(level)
            if b.dtype(x) != "f32":
                x = b.cast(x, "f32")
            split = b.concat([b.dims(x, [0]), b.const(ints(anchors, k)),
                              b.dims(x, [2, 3])], 0)
            per_class = b.reduce_max(b.reshape(x, split), [1], keepdims=False)  # [N, K, h, w]
            if level != det.levels[0]:
                per_class = b.resize_nearest(per_class, size)
            total = per_class if total is None else b.add(total, per_class)
        assert total is not None
        mean = b.div(total, b.const(np.asarray(len(det.levels), dtype=np.float32)))
        top = b.reduce_max(mean, [1], keepdims=True)
        weights = b.exp(b.sub(mean, top))
        return b.div(weights, b.reduce_sum(weights, [1], keepdims=True))

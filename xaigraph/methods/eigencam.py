"""Eigen-CAM (Muhammad & Yeasin 2020): the target map projected on its first principal
component, computed inside the graph.

With `X` the `[H*W, C]` location vectors of one image, centred over the locations, the map is
`X v1` for the first right singular vector `v1`; equivalently `s1 u1` for the first
eigenvector `u1` of the small Gram matrix `G = X X^T` (`[H*W, H*W]`). `u1` comes from
`STEPS` repeated squarings of `G` (rescaled each time), which converges like `(l2/l1)^(2^STEPS)`:
after squaring, `G ~ u1 u1^T`, and its row with the largest diagonal entry is `u1` up to scale
and sign. The sign is fixed so that the map correlates positively with the activation map
(the channel mean), which makes the result deterministic.
"""

from __future__ import annotations

import numpy as np

from xaigraph.errors import MethodError
from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.methods.base import Method
from xaigraph.ops import OpBuilder, T, ints
from xaigraph.target import Target

__all__ = ["STEPS", "EigenCAM"]

STEPS = 10  # repeated squarings: G^(2^10)
MAX_LOCATIONS = 1024  # G is [H*W, H*W]; squaring it costs (H*W)^3


class EigenCAM(Method):
    name = "eigencam"
    per_class = False
    summary = "target map projected on its first principal component, [N, H, W]"

    def check(self, view: GraphView, target: Target, head: Head) -> str | None:
        shape = view.tensor(target.value).probe
        if shape is not None and shape[2] * shape[3] > MAX_LOCATIONS:
            return (f"the target has {shape[2] * shape[3]} locations; eigencam squares an "
                    f"[H*W, H*W] matrix and allows at most {MAX_LOCATIONS}")
        return None

    how = (f"first principal component of the centred location vectors, by {STEPS} "
           "squarings of their Gram matrix")

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
              form: str | None = None) -> T:
        f = b.value(target.value)
        if b.dtype(f) != "f32":
            f = b.cast(f, "f32")
        shape = view.tensor(target.value).probe
        if shape is None:
            raise MethodError("the target's channel count is unknown")
        n, h, w = (b.dims(f, [i]) for i in (0, 2, 3))
        minus_one = b.const(ints(-1))
        x = b.reshape(f, b.concat([n, b.dims(f, [1]), minus_one], 0))  # [N, C, HW]
        xt = b.transpose(x, [0, 2, 1])  # [N, HW, C]
        centred = b.sub(xt, b.reduce_mean(xt, [1], keepdims=True))
        gram = b.matmul(centred, b.transpose(centred, [0, 2, 1]))  # [N, HW, HW]
        tiny = b.const(np.asarray(1e-30, dtype=np.float32))
        for _ in range(STEPS):
            gram = b.matmul(gram, gram)
            gram = b.div(gram, b.maximum(b.reduce_max(gram, [1, 2], keepdims=True), tiny))
        eye = b.eye(b.mul(h, w), "f32")  # [HW, HW]
        diagonal = b.reduce_sum(b.mul(gram, eye), [2], keepdims=False)  # [N, HW]
        pick = b.take(eye, b.argmax(diagonal, 1), 0)  # [N, 1, HW]: one-hot rows
        u = b.matmul(pick, gram)  # [N, 1, HW]: u1 up to scale and sign
        mean = b.reshape(b.reduce_mean(x, [1], keepdims=True), b.concat(
            [n, b.const(ints(1)), minus_one], 0))  # [N, 1, HW]
        sign = b.sign(b.reduce_sum(b.mul(u, mean), [2], keepdims=True))
        return b.reshape(b.mul(u, sign), b.concat([n, h, w], 0))

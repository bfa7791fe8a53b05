"""Activation map: the channel mean of the target feature map, one map per image."""

from __future__ import annotations

from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.ops import OpBuilder, T
from xaigraph.target import Target

__all__ = ["ActivationMap"]


class ActivationMap:
    name = "activationmap"
    per_class = False
    summary = "mean over channels of the target feature map, [N, H, W]"

    def check(self, view: GraphView, target: Target, head: Head) -> str | None:
        return None

    def form(self, view: GraphView, target: Target, head: Head) -> str:
        return "channel mean of the target"

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head) -> T:
        f = b.value(target.value)
        if b.dtype(f) != "f32":
            f = b.cast(f, "f32")
        return b.reduce_mean(f, [1], keepdims=False)

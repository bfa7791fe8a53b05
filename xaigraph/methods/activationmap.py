"""Activation map: the channel mean of the target feature map, one map per image."""

from __future__ import annotations

from xaigraph.errors import MethodError
from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.methods.base import Method
from xaigraph.ops import OpBuilder, T
from xaigraph.target import Target

__all__ = ["ActivationMap"]


class ActivationMap(Method):
    name = "activationmap"
    per_class = False
    summary = "mean over channels of the target feature map, [N, H, W]"

    how = "channel mean of the target"

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
              form: str | None = None) -> T:
        f = b.value(target.value)
        channels = view.tensor(target.value).probe
        if channels is None:
            raise MethodError("the target's channel count is unknown")
        mean = b.channel_mean(f, channels[1])
        return mean if b.dtype(mean) == "f32" else b.cast(mean, "f32")

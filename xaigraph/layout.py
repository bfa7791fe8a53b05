"""Channels-last targets, seen through a transpose.

When the last spatial map of a model is `[N, H, W, C]` (Swin-style models), every method is
written for `[N, C, H, W]`. `detect_channels_first` puts a Transpose to `[N, C, H, W]` and one
back between that map and its readers: the model computes the same values (transposes are
exact), and the channels-first tensor between them is a target like any other. The head
then starts with the transpose back, so the methods run their general forms on it.
"""

from __future__ import annotations

from typing import Any

from xaigraph.backends import Backend
from xaigraph.graph_view import GraphView
from xaigraph.target import ChannelsLastError, Target, detect

__all__ = ["detect_channels_first"]


def detect_channels_first(backend: Backend, model: Any, view: GraphView,
                          target_layer: str | None = None, num_anchors: int | None = None
                          ) -> tuple[Target, GraphView, bool]:
    """`detect` on `model`; when the target found is channels-last, the model gets the
    transpose pair (modified in place) and the target is the channels-first tensor.
    Returns (target, the view of the model as it now is, whether it was modified)."""
    try:
        return detect(view, target_layer, num_anchors), view, False
    except ChannelsLastError as exc:
        b = backend.builder(model, view, prefix="xai/channels_first")
        made: list[Any] = []

        def pair(x: Any) -> Any:
            made.append(b.transpose(x, [0, 3, 1, 2]))  # [N, C, H, W]: the target
            return b.transpose(made[0], [0, 2, 3, 1])  # back to what the readers expect

        b.insert_after(exc.value, pair)
        b.finish()
        view = backend.build_view(model)
        target = detect(view, b.name(made[0]), num_anchors)
        target.forced = False
        for c in target.candidates:
            c.reason = None if c.value == target.value else "channels-last: explained " \
                "through the channels-first transpose"
        return target, view, True

"""Channels-last targets, seen through a transpose.

When the last spatial map of a model is `[N, H, W, C]` (Swin-style models), every method is
written for `[N, C, H, W]`. `to_channels_first` puts a Transpose to `[N, C, H, W]` and one
back between that map and its readers: the model computes the same values (transposes are
exact), and the channels-first tensor between them is a target like any other
(`channels_first_target`). The head then starts with the transpose back, so the methods run
their general forms on it. Target detection only says that a map is channels-last
(`Target.channels_last`); the channels-first pass does the surgery.
"""

from __future__ import annotations

from typing import Any

from xaigraph.backends import Backend
from xaigraph.graph_view import GraphView, Value
from xaigraph.target import Target, find_target

__all__ = ["channels_first_target", "to_channels_first"]


def to_channels_first(backend: Backend, model: Any, view: GraphView, value: Value) -> str:
    """Put a Transpose to `[N, C, H, W]` and one back between the `[N, H, W, C]` map `value`
    and its readers (the model is modified in place); return the channels-first tensor's
    name."""
    b = backend.builder(model, view, prefix="xai/channels_first")
    made: list[Any] = []

    def pair(x: Any) -> Any:
        made.append(b.transpose(x, [0, 3, 1, 2]))  # [N, C, H, W]: the target
        return b.transpose(made[0], [0, 2, 3, 1])  # back to what the readers expect

    b.insert_after(value, pair)
    b.finish()
    return b.name(made[0])


def channels_first_target(view: GraphView, name: str, output: int | None = None) -> Target:
    """The target at the channels-first tensor `name` made by `to_channels_first`, chosen
    as if found (not forced), explaining output `output` (its index; by default the one
    detected); the other candidates say why they lost."""
    target = find_target(view, name, output)
    target.forced = False
    for c in target.candidates:
        c.reason = None if c.value == target.value else "channels-last: explained " \
            "through the channels-first transpose"
    return target

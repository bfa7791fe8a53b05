"""What every saliency method provides."""

from __future__ import annotations

from typing import Protocol

from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.ops import OpBuilder, T
from xaigraph.target import Target

__all__ = ["Method", "token_map_reason"]


class Method(Protocol):
    name: str
    per_class: bool  # maps [N, K, h, w] (True) or [N, h, w] (False)
    summary: str

    def check(self, view: GraphView, target: Target, head: Head) -> str | None:
        """Why the method does not apply to this target, or None when it does."""

    def form(self, view: GraphView, target: Target, head: Head) -> str:
        """One line on how the method will be built for this target."""

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head) -> T:
        """Build the raw (unscaled, float) saliency map and return it."""


def token_map_reason(target: Target) -> str | None:
    """Why a method for a classifier's spatial map does not apply to this target."""
    if target.detector is not None:
        return "the model is a detector (no classification output); use --method " \
               "detclassprobabilitymap"
    if target.tokens is None:
        return None
    return (f"the target is a transformer's token map {list(target.shape)} "
            f"({target.tokens.prefix} + {target.tokens.height}x{target.tokens.width} tokens); "
            "use --method vitreciprocam")

"""detect-target: find the target feature map, the class scores and the head between them."""

from __future__ import annotations

from xaigraph.head import extract_head
from xaigraph.pipeline import Model, Pass, PassContext, PassResult
from xaigraph.target import find_target

__all__ = ["DetectTargetPass"]


class DetectTargetPass(Pass):
    """Analysis only, never modifies the model.

    Sets `ctx.target` (see `xaigraph.target.find_target`: the last dominating 4-D map with a
    spatial extent and a learned layer after it, or the `--target-layer` one) and `ctx.head`.
    Fails with `TargetError` when no target exists or the named one is unknown.
    """

    name = "detect-target"

    def __init__(self, target_layer: str | None = None) -> None:
        self.target_layer = target_layer

    def options(self) -> dict[str, str]:
        return {"layer": self.target_layer} if self.target_layer else {}

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        view = ctx.view(model)
        ctx.target = find_target(view, self.target_layer)
        ctx.head = extract_head(view, ctx.target.value, ctx.target.scores)
        ctx.probe_inputs = list(view.probe_inputs)
        return PassResult(model, modified=False)

"""detect-target: find the target feature map, the class scores and the head between them."""

from __future__ import annotations

from xaigraph.head import extract_head
from xaigraph.layout import detect_channels_first
from xaigraph.pipeline import Model, Pass, PassContext, PassResult

__all__ = ["DetectTargetPass"]


class DetectTargetPass(Pass):
    """Analysis; modifies the model only when the target is channels-last: a Transpose to
    `[N, C, H, W]` and one back go in after it (`xaigraph.layout`), which leaves every value
    as it was.

    Sets `ctx.target` (see `xaigraph.target.find_target`: the last dominating 4-D map with a
    spatial extent and a learned layer after it, a transformer's token map, or the
    `--target-layer` one; for a model without a classification output, a single-stage
    detector's class-score maps, see `xaigraph.detector`) and `ctx.head`. Fails with
    `TargetError` when no target exists or the named one is unknown.
    """

    name = "detect-target"

    def __init__(self, target_layer: str | None = None, num_anchors: int | None = None) -> None:
        self.target_layer = target_layer
        self.num_anchors = num_anchors

    def options(self) -> dict[str, str]:
        opts = {"layer": self.target_layer.replace(",", " ")} if self.target_layer else {}
        if self.num_anchors is not None:
            opts["anchors"] = str(self.num_anchors)
        return opts

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        view = ctx.view(model)
        ctx.target, view, modified = detect_channels_first(
            ctx.backend, model, view, self.target_layer, self.num_anchors)
        ctx.head = extract_head(view, ctx.target.value, ctx.target.scores)
        ctx.probe_inputs = list(view.probe_inputs)
        return PassResult(model, modified=modified)

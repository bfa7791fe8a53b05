"""detect-target: find the target feature map, the class scores and the head between them."""

from __future__ import annotations

from xaigraph.errors import BadInputError
from xaigraph.head import extract_head
from xaigraph.pipeline import Model, Pass, PassContext, PassResult
from xaigraph.target import detect

from .channels_first import ChannelsFirstPass

__all__ = ["DetectTargetPass"]


class DetectTargetPass(Pass):
    """Analysis; never modifies the model.

    Sets `ctx.target` (see `xaigraph.target.find_target`: the last dominating 4-D map with a
    spatial extent and a learned layer after it, a transformer's token map, or the
    `--target-layer` one; for a model without a classification output, a single-stage
    detector's class-score maps, see `xaigraph.detector`), `ctx.head` and
    `ctx.probe_inputs`. Fails with `TargetError` when no target exists or the named one is
    unknown. When the target map is channels-last (`[N, H, W, C]`) it sets `ctx.target` to
    that map (`Target.channels_last` says why), leaves `ctx.head` unset, and asks for the
    channels-first pass to run next.

    Options: `layer` (the `--target-layer` name; a detector's levels are separated by
    spaces), `anchors` (`--num-anchors`), `output` (`--class-output`: the output holding
    the class scores, when the model has several)."""

    name = "detect-target"
    option_names = ("layer", "anchors", "output")

    def __init__(self, target_layer: str | None = None, num_anchors: int | None = None,
                 output: str | None = None) -> None:
        self.target_layer = target_layer
        self.num_anchors = num_anchors
        self.output = output

    def options(self) -> dict[str, str]:
        opts = {"layer": self.target_layer.replace(",", " ")} if self.target_layer else {}
        if self.num_anchors is not None:
            opts["anchors"] = str(self.num_anchors)
        if self.output is not None:
            opts["output"] = self.output
        return opts

    @classmethod
    def from_options(cls, options: dict[str, str]) -> DetectTargetPass:
        anchors = options.get("anchors")
        if anchors is not None and not (anchors.isdigit() and int(anchors) > 0):
            raise BadInputError(f"detect-target: anchors={anchors} is not a positive integer")
        layer = options.get("layer")
        return cls(layer.replace(" ", ",") if layer else None,
                   int(anchors) if anchors is not None else None, options.get("output"))

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        view = ctx.view(model)
        ctx.target = detect(view, self.target_layer, self.num_anchors, self.output)
        ctx.probe_inputs = list(view.probe_inputs)
        if ctx.target.channels_last is not None:
            ctx.head = None
            return PassResult(model, modified=False, then=[ChannelsFirstPass()])
        others = [br.value for br in ctx.target.branches[1:]]
        ctx.head = extract_head(view, ctx.target.value, ctx.target.scores, others)
        return PassResult(model, modified=False)

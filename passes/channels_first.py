"""channels-first: explain a channels-last target map through a transpose to [N, C, H, W]."""

from __future__ import annotations

from xaigraph.errors import XaiGraphError
from xaigraph.head import extract_head
from xaigraph.layout import channels_first_target, to_channels_first
from xaigraph.pipeline import Model, Pass, PassContext, PassResult

__all__ = ["ChannelsFirstPass"]


class ChannelsFirstPass(Pass):
    """Requires a channels-last `ctx.target` (`[N, H, W, C]`, `Target.channels_last` set by
    detect-target, which asks for this pass when it finds one). Puts a Transpose to
    `[N, C, H, W]` and one back after that map (`xaigraph.layout`), which leaves every value
    as it was, and makes the channels-first tensor between them `ctx.target` (with its
    `ctx.head`). Keeps why the map was channels-last in `ctx.channels_last`."""

    name = "channels-first"

    def requires(self, model: Model, ctx: PassContext) -> None:
        if ctx.target is None or ctx.target.channels_last is None:
            raise XaiGraphError("needs a channels-last target (detect-target finds one)")

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        assert ctx.target is not None
        why = ctx.target.channels_last
        name = to_channels_first(ctx.backend, model, ctx.view(model), ctx.target.value)
        view = ctx.view(model)  # rebuilt: the model has changed
        ctx.target = channels_first_target(view, name, ctx.target.output_index)
        ctx.head = extract_head(view, ctx.target.value, ctx.target.scores)
        ctx.channels_last = why
        return PassResult(model, modified=True)

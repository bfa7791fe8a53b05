"""embed-scaling: min-max scale each saliency map to 0..255 and return it as u8."""

from __future__ import annotations

from xaigraph.backends import output_port
from xaigraph.errors import XaiGraphError
from xaigraph.pipeline import Model, Pass, PassContext, PassResult
from xaigraph.scaling import scale_to_u8

from .insert_saliency import SALIENCY_OUTPUT

__all__ = ["EmbedScalingPass"]


class EmbedScalingPass(Pass):
    """Requires the `saliency_map` output. Rewires it to the scaled u8 maps, same shape.
    Does nothing (modified=False) when the output is already u8. Sets `ctx.scaling` (what
    the stamp records) to "minmax-u8"."""

    name = "embed-scaling"

    def requires(self, model: Model, ctx: PassContext) -> None:
        if output_port(ctx.backend, model, SALIENCY_OUTPUT) is None:
            raise XaiGraphError("needs the saliency_map output (insert-saliency)")

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        ctx.scaling = "minmax-u8"
        builder = ctx.backend.builder(model, None, prefix="xai/scale")
        maps = builder.output_value(SALIENCY_OUTPUT)
        if builder.dtype(maps) == "u8":
            return PassResult(model, modified=False)
        port = output_port(ctx.backend, model, SALIENCY_OUTPUT)
        assert port is not None
        rank = len(port.dims) if port.dims is not None else 4
        builder.replace_output(SALIENCY_OUTPUT, scale_to_u8(builder, maps, rank))
        builder.finish()
        return PassResult(model, modified=True)

    def ensures(self, model: Model, ctx: PassContext) -> None:
        port = output_port(ctx.backend, model, SALIENCY_OUTPUT)
        if port is None or port.type != "u8":
            raise XaiGraphError("saliency_map is not u8 after scaling")

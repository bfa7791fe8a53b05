"""embed-scaling: min-max scale each saliency map to 0..255 and return it as u8."""

from __future__ import annotations

import openvino as ov

from xaigraph.errors import XaiGraphError
from xaigraph.ov_builder import OVBuilder
from xaigraph.pipeline import Pass, PassContext, PassResult
from xaigraph.scaling import scale_to_u8

from .insert_saliency import SALIENCY_OUTPUT

__all__ = ["EmbedScalingPass"]


class EmbedScalingPass(Pass):
    """Requires the `saliency_map` output. Rewires it to the scaled u8 maps, same shape.
    Does nothing (modified=False) when the output is already u8."""

    name = "embed-scaling"

    def requires(self, model: ov.Model, ctx: PassContext) -> None:
        names = {n for out in model.outputs for n in out.get_names()}
        if SALIENCY_OUTPUT not in names:
            raise XaiGraphError("needs the saliency_map output (insert-saliency)")

    def run(self, model: ov.Model, ctx: PassContext) -> PassResult:
        builder = OVBuilder(model, None, prefix="xai/scale")
        maps = builder.output_value(SALIENCY_OUTPUT)
        if builder.dtype(maps) == "u8":
            return PassResult(model, modified=False)
        rank = maps.get_partial_shape().rank.get_length()
        builder.replace_output(SALIENCY_OUTPUT, scale_to_u8(builder, maps, rank))
        return PassResult(model, modified=True)

    def ensures(self, model: ov.Model, ctx: PassContext) -> None:
        if model.outputs[-1].get_element_type() != ov.Type.u8:
            raise XaiGraphError("saliency_map is not u8 after scaling")

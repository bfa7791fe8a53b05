"""stamp: record how the model was made in its `rt_info` under `xai`."""

from __future__ import annotations

from xaigraph.pipeline import Model, Pass, PassContext, PassResult
from xaigraph.stamp import stamp_fields

__all__ = ["StampPass"]


class StampPass(Pass):
    """Writes `xai.{version,method,target_layer,pipeline,output,scaling}` (OpenVINO `rt_info`,
    ONNX `metadata_props`). The stamp is how a later run recognises an augmented model.
    Touches nothing else."""

    name = "stamp"

    def __init__(self, pipeline: str, method: str, scaling: bool) -> None:
        self.pipeline = pipeline
        self.method = method
        self.scaling = scaling

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        before = ctx.backend.read_stamp(model)
        ctx.backend.write_stamp(model, stamp_fields(
            method=self.method,
            target_layer=ctx.target.name if ctx.target is not None else "",
            pipeline=self.pipeline,
            scaling="minmax-u8" if self.scaling else "none",
        ))
        return PassResult(model, modified=ctx.backend.read_stamp(model) != before)

"""stamp: record how the model was made in its `rt_info` under `xai`."""

from __future__ import annotations

import openvino as ov

from xaigraph.pipeline import Pass, PassContext, PassResult
from xaigraph.stamp import read_stamp, write_stamp

__all__ = ["StampPass"]


class StampPass(Pass):
    """Writes `xai.{version,method,target_layer,pipeline,output,scaling}`. The stamp is how a
    later run recognises an augmented model. Modifies only `rt_info`."""

    name = "stamp"

    def __init__(self, pipeline: str, method: str, scaling: bool) -> None:
        self.pipeline = pipeline
        self.method = method
        self.scaling = scaling

    def run(self, model: ov.Model, ctx: PassContext) -> PassResult:
        before = read_stamp(model)
        write_stamp(
            model,
            method=self.method,
            target_layer=ctx.target.name if ctx.target is not None else "",
            pipeline=self.pipeline,
            scaling="minmax-u8" if self.scaling else "none",
        )
        return PassResult(model, modified=read_stamp(model) != before)

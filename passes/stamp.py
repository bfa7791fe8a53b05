"""stamp: record how the model was made in its `rt_info` under `xai`."""

from __future__ import annotations

from xaigraph.jsontext import dumps
from xaigraph.pipeline import Model, Pass, PassContext, PassResult
from xaigraph.stamp_format import stamp_fields

__all__ = ["StampPass"]


class StampPass(Pass):
    """Writes `xai.{version,method,target_layer,pipeline,output,scaling,undo,sanity}`
    (OpenVINO `rt_info`, ONNX `metadata_props`) from the context: the method insert-saliency
    built, the target's name, the text of the whole run's pipeline (`ctx.plan`: itself,
    follow-up passes and validation included), `ctx.scaling`, what the insertion removed or
    rewired of the original (`undo`, against `ctx.original`: what `strip` puts back), and
    the sanity checks' figures (`sanity`, JSON, when they ran). The stamp is how a later
    run recognises an augmented model. Touches nothing else."""

    name = "stamp"

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        before = ctx.backend.read_stamp(model)
        ctx.backend.write_stamp(model, stamp_fields(
            method=ctx.insert.method if ctx.insert is not None else "",
            target_layer=ctx.target.name if ctx.target is not None else "",
            pipeline=ctx.pipeline_text(),
            scaling=ctx.scaling,
            undo=ctx.backend.undo_record(ctx.original, model),
            sanity=dumps(ctx.sanity) if ctx.sanity is not None else None,
        ))
        return PassResult(model, modified=ctx.backend.read_stamp(model) != before)

"""validate: the original outputs of the augmented model must equal the original model's."""

from __future__ import annotations

from xaigraph.pipeline import Model, Pass, PassContext, PassResult, ValidationRecord
from xaigraph.validate import tolerance_for, validate_outputs

__all__ = ["ValidatePass"]


class ValidatePass(Pass):
    """Never modifies the model. Compiles the original and the augmented model (OpenVINO CPU
    with f32 precision, or ONNX Runtime CPU without graph optimisations), runs both on seeded
    inputs (batch 1, and 2 when the batch is dynamic) and on `ctx.samples`, and fails with
    `ValidationError` when an original output moved beyond the tolerance that fits the
    precision the original computes in (`xaigraph.validate.tolerance_for`). Records the
    figures in `ctx.validation`."""

    name = "validate"

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        shapes = ctx.probe_inputs or ctx.view(model).probe_inputs
        tolerance = tolerance_for(ctx.original_view())
        runs = validate_outputs(ctx.backend, ctx.original, model, shapes, ctx.samples,
                                tolerance)
        ctx.validation = ValidationRecord(runs, tolerance.atol, tolerance.rtol)
        return PassResult(model, modified=False)

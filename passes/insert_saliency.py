"""insert-saliency{method=...}: build the method's subgraph and add the `saliency_map` output."""

from __future__ import annotations

import logging

import numpy as np

from xaigraph.errors import MethodError, XaiGraphError
from xaigraph.methods import get_method
from xaigraph.pipeline import Model, Pass, PassContext, PassResult
from xaigraph.target import Target
from xaigraph.validate import make_inputs

__all__ = ["SALIENCY_OUTPUT", "InsertSaliencyPass"]

SALIENCY_OUTPUT = "saliency_map"
CHECK_OUTPUT = "xaigraph_check"  # a method's reference form, while the pass compares forms

log = logging.getLogger(__name__)


class InsertSaliencyPass(Pass):
    """Requires `ctx.target` and `ctx.head`. Appends one output, `saliency_map`, holding the
    raw float maps: `[N, K, h, w]` for per-class methods, `[N, h, w]` otherwise. Every
    original output keeps its values. Fails with `MethodError` when the method does not
    apply to the target (the message says why).

    A method with several forms (`forms`, the last one the reference) is built in the form it
    picks; when that is not the reference, the reference is built too and both run on a
    seeded input: if they differ (beyond 1e-4 of the map's range) the reference form is kept.
    The figures go to `ctx.report["self_check"]`."""

    name = "insert-saliency"

    def __init__(self, method: str) -> None:
        self.method = get_method(method)

    def options(self) -> dict[str, str]:
        return {"method": self.method.name}

    def requires(self, model: Model, ctx: PassContext) -> None:
        if ctx.target is None or ctx.head is None:
            raise XaiGraphError("needs detect-target to run first")
        names = {n for port in ctx.backend.outputs(model) for n in port.name.split(", ")}
        if SALIENCY_OUTPUT in names:
            raise MethodError(f"the model already has an output named '{SALIENCY_OUTPUT}'")
        reason = self.method.check(ctx.view(model), ctx.target, ctx.head)
        if reason is not None:
            raise MethodError(f"{self.method.name} does not apply: {reason}")

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        view = ctx.view(model)
        target, head = ctx.target, ctx.head
        declared = view.tensor(target.value).shape
        if declared is None:
            declared = target.shape
        ctx.report["target_declared_shape"] = declared
        shape = self._shape(target, declared)
        forms: tuple[str, ...] = getattr(self.method, "forms", ())
        builder = ctx.backend.builder(model, view)
        if not forms:
            ctx.report["form"] = self.method.form(view, target, head)
            builder.add_output(self.method.build(builder, view, target, head),
                               SALIENCY_OUTPUT, shape)
            builder.finish()
            return PassResult(model, modified=True)

        form = self.method.pick_form(view, target, head)  # type: ignore[attr-defined]
        build = self.method.build
        reference = forms[-1]
        builder.add_output(build(builder, view, target, head, form=reference),  # type: ignore[call-arg]
                           CHECK_OUTPUT if form != reference else SALIENCY_OUTPUT, shape)
        if form != reference:
            try:
                builder.add_output(build(builder, view, target, head, form=form),  # type: ignore[call-arg]
                                   SALIENCY_OUTPUT, shape)
                builder.finish()
                worst, span = self._compare_last_two(model, ctx)
            except Exception as exc:  # the form does not even build or run here
                log.info("%s: the %s form failed: %s", self.method.name, form, exc)
                worst, span = float("inf"), 0.0
                if SALIENCY_OUTPUT in {p.name for p in ctx.backend.outputs(model)}:
                    builder.remove_output(SALIENCY_OUTPUT)
            passed = worst <= 1e-4 * span + 1e-6
            ctx.report["self_check"] = {"form": form, "against": reference, "passed": passed,
                                        "max_abs": worst, "map_range": span}
            if passed:
                builder.remove_output(CHECK_OUTPUT)
            else:
                log.warning("%s: the %s form differs from the %s form (by %.3g); using %s",
                            self.method.name, form, reference, worst, reference)
                if SALIENCY_OUTPUT in {p.name for p in ctx.backend.outputs(model)}:
                    builder.remove_output(SALIENCY_OUTPUT)
                builder.rename_output(CHECK_OUTPUT, SALIENCY_OUTPUT)
                form = reference
        ctx.report["form"] = self.method.form(view, target, head, form=form)  # type: ignore[call-arg]
        builder.finish()
        return PassResult(model, modified=True)

    @staticmethod
    def _compare_last_two(model: Model, ctx: PassContext) -> tuple[float, float]:
        """Largest difference between the two last outputs (the reference form, then the form
        checked) on a seeded input, and the range of the reference."""
        dtypes = ctx.backend.input_dtypes(model)
        arrays = make_inputs(dtypes, ctx.probe_inputs, seed=0)
        outputs = ctx.backend.runner(model)(arrays)
        ref, got = outputs[-2].astype(np.float64), outputs[-1].astype(np.float64)
        if got.shape != ref.shape or not np.all(np.isfinite(got)):
            return float("inf"), 0.0
        return float(np.max(np.abs(got - ref))), float(ref.max() - ref.min())

    def _shape(self, target: Target, declared: tuple[int | None, ...]) -> list[int | None]:
        """[N, K, h, w] or [N, h, w]: the batch as declared, h and w of the map or grid."""
        if target.detector is not None:
            h, w = target.detector.shapes[0][2], target.detector.shapes[0][3]
        elif target.tokens is not None:
            h, w = target.tokens.height, target.tokens.width
        else:
            h, w = declared[2], declared[3]
        n = declared[0]
        return [n, target.num_classes, h, w] if self.method.per_class else [n, h, w]

    def ensures(self, model: Model, ctx: PassContext) -> None:
        last = ctx.backend.outputs(model)[-1]
        want = 4 if self.method.per_class else 3
        if last.name != SALIENCY_OUTPUT or last.dims is None or len(last.dims) != want:
            raise XaiGraphError(f"saliency_map output is not last or not rank {want}")

"""insert-saliency{method=...}: build the method's subgraph and add the `saliency_map` output."""

from __future__ import annotations

import logging

import numpy as np

from xaigraph import signals
from xaigraph.backends import output_port
from xaigraph.errors import BadInputError, MethodError, XaiGraphError
from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.methods import get_method
from xaigraph.methods.base import why_not
from xaigraph.ops import OpBuilder, T
from xaigraph.pipeline import InsertRecord, Model, Pass, PassContext, PassResult, SelfCheck
from xaigraph.session import Session
from xaigraph.target import Target
from xaigraph.validate import make_inputs

from .select_classes import CLASSES_OUTPUT

__all__ = ["SALIENCY_OUTPUT", "InsertSaliencyPass"]

SALIENCY_OUTPUT = "saliency_map"
CHECK_OUTPUT = "xaigraph_check"  # a method's reference form, while the pass compares forms

log = logging.getLogger(__name__)


class InsertSaliencyPass(Pass):
    """Requires `ctx.target` and `ctx.head`. Appends one output, `saliency_map`, holding the
    raw float maps: `[N, K, h, w]` for per-class methods, `[N, h, w]` otherwise. Every
    original output keeps its values. Fails with `MethodError` when the method does not
    apply to the target (the message says why).

    A method with several forms (`form_names`) is built in the form it picks, or the one the
    `form` option names. When the method checks its forms (`forms`, the last one the
    reference) and the form is not the reference, the reference is built too and both run on
    a seeded input: if they differ (beyond 1e-4 of the map's range) the reference form is
    kept. What was built, and the check's figures, go to `ctx.insert` (`InsertRecord`).

    When select-classes ran before it (an output `saliency_classes` `[N, k]`), the maps are
    those of the chosen classes, `[N, k, h, w]`: built for those classes only when the
    method can (`chooses_classes`), else picked from the maps of all classes."""

    name = "insert-saliency"
    option_names = ("method", "form")

    def __init__(self, method: str, form: str | None = None) -> None:
        self.method = get_method(method)
        names = self.method.form_names
        if form is not None and form not in names:
            have = f"one of: {', '.join(names)}" if names else "none: it has one form"
            raise BadInputError(f"{self.method.name} has no form '{form}' (its forms: {have})")
        self.form = form

    def options(self) -> dict[str, str]:
        return {"method": self.method.name, **({"form": self.form} if self.form else {})}

    @classmethod
    def from_options(cls, options: dict[str, str]) -> InsertSaliencyPass:
        if "method" not in options:
            raise BadInputError("insert-saliency needs a method (insert-saliency{method=M})")
        return cls(options["method"], options.get("form"))

    def requires(self, model: Model, ctx: PassContext) -> None:
        if ctx.target is not None and ctx.target.channels_last is not None:
            raise XaiGraphError("the target map is channels-last: needs channels-first to "
                                "run first")
        if ctx.target is None or ctx.head is None:
            raise XaiGraphError("needs detect-target to run first")
        if output_port(ctx.backend, model, SALIENCY_OUTPUT) is not None:
            raise MethodError(f"the model already has an output named '{SALIENCY_OUTPUT}'")
        reason = why_not(self.method, ctx.view(model), ctx.target, ctx.head)
        if reason is not None:
            raise MethodError(f"{self.method.name} does not apply: {reason}")
        if self._chosen(model, ctx) is not None and not self.method.per_class:
            raise MethodError(f"--targets needs a per-class method ({self.method.name} "
                              "makes one map per image)")

    @staticmethod
    def _chosen(model: Model, ctx: PassContext) -> int | None:
        """How many classes select-classes chose (None when it did not run)."""
        port = output_port(ctx.backend, model, CLASSES_OUTPUT)
        if port is None:
            return None
        return port.dims[1] if port.dims and len(port.dims) == 2 else None

    @staticmethod
    def _found(ctx: PassContext) -> tuple[Target, Head]:
        assert ctx.target is not None and ctx.head is not None  # see `requires`
        return ctx.target, ctx.head

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        view = ctx.view(model)
        target, head = self._found(ctx)
        declared = self._declared(view.tensor(target.value).shape, target, model, ctx)
        record = ctx.insert = InsertRecord(self.method.name, declared)
        chosen = self._chosen(model, ctx)
        shape = self._shape(target, declared, chosen)
        builder = ctx.backend.builder(model, view)
        classes = builder.output_value(CLASSES_OUTPUT) if chosen is not None else None
        form = self.form or self.method.pick_form(view, target, head)
        forms = self.method.forms
        if form is not None and forms and form != forms[-1]:
            form = self._build_checked(builder, model, ctx, form, forms[-1], shape, classes)
        else:
            maps = self._build(builder, view, ctx, form, classes)
            builder.add_output(maps, SALIENCY_OUTPUT, shape)
        if classes is not None and self.method.chooses_classes(view, target, head, form):
            text = self.method.chosen_form(view, target, head, form=form)
        else:
            text = self.method.form(view, target, head, form=form)
            if classes is not None:
                text += "; the chosen classes' maps are then kept"
        record.form, record.text = form, text
        builder.finish()
        return PassResult(model, modified=True)

    def _build(self, b: OpBuilder, view: GraphView, ctx: PassContext, form: str | None,
               classes: T | None) -> T:
        """The raw maps in `form`, of the chosen `classes` when given."""
        (target, head), m = self._found(ctx), self.method
        if classes is None:
            return m.build(b, view, target, head, form=form)
        if m.chooses_classes(view, target, head, form):
            return m.build_chosen(b, view, target, head, classes, form=form)
        return b.take_per_image(m.build(b, view, target, head, form=form), classes)

    def _build_checked(self, builder: OpBuilder, model: Model, ctx: PassContext, form: str,
                       reference: str, shape: list[int | None], classes: T | None) -> str:
        """Build `form` and the `reference` form, compare them on a seeded input, keep `form`
        when they agree and the reference otherwise; return the form kept."""
        view = ctx.view(model)
        builder.add_output(self._build(builder, view, ctx, reference, classes), CHECK_OUTPUT,
                           shape)
        try:
            builder.add_output(self._build(builder, view, ctx, form, classes), SALIENCY_OUTPUT,
                               shape)
            builder.finish()
            worst, span = self._compare_last_two(model, ctx)
        except Exception as exc:  # the form does not even build or run here
            signals.check()  # an interrupted run ends here, never goes on another way
            log.info("%s: the %s form failed: %s", self.method.name, form, exc)
            worst, span = float("inf"), 0.0
        passed = worst <= 1e-4 * span + 1e-6
        assert ctx.insert is not None
        ctx.insert.self_check = SelfCheck(form, reference, passed, worst, span)
        if passed:
            builder.remove_output(CHECK_OUTPUT)
            return form
        log.warning("%s: the %s form differs from the %s form (by %.3g); using %s",
                    self.method.name, form, reference, worst, reference)
        if output_port(ctx.backend, model, SALIENCY_OUTPUT) is not None:
            builder.remove_output(SALIENCY_OUTPUT)
        builder.rename_output(CHECK_OUTPUT, SALIENCY_OUTPUT)
        return reference

    @staticmethod
    def _compare_last_two(model: Model, ctx: PassContext) -> tuple[float, float]:
        """Largest difference between the two last outputs (the reference form, then the form
        checked) on a seeded input, and the range of the reference."""
        dtypes = ctx.backend.input_dtypes(model)
        arrays = make_inputs(dtypes, ctx.probe_inputs, seed=0)
        session = Session.open(model, ctx.backend.engine)
        outputs = session.run(arrays, outputs=[CHECK_OUTPUT, SALIENCY_OUTPUT])
        ref, got = outputs[0].astype(np.float64), outputs[1].astype(np.float64)
        if got.shape != ref.shape or not np.all(np.isfinite(got)):
            return float("inf"), 0.0
        return float(np.max(np.abs(got - ref))), float(ref.max() - ref.min())

    @staticmethod
    def _declared(shape: tuple[int | None, ...] | None, target: Target, model: Model,
                  ctx: PassContext) -> tuple[int | None, ...]:
        """The target's shape as the model declares it. When every input's dims but the
        batch are fixed, so are the target's: a dim that shape inference lost (ONNX's, through
        computed paddings) is taken from the probe, which ran at those very sizes."""
        if shape is None:
            return target.shape
        fixed = all(p.dims is not None and None not in p.dims[1:]
                    for p in ctx.backend.inputs(model))
        if not fixed or len(shape) != len(target.shape):
            return shape
        return (shape[0], *(d if d is not None else t
                            for d, t in zip(shape[1:], target.shape[1:], strict=True)))

    def _shape(self, target: Target, declared: tuple[int | None, ...], chosen: int | None
               ) -> list[int | None]:
        """[N, K, h, w] or [N, h, w]: the batch as declared, h and w of the map or grid, K
        the number of classes or of the chosen ones."""
        h, w = target.grid or (declared[2], declared[3])
        n = declared[0]
        k = target.num_classes if chosen is None else chosen
        return [n, k, h, w] if self.method.per_class else [n, h, w]

    def ensures(self, model: Model, ctx: PassContext) -> None:
        last = ctx.backend.outputs(model)[-1]  # saliency_map comes last
        want = 4 if self.method.per_class else 3
        if last.name != SALIENCY_OUTPUT or last.dims is None or len(last.dims) != want:
            raise XaiGraphError(f"saliency_map output is not last or not rank {want}")

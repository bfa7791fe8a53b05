"""insert-saliency{method=...}: build the method's subgraph and add the `saliency_map` output."""

from __future__ import annotations

import openvino as ov

from xaigraph.errors import MethodError, XaiGraphError
from xaigraph.methods import get_method
from xaigraph.ov_builder import OVBuilder
from xaigraph.pipeline import Pass, PassContext, PassResult

__all__ = ["SALIENCY_OUTPUT", "InsertSaliencyPass"]

SALIENCY_OUTPUT = "saliency_map"


class InsertSaliencyPass(Pass):
    """Requires `ctx.target` and `ctx.head`. Appends one output, `saliency_map`, holding the
    raw float maps: `[N, K, h, w]` for per-class methods, `[N, h, w]` otherwise. Every
    original output is left as it was. Fails with `MethodError` when the method does not
    apply to the target (the message says why)."""

    name = "insert-saliency"

    def __init__(self, method: str) -> None:
        self.method = get_method(method)

    def options(self) -> dict[str, str]:
        return {"method": self.method.name}

    def requires(self, model: ov.Model, ctx: PassContext) -> None:
        if ctx.target is None or ctx.head is None:
            raise XaiGraphError("needs detect-target to run first")
        names = {n for out in model.outputs for n in out.get_names()}
        if SALIENCY_OUTPUT in names:
            raise MethodError(f"the model already has an output named '{SALIENCY_OUTPUT}'")
        reason = self.method.check(ctx.view(model), ctx.target, ctx.head)
        if reason is not None:
            raise MethodError(f"{self.method.name} does not apply: {reason}")

    def run(self, model: ov.Model, ctx: PassContext) -> PassResult:
        view = ctx.view(model)
        ctx.report["form"] = self.method.form(view, ctx.target, ctx.head)
        declared = view.tensor(ctx.target.value).shape
        ctx.report["target_declared_shape"] = declared if declared is not None else ctx.target.shape
        builder = OVBuilder(model, view)
        maps = self.method.build(builder, view, ctx.target, ctx.head)
        builder.add_output(maps, SALIENCY_OUTPUT)
        return PassResult(model, modified=True)

    def ensures(self, model: ov.Model, ctx: PassContext) -> None:
        last = model.outputs[-1]
        rank = last.get_partial_shape().rank
        want = 4 if self.method.per_class else 3
        if SALIENCY_OUTPUT not in last.get_names() or rank.is_dynamic or rank.get_length() != want:
            raise XaiGraphError(f"saliency_map output is not last or not rank {want}")

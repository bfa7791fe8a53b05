"""insert-saliency{method=...}: build the method's subgraph and add the `saliency_map` output."""

from __future__ import annotations

from xaigraph.errors import MethodError, XaiGraphError
from xaigraph.methods import get_method
from xaigraph.pipeline import Model, Pass, PassContext, PassResult
from xaigraph.target import Target

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
        ctx.report["form"] = self.method.form(view, ctx.target, ctx.head)
        declared = view.tensor(ctx.target.value).shape
        ctx.report["target_declared_shape"] = declared if declared is not None else ctx.target.shape
        builder = ctx.backend.builder(model, view)
        maps = self.method.build(builder, view, ctx.target, ctx.head)
        builder.add_output(maps, SALIENCY_OUTPUT, self._shape(ctx.target, declared))
        builder.finish()
        return PassResult(model, modified=True)

    def _shape(self, target: Target, declared: tuple[int | None, ...]) -> list[int | None]:
        """[N, K, h, w] or [N, h, w]: the batch as declared, h and w of the map or grid."""
        if target.tokens is not None:
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

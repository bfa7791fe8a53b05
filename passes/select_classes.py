"""select-classes{targets=...}: choose the classes to explain, and say which."""

from __future__ import annotations

from xaigraph.backends import output_port
from xaigraph.errors import BadInputError, MethodError, XaiGraphError
from xaigraph.pipeline import Model, Pass, PassContext, PassResult

__all__ = ["CLASSES_OUTPUT", "SelectClassesPass", "parse_targets"]

CLASSES_OUTPUT = "saliency_classes"


def parse_targets(spec: str) -> tuple[str, list[int]]:
    """`topk:K` -> ("topk", [K]); `3,17,281` -> ("list", [3, 17, 281])."""
    text = spec.strip()
    try:
        if text.startswith("topk:"):
            k = int(text[5:])
            if k < 1:
                raise ValueError
            return "topk", [k]
        classes = [int(part) for part in text.split(",")]
    except ValueError:
        raise BadInputError(
            f"--targets '{spec}': give topk:K (K >= 1) or class indices like 3,17,281"
        ) from None
    if not classes or any(c < 0 for c in classes):
        raise BadInputError(f"--targets '{spec}': class indices must be >= 0")
    return "list", classes


class SelectClassesPass(Pass):
    """Requires `ctx.target`; runs before insert-saliency, which then builds the maps of the
    chosen classes only. With `topk:K` it chooses, per image, the K classes the model scores
    highest (ranked by its classification output), highest first; with a list of class
    indices, those, in that order, for every image. Adds the output `saliency_classes`
    `[N, K]` (int64) with the chosen indices; `saliency_map` `[N, K, h, w]` comes after it,
    last."""

    name = "select-classes"
    option_names = ("targets",)

    def __init__(self, targets: str) -> None:
        self.spec = targets.strip()
        self.kind, self.values = parse_targets(targets)

    def options(self) -> dict[str, str]:
        return {"targets": self.spec.replace(",", " ")}

    @classmethod
    def from_options(cls, options: dict[str, str]) -> SelectClassesPass:
        if "targets" not in options:
            raise BadInputError("select-classes needs targets (select-classes{targets=T})")
        return cls(options["targets"].replace(" ", ","))

    def requires(self, model: Model, ctx: PassContext) -> None:
        if ctx.target is None:
            raise XaiGraphError("needs detect-target to run first")
        if output_port(ctx.backend, model, CLASSES_OUTPUT) is not None:
            raise MethodError(f"the model already has an output named '{CLASSES_OUTPUT}'")
        if self.kind == "topk" and ctx.target.kind == "detector":
            raise BadInputError("--targets topk:K needs a classification output; choose a "
                                "detector's classes by index (--targets 3,17)")
        k = ctx.target.num_classes
        wanted = self.values[0] if self.kind == "topk" else max(self.values) + 1
        if wanted > k:
            what = f"topk:{wanted}" if self.kind == "topk" else f"class {wanted - 1}"
            raise BadInputError(f"--targets {what}: the model has {k} classes")

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        import numpy as np

        assert ctx.target is not None  # see `requires`
        b = ctx.backend.builder(model, None, prefix="xai/select")
        i64 = np.int64
        scores = b.output_at(ctx.target.output_index)
        if self.kind == "topk":
            k = self.values[0]
            flat = b.reshape(scores, b.const(np.asarray([0, -1], dtype=i64)))  # [N, K]
            classes = b.topk(flat, k, axis=1)  # [N, k]
        else:
            k = len(self.values)
            n = b.dims(scores, [0])
            classes = b.expand(b.const(np.asarray([self.values], dtype=i64)),
                               b.concat([n, b.const(np.asarray([k], dtype=i64))], 0))
        dims = ctx.backend.outputs(model)[ctx.target.output_index].dims
        b.add_output(classes, CLASSES_OUTPUT, [dims[0] if dims else None, k])
        b.finish()
        return PassResult(model, modified=True)

"""select-classes{targets=...}: keep the maps of some classes only, and say which."""

from __future__ import annotations

from xaigraph.backend import output_port
from xaigraph.errors import BadInputError, MethodError, XaiGraphError
from xaigraph.pipeline import Model, Pass, PassContext, PassResult

from .insert_saliency import SALIENCY_OUTPUT

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
    """Requires a per-class `saliency_map` `[N, K, h, w]`. With `topk:K` it keeps, per image,
    the maps of the K classes the model scores highest (ranked by its classification output)
    and adds the output `saliency_classes` `[N, K]` (int64) with their indices, highest
    first; with a list of class indices it keeps those, in that order, and
    `saliency_classes` repeats the list for every image. `saliency_map` shrinks to
    `[N, K, h, w]`; `saliency_classes` comes after it, last."""

    name = "select-classes"

    def __init__(self, targets: str) -> None:
        self.spec = targets.strip()
        self.kind, self.values = parse_targets(targets)

    def options(self) -> dict[str, str]:
        return {"targets": self.spec.replace(",", " ")}

    def requires(self, model: Model, ctx: PassContext) -> None:
        port = output_port(ctx.backend, model, SALIENCY_OUTPUT)
        if port is None:
            raise XaiGraphError("needs the saliency_map output (insert-saliency)")
        if port.dims is None or len(port.dims) != 4:
            raise MethodError("--targets needs a per-class method (maps [N, K, h, w])")
        k = ctx.target.num_classes
        wanted = self.values[0] if self.kind == "topk" else max(self.values) + 1
        if wanted > k:
            what = f"topk:{wanted}" if self.kind == "topk" else f"class {wanted - 1}"
            raise BadInputError(f"--targets {what}: the model has {k} classes")

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        import numpy as np

        b = ctx.backend.builder(model, None, prefix="xai/select")
        maps = b.output_value(SALIENCY_OUTPUT)
        i64 = np.int64
        if self.kind == "topk":
            k = self.values[0]
            scores = b.output_at(ctx.target.output_index)
            flat = b.reshape(scores, b.const(np.asarray([0, -1], dtype=i64)))  # [N, K]
            classes = b.topk(flat, k, axis=1)  # [N, k]
            chosen = b.take_per_image(maps, classes)
        else:
            k = len(self.values)
            chosen = b.take(maps, b.const(np.asarray(self.values, dtype=i64)), axis=1)
            n = b.dims(maps, [0])
            classes = b.expand(b.const(np.asarray([self.values], dtype=i64)),
                               b.concat([n, b.const(np.asarray([k], dtype=i64))], 0))
        port = output_port(ctx.backend, model, SALIENCY_OUTPUT)
        assert port.dims is not None
        n_dim, _, h, w = port.dims
        b.replace_output(SALIENCY_OUTPUT, chosen, shape=[n_dim, k, h, w])
        b.add_output(classes, CLASSES_OUTPUT, [n_dim, k])
        b.finish()
        return PassResult(model, modified=True)

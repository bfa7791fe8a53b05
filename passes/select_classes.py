"""select-classes{targets=...}: choose the classes to explain (by rank, index or name), and say
which."""

from __future__ import annotations

from collections.abc import Sequence

from xaigraph.backends import output_port
from xaigraph.errors import BadInputError, MethodError, XaiGraphError
from xaigraph.labels import IMAGENET_CLASSES, class_index, imagenet_labels, normal
from xaigraph.model_info import model_labels
from xaigraph.pipeline import Model, Pass, PassContext, PassResult

__all__ = ["CLASSES_OUTPUT", "SelectClassesPass", "parse_targets"]

CLASSES_OUTPUT = "saliency_classes"
_USAGE = "give topk:K (K >= 1) or class indices like 3,17,281"

Item = int | str  # a class index, or a class name


def parse_targets(spec: str) -> tuple[str, list[Item]]:
    """`topk:K` -> ("topk", [K]); `3,17,281` -> ("list", [3, 17, 281]); a class name stays a
    string (`tiger cat,tabby` -> ("list", ["tiger cat", "tabby"])), for `resolve`. A class
    listed twice is refused: each class has one map."""
    text = spec.strip()
    if text.startswith("topk:"):
        k = text[5:].strip()
        if not k.isdigit() or int(k) < 1:
            raise BadInputError(f"--targets '{spec}': {_USAGE}")
        return "topk", [int(k)]
    items: list[Item] = []
    for part in text.split(","):
        item = part.strip()
        if not item:
            raise BadInputError(f"--targets '{spec}': {_USAGE}")
        if item.lstrip("-").isdigit():
            if int(item) < 0:
                raise BadInputError(f"--targets '{spec}': class indices must be >= 0")
            items.append(int(item))
        else:
            items.append(item)
    _refuse_repeats(spec, items)
    return "list", items


def _refuse_repeats(spec: str, items: Sequence[Item]) -> None:
    seen: dict[Item, int] = {}
    for position, item in enumerate(items):
        key = normal(item) if isinstance(item, str) else item
        if key in seen:
            raise BadInputError(f"--targets '{spec}': class {item} is listed twice (items "
                                f"{seen[key] + 1} and {position + 1}); list each class once")
        seen[key] = position


def resolve(spec: str, items: Sequence[Item], labels: list[str] | None) -> list[int]:
    """The class indices of `items`, names looked up in `labels` (see `xaigraph.labels`)."""
    out = []
    for item in items:
        if isinstance(item, int):
            out.append(item)
        elif labels is None:
            raise BadInputError(
                f"--targets '{spec}': '{item}' is not a class index and the model carries no "
                f"class names (labels); {_USAGE}")
        else:
            out.append(class_index(item, labels, "--targets"))
    _refuse_repeats(spec, out)
    return out


class SelectClassesPass(Pass):
    """Requires `ctx.target`; runs before insert-saliency, which then builds the maps of the
    chosen classes only. With `topk:K` it chooses, per image, the K classes the model scores
    highest (ranked by its classification output), highest first; with a list of class
    indices or names, those, in that order, for every image (names are looked up in the
    model's labels, or the ImageNet names for a 1000-class model without labels: see
    `xaigraph.labels`; a class listed twice is refused). Adds the output `saliency_classes`
    `[N, K]` (int64) with the chosen indices; `saliency_map` `[N, K, h, w]` comes after it,
    last."""

    name = "select-classes"
    option_names = ("targets",)

    def __init__(self, targets: str) -> None:
        self.spec = targets.strip()
        self.kind, self.items = parse_targets(targets)
        self.classes: list[int] | None = None  # the items as indices, once `requires` ran

    def options(self) -> dict[str, str]:
        """Class indices; a name not yet looked up prints with `_` for its spaces."""
        if self.kind == "topk":
            return {"targets": f"topk:{self.items[0]}"}
        items = self.classes if self.classes is not None else self.items
        return {"targets": " ".join(str(i).replace(" ", "_") for i in items)}

    @classmethod
    def from_options(cls, options: dict[str, str]) -> SelectClassesPass:
        if "targets" not in options:
            raise BadInputError("select-classes needs targets (select-classes{targets=T})")
        return cls(",".join(options["targets"].split()))

    def requires(self, model: Model, ctx: PassContext) -> None:
        if ctx.target is None:
            raise XaiGraphError("needs detect-target to run first")
        if output_port(ctx.backend, model, CLASSES_OUTPUT) is not None:
            raise MethodError(f"the model already has an output named '{CLASSES_OUTPUT}'")
        if self.kind == "topk" and ctx.target.kind == "detector":
            raise BadInputError("--targets topk:K needs a classification output; choose a "
                                "detector's classes by index (--targets 3,17)")
        k = ctx.target.num_classes
        if self.kind == "list":
            labels = model_labels(model)
            if labels is None and k == IMAGENET_CLASSES:
                labels = imagenet_labels()
            self.classes = resolve(self.spec, self.items, labels)
        wanted = int(self.items[0]) if self.kind == "topk" else max(self._indices()) + 1
        if wanted > k:
            what = f"topk:{wanted}" if self.kind == "topk" else f"class {wanted - 1}"
            raise BadInputError(f"--targets {what}: the model has {k} classes")

    def _indices(self) -> list[int]:
        assert self.classes is not None  # see `requires`
        return self.classes

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        import numpy as np

        assert ctx.target is not None  # see `requires`
        b = ctx.backend.builder(model, None, prefix="xai/select")
        i64 = np.int64
        scores = b.output_at(ctx.target.output_index)
        if self.kind == "topk":
            k = int(self.items[0])
            flat = b.reshape(scores, b.const(np.asarray([0, -1], dtype=i64)))  # [N, K]
            classes = b.topk(flat, k, axis=1)  # [N, k]
        else:
            k = len(self._indices())
            n = b.dims(scores, [0])
            classes = b.expand(b.const(np.asarray([self._indices()], dtype=i64)),
                               b.concat([n, b.const(np.asarray([k], dtype=i64))], 0))
        dims = ctx.backend.outputs(model)[ctx.target.output_index].dims
        b.add_output(classes, CLASSES_OUTPUT, [dims[0] if dims else None, k])
        b.finish()
        return PassResult(model, modified=True)

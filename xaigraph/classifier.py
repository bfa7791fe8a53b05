"""The classifier at the end of a head, and class scores for some classes only.

Most heads end in a matrix product with a constant weight, then a bias and reshapes:
`scores = x @ W (+ b)`. Score `k` of a vector `x` needs only row `k` of `W`, so maps for a few
chosen classes per image can gather those rows and skip the product with all the others.
`find_classifier` recognises that ending from the graph's structure; `chosen_scores` builds
the cheap product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from xaigraph.graph_view import GraphView, Value
from xaigraph.head import Head
from xaigraph.opkinds import RESHAPES
from xaigraph.ops import OpBuilder, T, ints

__all__ = ["Classifier", "chosen_scores", "find_classifier"]

# Per-class affine steps after the product, by neutral name (also the builder method that
# redoes it) -> whether the data must be input 0.
_STEPS = {"add": False, "mul": False, "sub": True, "div": True}


@dataclass
class Classifier:
    op: str  # the matrix product
    data: Value  # its data input, one vector per image
    weight: Value  # the constant 2-D weight
    layout: str  # "kc": stored [K, C]; "ck": stored [C, K]
    # After the product, in order: (builder method, a constant, whether it has K values or
    # one), such as a bias ("add") or a Gemm's scale ("mul").
    steps: list[tuple[str, Value, bool]] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)  # the product and the ops after it


def _per_image(view: GraphView, v: Value) -> int | None:
    shape = view.tensor(v).probe
    return None if not shape else math.prod(shape[1:])


def _numel(view: GraphView, v: Value) -> int | None:
    shape = view.tensor(v).probe
    return None if shape is None else math.prod(shape)


def find_classifier(view: GraphView, head: Head, num_classes: int,
                    after_pool: bool = True) -> Classifier | None:
    """The matrix product that makes the scores, when only per-class affine steps (bias,
    scale) and reshapes of the `[N, K]` scores follow it inside the head (among the ops
    after the pooling, or all of the head's ops when not `after_pool`), or None."""
    after = set(head.local + head.rest if after_pool else head.ops)
    v = head.scores
    tail: list[str] = []
    steps: list[tuple[str, Value, bool]] = []
    while True:
        if v.op not in after or _per_image(view, v) != num_classes:
            return None
        op = view.ops[v.op]
        users = [u for u in view.graph.successors(v.op) if u in after]
        if tail and users != [tail[-1]]:
            return None  # the value also feeds something else
        tail.append(v.op)
        if "matrix" in op.attrs:
            break
        data = [x for x in op.inputs if view.reads_input_data(x.op)]
        if len(data) != 1:
            return None
        if op.neutral in _STEPS:
            const = next((x for x in op.inputs if x != data[0]), None)
            if (const is None or (_STEPS[op.neutral] and op.inputs[0] != data[0])
                    or _numel(view, const) not in (1, num_classes)):
                return None
            steps.insert(0, (op.neutral, const, _numel(view, const) != 1))
        elif op.neutral not in RESHAPES or op.inputs[0] != data[0]:
            return None
        v = data[0]
    data_in, weight = op.inputs[0], op.inputs[1]
    if view.tensor(data_in).rank != 2 or view.tensor(v).rank != 2 or len(op.outputs) != 1:
        return None
    if op.neutral == "gemm" and len(op.inputs) > 2:  # its bias
        bias = op.inputs[2]
        if _numel(view, bias) not in (1, num_classes):
            return None
        steps.insert(0, ("add", bias, _numel(view, bias) != 1))
    return Classifier(op=v.op, data=data_in, weight=weight, layout=op.attrs["matrix"],
                      steps=steps, tail=tail)


def chosen_scores(b: OpBuilder, clf: Classifier, x: T, classes: T, bias: bool = True) -> T:
    """Scores `[N, k, L]` of the int64 `classes` `[N, k]` for the vectors `x` `[N, L, C]`
    (without additive steps when `bias` is False)."""
    w = b.value(clf.weight)
    if clf.layout == "kc":
        rows = b.take(w, classes, axis=0)  # [N, k, C]
    else:
        rows = b.transpose(b.take(w, classes, axis=1), [1, 2, 0])  # [C, N, k] -> [N, k, C]
    scores = b.matmul(rows, b.transpose(x, [0, 2, 1]))
    for method, const, per_class in clf.steps:
        if method in ("add", "sub") and not bias:
            continue
        flat = b.reshape(b.value(const), b.const(ints(-1)))
        if per_class:
            flat = b.unsqueeze(b.take(flat, classes, axis=0), [2])  # [N, k, 1]
        scores = getattr(b, method)(scores, flat)
    return scores

"""CAM (Zhou et al. 2016): the classifier's weights applied to the target map.

For a head that is global average pooling followed by an affine map `L(v) = W v + b` (linear
layers, reshapes, per-channel scales and biases, batch norm, but no activation), the class
activation map is `S[k, i, j] = sum_c W[k, c] F[c, i, j]`: exactly what Grad-CAM computes for
such a head. It is built as `L(F[:, i, j]) - L(0)`: the head after the pooling runs once on the
location vectors plus a zero vector, so any affine head works as it is, in one batched matmul.
"""

from __future__ import annotations

import numpy as np

from xaigraph.classifier import chosen_scores, find_classifier
from xaigraph.graph_view import GraphView, Value
from xaigraph.head import Head
from xaigraph.methods.base import Method
from xaigraph.methods.pooled import run_after_pool, vectors_at
from xaigraph.ops import NUMPY_TYPES, OpBuilder, T, ints
from xaigraph.target import Target

__all__ = ["CAM"]


def _affine(view: GraphView, op_id: str) -> bool:
    """Whether the op maps its data input affinely (the other inputs being constants)."""
    op = view.ops[op_id]
    if view.is_shape_computation(op_id):
        return True
    data = [i for i, v in enumerate(op.inputs) if view.reads_input_data(v.op)]
    kind = op.attrs.get("affine")
    if kind == "always":
        return True
    if kind == "numerator":
        return data == [0]
    return kind == "single" and len(data) <= 1


def _zero_vectors(b: OpBuilder, head: Head) -> T:
    """A zero pooled vector per image (the pooled tensor times 0: only its shape counts)."""
    assert head.pool is not None
    pooled = b.value(Value(head.pool, 0))
    return b.mul(pooled, b.const(np.zeros((), dtype=NUMPY_TYPES[b.dtype(pooled)])))


class CAM(Method):
    name = "cam"
    per_class = True
    summary = "class activation map: the classifier's weights on the target map, [N, K, H, W]"

    def check(self, view: GraphView, target: Target, head: Head) -> str | None:
        shown = " > ".join(head.describe_ops(view))
        if head.side_inputs:
            return "the head also reads tensors that do not come from the target"
        if head.pool is None:
            return f"the head ({shown}) does not start with global average pooling"
        if head.prefix:
            return (f"the head has {view.op_chain(head.prefix)} between the target and the "
                    "pooling; CAM needs the pooling right after the target")
        after = head.local + head.rest
        bad = [o for o in after if not _affine(view, o)]
        if bad:
            return (f"the head after the pooling is not linear: "
                    f"{', '.join(view.ops[o].type for o in bad)} in {shown}")
        if not any(view.ops[o].kind == "linear" for o in after):
            return f"the head ({shown}) has no linear layer after the pooling"
        return None

    def form(self, view: GraphView, target: Target, head: Head,
             form: str | None = None) -> str:
        return (f"classifier weights on the target map: {view.op_chain(head.local + head.rest)}"
                " on the location vectors, minus its value at zero")

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
              form: str | None = None) -> T:
        assert head.pool is not None
        f = b.value(target.value)
        n, h, w = (b.dims(f, [i]) for i in (0, 2, 3))
        zeros = _zero_vectors(b, head)
        maps, at_zero = run_after_pool(b, view, target, head, f, n, h, w, extra=zeros)
        assert at_zero is not None  # [N, 1, K]
        bias = b.unsqueeze(b.transpose(at_zero, [0, 2, 1]), [3])  # [N, K, 1, 1]
        out = b.sub(maps, bias)
        return out if b.dtype(out) == "f32" else b.cast(out, "f32")

    def chosen_form(self, view: GraphView, target: Target, head: Head,
                    form: str | None = None) -> str:
        clf = find_classifier(view, head, target.num_classes)
        assert clf is not None
        return (f"the chosen classes' rows of the classifier weight "
                f"({view.op_chain(clf.tail[::-1])}) on the target map")

    def chooses_classes(self, view: GraphView, target: Target, head: Head,
                        form: str | None = None) -> bool:
        return find_classifier(view, head, target.num_classes) is not None

    def build_chosen(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
                     classes: T, form: str | None = None) -> T:
        """The head up to the classifier's input on the location vectors and a zero vector;
        their difference times the chosen classes' rows of the classifier's weight."""
        clf = find_classifier(view, head, target.num_classes)
        assert clf is not None and head.pool is not None
        f = b.value(target.value)
        n, h, w = (b.dims(f, [i]) for i in (0, 2, 3))
        zeros = _zero_vectors(b, head)
        x = vectors_at(b, view, head, f, n, clf.data, clf.tail, extra=zeros)  # [N, 1+HW, C]
        x = b.sub(b.slice(x, 1, None, axis=1), b.slice(x, 0, 1, axis=1))
        scores = chosen_scores(b, clf, x, classes, bias=False)  # [N, k, H*W]
        out = b.reshape(scores, b.concat([n, b.const(ints(-1)), h, w], 0))
        return out if b.dtype(out) == "f32" else b.cast(out, "f32")

"""ReciproCAM (Byun & Lee, arXiv 2209.14074), built inside the graph.

For a target map `F` (`C x H x W`) and each location `(i, j)`, the mosaic `M_ij` keeps `F` at
`(i, j)` and zeroes it elsewhere; `S[k, i, j] = head(M_ij)[k]`.

Two exact forms:

- fast: when the head starts with global average pooling, `GAP(M_ij) = F[:, i, j] / (H*W)`,
  so only the ops after the pooling run, on the `H*W` location vectors as one batch. When
  per-location ops P (1x1 convolutions, activations) come before the pooling, the mosaic is
  zero away from `(i, j)`, so `GAP(P(M_ij)) = (P(F[:, i, j]) + (H*W - 1) * P(0)) / (H*W)`;
- mosaic: otherwise a copy of the whole head runs on the batch of `H*W` mosaics per image.

Both use the map's runtime shape, so dynamic batch and spatial sizes keep working.
"""

from __future__ import annotations

import numpy as np

from xaigraph.classifier import chosen_scores, find_classifier
from xaigraph.errors import MethodError
from xaigraph.graph_view import GraphView, Value
from xaigraph.head import Head
from xaigraph.methods.base import Method
from xaigraph.methods.headcopy import copy_head
from xaigraph.methods.pooled import run_after_pool, to_maps, vectors_at
from xaigraph.ops import NUMPY_TYPES, OpBuilder, T, ints
from xaigraph.target import Target

__all__ = ["ReciproCAM"]

MOSAIC_LIMIT = 2 << 30  # bytes of mosaics per image at the probe size


def _mosaic_bytes(view: GraphView, target: Target) -> int | None:
    shape = view.tensor(target.value).probe
    if shape is None:
        return None
    return 4 * (shape[2] * shape[3]) ** 2 * shape[1]


def _learned(view: GraphView, op_ids: list[str]) -> bool:
    return any(view.ops[o].kind == "linear" for o in op_ids)


class ReciproCAM(Method):
    name = "reciprocam"
    per_class = True
    summary = "head re-run on one-location mosaics of the target, [N, K, H, W]"
    form_names = ("fast", "mosaic")

    def __init__(self, share_head: bool = True, form: str | None = None) -> None:
        self.share_head = share_head
        self.forced_form = form  # "mosaic": for comparisons (benchmark, tests) only

    def pick_form(self, view: GraphView, target: Target, head: Head) -> str:
        if self.forced_form is not None:
            return self.forced_form
        return "fast" if head.pool is not None else "mosaic"

    def check(self, view: GraphView, target: Target, head: Head) -> str | None:
        if head.side_inputs:
            names = ", ".join(view.describe(v) for v in head.side_inputs[:3])
            return (
                f"the head also reads {names}, which does not come from the target, so it "
                "cannot be re-run on mosaics (choose a target every path to the output "
                "passes through)"
            )
        dtype = view.tensor(target.value).dtype
        if dtype not in ("f32", "f16"):
            return f"target element type {dtype} is not a float type"
        if head.pool is None:
            need = _mosaic_bytes(view, target)
            if need is not None and need > MOSAIC_LIMIT:
                return (
                    f"the head does not start with global average pooling, and its mosaic "
                    f"form would need {need / (1 << 30):.1f} GiB per image at input "
                    f"{list(view.probe_inputs[0])}; choose a later target with "
                    "--target-layer, or use activationmap"
                )
        return None

    def form(self, view: GraphView, target: Target, head: Head,
             form: str | None = None) -> str:
        h, w = target.shape[2], target.shape[3]
        hw = f"{h * w}" if h is not None and w is not None else "H*W"
        if (form or self.pick_form(view, target, head)) == "fast":
            text = "fast exact form: " + self._fast_parts(view, head, head.rest, hw)
            if self.share_head and _learned(view, head.local + head.rest):
                text += " (the model's own pooled vector joins that batch: one pass over " \
                        "the head's weights)"
            return text
        text = f"mosaic form: the whole head runs on {hw} masked copies of the target per image"
        need = _mosaic_bytes(view, target)
        if need is not None and need >= 256 << 20:
            text += f" (~{need / (1 << 30):.1f} GiB of mosaics per image at this size)"
        return text

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
              form: str | None = None) -> T:
        f = b.value(target.value)
        fdt = b.dtype(f)
        n, c, h, w = (b.dims(f, [i]) for i in range(4))
        if (form or self.pick_form(view, target, head)) == "fast":
            out = self._fast(b, view, target, head, n, h, w, fdt)
        else:
            out = to_maps(b, target, self._mosaic(b, view, head, f, c, h, w, fdt), n, h, w)
        return out if b.dtype(out) == "f32" else b.cast(out, "f32")

    @staticmethod
    def _fast_parts(view: GraphView, head: Head, rest: list[str], hw: str) -> str:
        parts = []
        if head.prefix:
            parts.append(f"per-location {view.op_chain(head.prefix)} before the pooling")
        if head.local:
            parts.append(f"{view.op_chain(head.local)} on the map of pooled vectors")
        if rest:
            parts.append(f"{view.op_chain(rest)} on the {hw} location vectors")
        return "; ".join(parts) or "the pooled map itself"

    def chosen_form(self, view: GraphView, target: Target, head: Head,
                    form: str | None = None) -> str:
        clf = find_classifier(view, head, target.num_classes)
        assert clf is not None
        before = [o for o in head.rest if o not in clf.tail]
        h, w = target.shape[2], target.shape[3]
        hw = f"{h * w}" if h is not None and w is not None else "H*W"
        parts = self._fast_parts(view, head, before, hw) + "; then " if (
            head.prefix or head.local or before) else ""
        return (f"fast exact form: {parts}the chosen classes' rows of the classifier "
                f"({view.op_chain(clf.tail[::-1])}) on the {hw} location vectors")

    def chooses_classes(self, view: GraphView, target: Target, head: Head,
                        form: str | None = None) -> bool:
        return ((form or self.pick_form(view, target, head)) == "fast"
                and find_classifier(view, head, target.num_classes) is not None)

    def build_chosen(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
                     classes: T, form: str | None = None) -> T:
        """The fast form up to the classifier's input, then only the chosen classes' rows of
        its weight: `[N, k, H, W]`."""
        clf = find_classifier(view, head, target.num_classes)
        assert clf is not None
        f = b.value(target.value)
        n, h, w = (b.dims(f, [i]) for i in (0, 2, 3))
        x = vectors_at(b, view, head, self._grid(b, view, head, h, w, b.dtype(f)), n,
                       clf.data, clf.tail)
        scores = chosen_scores(b, clf, x, classes)  # [N, k, H*W]
        out = b.reshape(scores, b.concat([n, b.const(ints(-1)), h, w], 0))
        return out if b.dtype(out) == "f32" else b.cast(out, "f32")

    def _grid(self, b: OpBuilder, view: GraphView, head: Head, h: T, w: T, fdt: str) -> T:
        """The pooled value of each mosaic, as a map `[N, C', H, W]`."""
        assert head.pool is not None
        pool_in = view.ops[head.pool].inputs[0]
        area = b.cast(b.mul(h, w), fdt)
        total = b.value(pool_in)
        if head.prefix:
            shape = view.tensor(head.target).probe
            if shape is None:
                raise MethodError("the target's channel count is unknown")
            zeros = b.const(np.zeros((1, shape[1], 1, 1), dtype=NUMPY_TYPES[fdt]))
            (at_zero,) = b.copy(head.prefix, {head.target: zeros}, [pool_in])
            one = b.const(np.ones((1,), dtype=NUMPY_TYPES[fdt]))
            total = b.add(total, b.mul(at_zero, b.sub(area, one)))
        return b.div(total, area)

    def _fast(self, b: OpBuilder, view: GraphView, target: Target, head: Head, n: T, h: T,
              w: T, fdt: str) -> T:
        """The maps `[N, K, H, W]` by the fast exact form.

        The pooled value of mosaic (i, j) is `(P(F)[:, i, j] + (H*W - 1) * P(0)) / (H*W)`
        for the per-location prefix P; `P(F)` is the pooling's own input, already computed
        by the model. Laid out as a map `[N, C', H, W]`, these pooled values go through the
        per-location `local` ops as one map (a 1x1 convolution on a map is cheaper than on
        H*W one-pixel images); the `rest` of the head then runs on them as a batch.

        When the head after the pooling has learned layers, the model's own pooled vector
        joins the batch as one more location and the original class scores are taken from
        it: the weights are then read once per inference, not twice.
        """
        assert head.pool is not None
        pooled = Value(head.pool, 0)
        grid = self._grid(b, view, head, h, w, fdt)
        if not (self.share_head and _learned(view, head.local + head.rest)):
            maps, _ = run_after_pool(b, view, target, head, grid, n, h, w)
            return maps
        maps, own_scores = run_after_pool(b, view, target, head, grid, n, h, w,
                                          extra=b.value(pooled))
        assert own_scores is not None
        declared = view.tensor(head.scores).shape or ()
        tail = [d if d is not None else -1 for d in declared[1:]]
        b.replace_value(head.scores, b.reshape(own_scores, b.const(ints(0, *tail))))
        return maps

    def _mosaic(self, b: OpBuilder, view: GraphView, head: Head, f: T, c: T, h: T, w: T,
                fdt: str) -> T:
        eye = b.eye(b.mul(h, w), fdt)  # [HW, HW]
        masks = b.reshape(eye, b.concat([b.const(ints(-1, 1)), h, w], 0))  # [HW, 1, H, W]
        mosaics = b.mul(b.unsqueeze(f, [1]), b.unsqueeze(masks, [0]))  # [N, HW, C, H, W]
        mosaics = b.reshape(mosaics, b.concat([b.const(ints(-1)), c, h, w], 0))
        batch = b.dims(mosaics, [0])
        (out,) = copy_head(b, view, head, head.ops, {head.target: mosaics}, [head.scores], batch)
        return out

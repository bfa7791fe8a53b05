"""Copying (part of) a head so that it runs on a different batch."""

from __future__ import annotations

from collections.abc import Sequence

from xaigraph.graph_view import GraphView, Value
from xaigraph.head import Head
from xaigraph.ops import OpBuilder, T

__all__ = ["copy_head"]


def copy_head(b: OpBuilder, view: GraphView, head: Head, ops: Sequence[str],
              inputs: dict[Value, T], outputs: Sequence[Value], batch: T,
              attention_bias: T | None = None, keep_rows: dict[str, int] | None = None
              ) -> list[T]:
    """`b.copy(ops, inputs, outputs)`, where the head's shape inputs (computed from the shapes
    of tensors outside the head, such as the image's batch size) are recomputed with `batch`
    (a 1-element int64 tensor) as dim 0 of each shape they read."""
    mapping = dict(inputs)
    wanted = set(ops)
    needs = [v for v in head.shape_inputs
             if any(v in view.ops[o].inputs for o in wanted)]
    if needs:
        patched: dict[Value, T] = {}
        for s in head.shape_sources:
            src = view.ops[s].inputs[0]
            x = b.value(src)
            rank = view.tensor(src).rank or 1
            shape = b.concat([batch, b.dims(x, list(range(1, rank)))], 0) if rank > 1 else batch
            dtype = view.tensor(Value(s, 0)).dtype
            patched[Value(s, 0)] = shape if dtype == "i64" else b.cast(shape, dtype)
        mapping.update(zip(needs, b.copy(head.shape_ops, patched, needs), strict=True))
    return b.copy(ops, mapping, outputs, attention_bias, keep_rows)

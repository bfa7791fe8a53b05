"""The head: the ops that turn the target feature map into the class scores.

`extract_head` collects the ops on paths from the target to the scores and sorts what else
they read: constants (shared as they are) and other non-constant tensors ("side inputs"). A
head with side inputs cannot be re-run on a batch of mosaics: it also depends on something
that is not the target.

When the head is `prefix -> global average pooling -> post` where the prefix acts on each
spatial location on its own (1x1 convolutions, activations, per-channel affine ops; often
empty), `Head.pool` names the pooling, `prefix` and `post_pool` the ops before and after it:
ReciproCAM's fast exact form needs no mosaics then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xaigraph.graph_view import GraphView, Value

__all__ = ["Head", "extract_head", "relax_batch"]


@dataclass
class Head:
    target: Value
    scores: Value
    ops: list[str]
    side_inputs: list[Value] = field(default_factory=list)
    pool: str | None = None  # the global average pooling of the fast form
    prefix: list[str] = field(default_factory=list)  # per-location ops before the pooling
    post_pool: list[str] = field(default_factory=list)

    def describe_ops(self, view: GraphView, limit: int = 12) -> list[str]:
        shown = [view.ops[o].type for o in self.ops if not view.is_shape_computation(o)]
        return shown if len(shown) <= limit else [*shown[: limit - 1], "...", shown[-1]]


def extract_head(view: GraphView, target: Value, scores: Value) -> Head:
    ops = view.ops_between(target, scores)
    inside = set(ops)
    side: list[Value] = []
    for o in ops:
        for v in view.ops[o].inputs:
            if v == target or v.op in inside or view.is_const_derived(v.op):
                continue
            if v not in side:
                side.append(v)
    head = Head(target=target, scores=scores, ops=ops, side_inputs=side)

    for pool_id in (o for o in ops if view.ops[o].kind == "gap"):
        split = _split_at_pool(view, head, pool_id)
        if split is not None:
            head.pool = pool_id
            head.prefix, head.post_pool = split
            break
    return head


def _split_at_pool(view: GraphView, head: Head, pool_id: str) -> tuple[list[str], list[str]] | None:
    """(prefix, post-pool ops) when the head is `prefix -> pool -> post` with a per-location
    prefix, else None.

    Per-location: every op of the prefix that carries the target's values acts on each
    spatial location on its own (ops that only compute shapes do not count), and any other
    operand it reads does not vary over space. Nothing outside prefix and pool reads the
    values the prefix carries, and the ops after the pool read only the pool's output,
    themselves and constants.
    """
    target, scores = head.target, head.scores
    pool_in = view.ops[pool_id].inputs[0]
    pooled = Value(pool_id, 0)
    prefix = [] if pool_in == target else view.ops_between(target, pool_in)
    if pool_in != target and pool_in.op not in prefix:
        return None
    post = view.ops_between(pooled, scores) if pooled != scores else []
    in_prefix, in_post = set(prefix), set(post)

    carries = {target}  # values that carry the target's data (not only its shape)
    for o in prefix:
        op = view.ops[o]
        data = [v for v in op.inputs if v in carries]
        if not data or view.is_shape_computation(o):
            continue
        mode = op.attrs.get("pointwise")
        if mode is None:
            return None
        if mode == "unary" and op.inputs[0] not in carries:
            return None
        for i, v in enumerate(op.inputs):
            if v in carries or (mode == "unary" and i > 0 and view.is_const_derived(v.op)):
                continue
            if v.op not in in_prefix and not view.is_const_derived(v.op):
                return None  # a side input
            if mode == "unary" or not _spatially_constant(view, v):
                return None
        carries.update(Value(o, p) for p in range(len(op.outputs)))
    if pool_in not in carries:
        return None
    for o in head.ops:
        if o in in_prefix or o == pool_id or o in in_post or view.is_shape_computation(o):
            continue
        if any(v in carries for v in view.ops[o].inputs):
            return None  # something else reads the prefix's values
    for o in post:
        for v in view.ops[o].inputs:
            if not (v == pooled or v.op in in_post or view.is_const_derived(v.op)):
                return None
    return prefix, post


def _spatially_constant(view: GraphView, v: Value) -> bool:
    """True when `v`, broadcast against an NCHW map, has extent 1 over H and W."""
    shape = view.tensor(v).probe
    if shape is None:
        return False
    padded = (1,) * max(0, 4 - len(shape)) + tuple(shape)
    return len(padded) == 4 and padded[2] == 1 and padded[3] == 1


def relax_batch(shape: np.ndarray, in_batch: int, special_zero: bool) -> np.ndarray | None:
    """A Reshape target shape that no longer fixes the batch, or None if it does not.

    `shape[0]` fixes the batch when it is a positive literal equal to the input's (probed)
    batch. It becomes 0 ("copy the input's dimension"), which needs special-zero semantics;
    when the original did not have them, any other 0 would change meaning, so we give up.
    """
    flat = np.asarray(shape).reshape(-1)
    if flat.size == 0 or int(flat[0]) <= 0 or int(flat[0]) != in_batch:
        return None
    if not special_zero and np.any(flat[1:] == 0):
        return None
    out = flat.copy()
    out[0] = 0
    return out

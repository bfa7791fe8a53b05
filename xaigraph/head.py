"""The head: the ops that turn the target feature map into the class scores.

`extract_head` collects the ops on paths from the target to the scores and sorts what else
they read: constants (shared as they are) and other non-constant tensors ("side inputs"). A
head with side inputs cannot be re-run on a batch of mosaics: it also depends on something
that is not the target.

It also looks for the structure that ReciproCAM's fast exact form needs:

    target -> prefix -> global average pooling -> local -> rest -> scores

- `prefix`: ops acting on each spatial location on its own (1x1 convolutions, activations,
  per-channel affine ops), often none;
- `pool`: the global average pooling;
- `local`: per-location ops right after the pooling, on `[N, C, 1, 1]` (MobileNetV3's 1x1
  `conv_head`); they can run on a whole map of pooled vectors at once;
- `rest`: the remaining ops, which see the location vectors as a batch; `boundary` lists the
  values (the pooled tensor or outputs of `local`) that `rest` reads.

`prefix` and `local` hold only the ops that carry the target's values; ops that only compute
shapes or constants for them are read from the original graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from xaigraph.graph_view import GraphView, Value

__all__ = ["Head", "extract_head"]


@dataclass
class Head:
    target: Value
    scores: Value
    ops: list[str]
    side_inputs: list[Value] = field(default_factory=list)
    others: list[Value] = field(default_factory=list)  # the other branches' token maps
    # Values the head reads that depend on model inputs only through their shapes (such as
    # the batch size in `x.view(x.size(0), -1)`), the shape-reading ops they start from, and
    # the ops in between: a copy of the head recomputes them with its own batch size.
    shape_inputs: list[Value] = field(default_factory=list)
    shape_sources: list[str] = field(default_factory=list)
    shape_ops: list[str] = field(default_factory=list)
    pool: str | None = None  # the global average pooling of the fast form
    prefix: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)
    rest: list[str] = field(default_factory=list)
    boundary: list[Value] = field(default_factory=list)

    def describe_ops(self, view: GraphView, limit: int = 12) -> list[str]:
        shown = [view.ops[o].type for o in self.ops if not view.is_shape_computation(o)]
        return shown if len(shown) <= limit else [*shown[: limit - 1], "...", shown[-1]]


def extract_head(view: GraphView, target: Value, scores: Value,
                 others: Sequence[Value] = ()) -> Head:
    """The head from `target` (and the `others` token maps of a model with several
    branches, which then are not side inputs) to `scores`."""
    inside = set(view.ops_between(target, scores))
    for v in others:
        inside.update(view.ops_between(v, scores))
    ops = [o for o in view.order if o in inside]
    starts = {target, *others}
    outside: list[Value] = []
    for o in ops:
        for v in view.ops[o].inputs:
            if v in starts or v.op in inside or view.is_const_derived(v.op):
                continue
            if v not in outside:
                outside.append(v)
    head = Head(target=target, scores=scores, ops=ops, others=list(others))
    free: dict[str, bool] = {}
    for v in outside:
        if view.reads_input_data(v.op):
            head.side_inputs.append(v)
        elif _batch_free(view, v.op, free):
            continue  # the same for any batch size: a copy reads it from the model
        elif _trace_shape_input(view, head, v):
            head.shape_inputs.append(v)
        else:
            head.side_inputs.append(v)
    if head.side_inputs or head.others:
        return head
    dependent = _data_dependent(view, target, ops)
    for pool_id in (o for o in ops if view.ops[o].kind == "gap"):
        saved = (list(head.shape_inputs), list(head.shape_sources), list(head.shape_ops))
        if _split_at_pool(view, head, pool_id, dependent):
            break
        head.shape_inputs, head.shape_sources, head.shape_ops = saved
    return head


def _batch_free(view: GraphView, op_id: str, memo: dict[str, bool]) -> bool:
    """Whether a shape computation reads only dims that the model fixes (`x.shape[2]` of a
    map whose size is static), so its value is the same for a copy of the head run on any
    batch (attention that folds its heads into the batch reads such dims)."""
    if op_id in memo:
        return memo[op_id]
    memo[op_id] = False  # while looking
    op = view.ops[op_id]
    if view.is_const_derived(op_id):
        ok = True
    elif op.kind == "shapeof" or view.reads_input_data(op_id):
        ok = False
    elif op.neutral == "gather" and view.ops[op.inputs[0].op].kind == "shapeof":
        declared = view.tensor(view.ops[op.inputs[0].op].inputs[0]).shape
        index = view.const_value(op.inputs[1])
        ok = declared is not None and index is not None and all(
            declared[int(i) % len(declared)] is not None for i in np.asarray(index).ravel())
    else:
        ok = all(_batch_free(view, i.op, memo) for i in op.inputs)
    memo[op_id] = ok
    return ok


def _trace_shape_input(view: GraphView, head: Head, v: Value) -> bool:
    """Record the shape-reading ops and the ops after them that compute `v`. Each
    shape-reading op must read a tensor whose dim 0 is the batch, so that the copy can
    substitute its own batch size there."""
    batch = view.probe_inputs[0][0] if view.probe_inputs and view.probe_inputs[0] else None
    found: set[str] = set()
    stack = [v.op]
    while stack:
        o = stack.pop()
        if o in found or view.is_const_derived(o):
            continue
        found.add(o)
        op = view.ops[o]
        if op.kind == "shapeof":
            src = view.tensor(op.inputs[0])
            if not src.probe or batch is None or src.probe[0] != batch:
                return False
            if o not in head.shape_sources:
                head.shape_sources.append(o)
            continue
        stack.extend(x.op for x in op.inputs)
    for o in view.order:
        if o in found and view.ops[o].kind != "shapeof" and o not in head.shape_ops:
            head.shape_ops.append(o)
    head.shape_ops.sort(key=view.order.index)
    return True


def _data_dependent(view: GraphView, target: Value, ops: list[str]) -> set[Value]:
    """Values of the head that depend on the target's values (not only on its shape)."""
    dep = {target}
    for o in ops:
        if view.is_shape_computation(o):
            continue
        if any(v in dep for v in view.ops[o].inputs):
            dep.update(Value(o, p) for p in range(len(view.ops[o].outputs)))
    return dep


def _spatially_constant(view: GraphView, v: Value) -> bool:
    """True when `v`, broadcast against an NCHW map, has extent 1 over H and W."""
    shape = view.tensor(v).probe
    if shape is None or len(shape) > 4:
        return False
    padded = (1,) * (4 - len(shape)) + tuple(shape)
    return padded[2] == 1 and padded[3] == 1


def _acts_per_location(view: GraphView, op_id: str, carried: set[Value],
                       dependent: set[Value]) -> bool:
    """Whether op `op_id`, which reads carried values, acts on each location on its own, with
    any other operand fixed (not dependent on the target's values) and constant over space."""
    op = view.ops[op_id]
    mode = op.attrs.get("pointwise")
    if mode is None:
        return False
    if mode == "unary" and op.inputs[0] not in carried:
        return False
    for i, v in enumerate(op.inputs):
        if v in carried:
            continue
        if v in dependent:
            return False
        if mode == "unary" and i > 0:
            continue  # weights, slopes, clamp bounds
        if not _spatially_constant(view, v):
            return False
    return True


def _split_at_pool(view: GraphView, head: Head, pool_id: str, dependent: set[Value]) -> bool:
    """Split `head` at the global average pooling `pool_id` into prefix, pool, local and rest
    (see the module's docstring) when the fast form's structure holds; False otherwise, with
    `head`'s shape fields possibly extended (the caller restores them)."""
    pool_in = view.ops[pool_id].inputs[0]
    pooled = Value(pool_id, 0)
    found = _per_location_prefix(view, head.target, pool_in, dependent)
    if found is None:
        return False
    prefix, carried = found
    after = view.ops_between(pooled, head.scores) if pooled != head.scores else []
    region = set(prefix) | {pool_id} | set(after)
    if _prefix_read_elsewhere(view, head, region, carried):
        return False
    if not _reads_only_pooled(view, head, after, pooled):
        return False
    local = _local_ops(view, after, pooled, dependent)
    rest, boundary = _rest_and_boundary(view, after, local, pooled, head.scores)
    head.pool, head.prefix, head.local, head.rest, head.boundary = (
        pool_id, prefix, local, rest, boundary)
    return True


def _per_location_prefix(view: GraphView, target: Value, pool_in: Value,
                         dependent: set[Value]) -> tuple[list[str], set[Value]] | None:
    """The ops between `target` and the pooling's input `pool_in` that carry the target's
    values, and the values they carry, when each acts per location and they lead to
    `pool_in`; None otherwise."""
    before = [] if pool_in == target else view.ops_between(target, pool_in)
    carried = {target}
    prefix = []
    for o in before:
        if view.is_shape_computation(o) or not any(v in dependent for v in view.ops[o].inputs):
            continue
        if not _acts_per_location(view, o, carried, dependent):
            return None
        prefix.append(o)
        carried.update(Value(o, p) for p in range(len(view.ops[o].outputs)))
    if pool_in not in carried:
        return None
    return prefix, carried


def _prefix_read_elsewhere(view: GraphView, head: Head, region: set[str],
                           carried: set[Value]) -> bool:
    """Whether an op of the head outside `region` (prefix, pooling and what follows it)
    reads a value the prefix carries (shape computations aside)."""
    for o in head.ops:
        skip = o in region or view.is_shape_computation(o)
        if not skip and any(v in carried for v in view.ops[o].inputs):
            return True
    return False


def _reads_only_pooled(view: GraphView, head: Head, after: list[str], pooled: Value) -> bool:
    """Whether the ops `after` the pooling read only the pooled value, each other, constants,
    and shapes (of the target, say, for a flatten), which a copy recomputes with its own
    batch size: those are added to `head.shape_inputs`."""
    mine = set(after)
    for o in after:
        for v in view.ops[o].inputs:
            if v == pooled or v.op in mine or view.is_const_derived(v.op):
                continue
            if v in head.shape_inputs:
                continue
            if view.is_shape_computation(v.op) and _trace_shape_input(view, head, v):
                head.shape_inputs.append(v)
                continue
            return False
    return True


def _local_ops(view: GraphView, after: list[str], pooled: Value,
               dependent: set[Value]) -> list[str]:
    """`local`: the per-location ops on the rank-4 pooled tensor, right after the pooling."""
    local: list[str] = []
    carried = {pooled} if view.tensor(pooled).rank == 4 else set()
    for o in after:
        op = view.ops[o]
        reads = [v for v in op.inputs if v in carried]
        if not reads or view.is_shape_computation(o):
            continue
        if any(v in dependent and v not in carried for v in op.inputs):
            continue
        if all(view.tensor(Value(o, p)).rank == 4 for p in range(len(op.outputs))) and \
                _acts_per_location(view, o, carried, dependent):
            local.append(o)
            carried.update(Value(o, p) for p in range(len(op.outputs)))
    return local


def _rest_and_boundary(view: GraphView, after: list[str], local: list[str], pooled: Value,
                       scores: Value) -> tuple[list[str], list[Value]]:
    """`rest`, the ops of `after` that still lead to the scores once `local` is taken out,
    and `boundary`, the values (pooled, or made by `local`) that `rest` reads; with no
    `rest`, the boundary is the scores themselves."""
    mine, local_set = set(after), set(local)
    rest_set: set[str] = set()
    if scores.op not in local_set and scores != pooled:
        stack = [scores.op]
        while stack:
            o = stack.pop()
            if o in rest_set or o not in mine or o in local_set:
                continue
            rest_set.add(o)
            stack.extend(v.op for v in view.ops[o].inputs)
    rest = [o for o in after if o in rest_set]
    boundary: list[Value] = []
    for o in rest:
        for v in view.ops[o].inputs:
            if (v == pooled or v.op in local_set) and v not in boundary:
                boundary.append(v)
    return rest, (boundary if rest else [scores])

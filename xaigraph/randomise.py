"""Seeded re-initialisation of a model's weights, cascading from the top (model parameter
randomisation, Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

The cascade is read from the graph's structure (`cascade`), never from names:

1. ``classifier``: the learned layers of the head, between the target feature map and the
   class scores;
2. then the stages above the target, nearest first: the graph is cut at its dominators (the
   values every path from the inputs to the target passes through) into blocks, and
   consecutive blocks that end at the same feature-map size (`[H, W]` of a 4-D map, the
   whole shape otherwise) make one stage (a CNN's 7x7 stage, then its 14x14 stage, ...; a
   ViT's blocks at the token map, then its patch embedding).

A learned layer is an op of kind ``linear`` (convolution, matrix product, with a constant
operand); its weight is that constant operand (input 0 or 1, never a Gemm's bias), and what
is re-initialised is the largest constant of values (floats, or integers of rank 2 or more)
the weight is computed from: the weight itself, or its FP16 / INT8 storage before
decompression (scales and zero points stay; the shapes a weight is broadcast to are no
values). Biases and
normalisation constants keep their values. Each weight gets seeded normal noise with the
original tensor's mean and standard deviation: the same scale, none of the learnt structure
(an integer weight is rounded and clipped to its type). The seed and the constant's place in
the model's order fix the draw, so the same model and seed give the same copy on every run.

    steps = cascade(view, target)                     # [classifier, stage 7x7, ...]
    copy = randomised(backend, model, view, steps[:2], seed=0)   # classifier + first stage

`view` must be a view of `model` itself (its native ops are `model`'s), or of the model
`model` was made from by adding ops (the insertion shares the original weights).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xaigraph.backends import Backend
from xaigraph.errors import XaiGraphError
from xaigraph.graph_view import GraphView, Value
from xaigraph.target import Target

__all__ = ["Step", "cascade", "randomised", "reinitialise", "weight_array"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One step of the cascade: its name, its learned layers (op ids of the view it was
    read from, in model order) and the constants that hold their weights."""

    name: str
    layers: tuple[str, ...]
    weights: tuple[str, ...]

    def describe(self) -> str:
        n = len(self.layers)
        return f"{self.name} ({n} layer{'s' if n != 1 else ''})"


def cascade(view: GraphView, target: Target) -> list[Step]:
    """The cascade's steps, top first: the classifier (when the head has learned layers),
    then the stages above the target, nearest first. Steps without a learned layer are left
    out. Each weight belongs to one step (the first that reaches it)."""
    seen: set[str] = set()
    steps: list[Step] = []

    def add(name: str, op_ids: Sequence[str]) -> None:
        layers = [o for o in op_ids if _learned(view, o)]
        weights = []
        for o in layers:
            for c in _weight_consts(view, o):
                if c not in seen:
                    seen.add(c)
                    weights.append(c)
        if weights:
            steps.append(Step(name, tuple(layers), tuple(weights)))

    add("classifier", [o for o in view.ops_between(target.value, target.scores)
                       if o != target.value.op])
    for name, op_ids in _stages(view, target.value):
        add(name, op_ids)
    return steps


def _learned(view: GraphView, op_id: str) -> bool:
    return view.ops[op_id].kind == "linear"


def _weight_consts(view: GraphView, op_id: str) -> list[str]:
    """The const ops a learned layer's weight is computed from (its constant operands
    among inputs 0 and 1, and what they are computed from)."""
    op = view.ops[op_id]
    found: list[str] = []
    for v in op.inputs[:2]:
        if not view.is_const_derived(v.op):
            continue
        stack = [v.op]
        while stack:
            o = stack.pop()
            if view.ops[o].kind == "const":
                if o not in found and _data(view, o):
                    found.append(o)
                continue
            stack.extend(i.op for i in view.ops[o].inputs)
    return found


def _data(view: GraphView, const: str) -> bool:
    """Whether a constant holds weight values: floats, or integers of rank 2 or more (INT8
    weights); not the shapes and axes a weight may be computed with (a Broadcast's)."""
    t = view.ops[const].outputs[0]
    if t.dtype in ("f32", "f16", "bf16", "f64"):
        return True
    return t.dtype in ("i8", "u8", "i4", "u4") and (t.rank or 0) >= 2


def _stages(view: GraphView, target: Value) -> list[tuple[str, list[str]]]:
    """(name, op ids) of the stages above `target`, nearest first (see the module doc).

    An op that feeds the target lies, in the model's (topological) order, between the two
    dominators of its block: it is placed by its position, in one pass."""
    import networkx as nx

    ends = [target, *view.dominators(target)]  # nearest first
    position = {o: i for i, o in enumerate(view.order)}
    marks = [position[v.op] for v in ends]  # decreasing
    above = set(nx.ancestors(view.graph, target.op)) | {target.op}
    blocks: list[list[str]] = [[] for _ in ends]
    for o in view.order:
        if o not in above:
            continue
        i = 0  # the block of the nearest end at or after `o`
        while i + 1 < len(marks) and marks[i + 1] >= position[o]:
            i += 1
        blocks[i].append(o)
    stages: list[tuple[str, list[str]]] = []
    last_key: tuple[int, ...] | None = None
    for end, ops in zip(ends, blocks, strict=True):
        key = _stage_key(view, end)
        if stages and key == last_key:
            stages[-1][1].extend(ops)
        else:
            stages.append((_stage_name(key), list(ops)))
        last_key = key
    return stages


def _stage_key(view: GraphView, v: Value) -> tuple[int, ...]:
    probe = view.tensor(v).probe
    if probe is None:
        return ()
    return tuple(probe[2:]) if len(probe) == 4 else tuple(probe[1:])


def _stage_name(key: tuple[int, ...]) -> str:
    if not key:
        return "stage ?"
    return "stage " + "x".join(str(d) for d in key)


def reinitialise(array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Seeded normal noise with `array`'s mean and standard deviation, in its type (an
    integer type: rounded and clipped to its range)."""
    values = array.astype(np.float64)
    noise = np.asarray(rng.standard_normal(array.shape)) * float(values.std()) \
        + float(values.mean())
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        noise = np.clip(np.rint(noise), info.min, info.max)
    return np.asarray(noise, dtype=array.dtype)


def randomised(backend: Backend, model: Any, view: GraphView, steps: Sequence[Step],
               seed: int = 0) -> Any:
    """A copy of `model` with the weights of every step in `steps` re-initialised (seeded;
    see the module doc). `model` is left as it was."""
    consts = [c for s in steps for c in s.weights]
    if backend.name == "onnx":
        return _onnx(model, view, consts, seed)
    return _openvino(model, view, consts, seed)


def _largest(arrays: dict[str, np.ndarray], consts: Sequence[str], view: GraphView
             ) -> list[str]:
    """Of each learned layer's weight constants, the largest (the data, not its scales)."""
    del view
    if not consts:
        return []
    biggest = max(arrays[c].size for c in consts)
    return [c for c in consts if arrays[c].size == biggest]


def _per_weight(view: GraphView, consts: Sequence[str]) -> list[list[str]]:
    """`consts` grouped by the weight they make (consts computed into one weight together)."""
    groups: list[list[str]] = []
    for c in consts:
        for g in groups:
            if _same_weight(view, g[0], c):
                g.append(c)
                break
        else:
            groups.append([c])
    return groups


def _same_weight(view: GraphView, a: str, b: str) -> bool:
    """Whether constants `a` and `b` flow into one learned layer's weight together."""
    return bool(_weight_users(view, a) & _weight_users(view, b))


def _weight_users(view: GraphView, const: str) -> set[str]:
    out: set[str] = set()
    stack = [const]
    while stack:
        o = stack.pop()
        for succ in view.graph.successors(o):
            if view.is_const_derived(succ):
                stack.append(succ)
            elif _learned(view, succ):
                out.add(succ)
    return out


def _choose(view: GraphView, consts: Sequence[str], arrays: dict[str, np.ndarray]
            ) -> list[str]:
    chosen: list[str] = []
    for group in _per_weight(view, consts):
        chosen.extend(_largest(arrays, group, view))
    return chosen


def weight_array(backend: Backend, view: GraphView, const: str) -> np.ndarray | None:
    """The value of the const op `const` of `view` (None when it is not stored in the
    model, as an ONNX outer-scope value)."""
    native = view.native.get(const)
    if native is None:
        return None
    if backend.name == "onnx":
        from onnx import numpy_helper

        if hasattr(native, "attribute"):  # a Constant node
            attr = next((a for a in native.attribute if a.name == "value"), None)
            return None if attr is None else numpy_helper.to_array(attr.t)
        return numpy_helper.to_array(native)
    return np.asarray(native.get_data())


def _onnx(model: Any, view: GraphView, consts: Sequence[str], seed: int) -> Any:
    import onnx
    from onnx import numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    by_name: dict[str, Any] = {t.name: t for t in copy.graph.initializer}
    for node in copy.graph.node:
        if node.op_type == "Constant" and node.output:
            attr = next((a for a in node.attribute if a.name == "value"), None)
            if attr is not None:
                by_name[node.output[0]] = attr.t
    tensors: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for c in consts:
        name = view.ops[c].outputs[0].names[0]
        if name not in by_name:
            raise XaiGraphError(f"weight '{name}' is not a constant of the model")
        tensors[c] = by_name[name]
        arrays[c] = numpy_helper.to_array(tensors[c])
    rng = np.random.default_rng(seed)
    for c in _choose(view, consts, arrays):
        tensors[c].CopyFrom(numpy_helper.from_array(reinitialise(arrays[c], rng),
                                                    tensors[c].name))
    return copy


def _openvino(model: Any, view: GraphView, consts: Sequence[str], seed: int) -> Any:
    import openvino as ov

    index = {n.get_instance_id(): i for i, n in enumerate(model.get_ordered_ops())}
    copy = model.clone()
    copied = copy.get_ordered_ops()
    nodes: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for c in consts:
        i = index.get(view.native[c].get_instance_id())
        if i is None or copied[i].get_type_name() != "Constant":
            raise XaiGraphError(f"weight '{view.ops[c].name}' is not a constant of the model")
        nodes[c] = copied[i]
        arrays[c] = np.array(nodes[c].get_data(), copy=True)
    rng = np.random.default_rng(seed)
    for c in _choose(view, consts, arrays):
        old = nodes[c]
        new = ov.op.Constant(reinitialise(arrays[c], rng).astype(arrays[c].dtype))
        new.set_friendly_name(old.get_friendly_name())
        old.output(0).replace(new.output(0))
    copy.validate_nodes_and_infer_types()
    return copy

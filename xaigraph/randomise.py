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
    for step, copy in cascade_models(backend, model, view, target):   # MPRT, step by step
        ...

`view` must be a view of `model` itself (its native ops are `model`'s), or of the model
`model` was made from by adding ops (the insertion shares the original weights).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xaigraph.backends import Backend
from xaigraph.errors import XaiGraphError
from xaigraph.graph_view import GraphView, Value
from xaigraph.target import Target

__all__ = ["CUT_INPUT", "Step", "cascade", "cascade_models", "randomised", "reinitialise", "tap",
           "weight_array"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One step of the cascade: its name, its learned layers (op ids of the view it was
    read from, in model order), the constants that hold their weights, and `start`: a value
    every path from the inputs to those layers passes through (so a model re-initialised
    down to this step computes what the original does up to `start`; None for the stage
    that starts at the inputs)."""

    name: str
    layers: tuple[str, ...]
    weights: tuple[str, ...]
    start: Value | None = None

    def describe(self) -> str:
        n = len(self.layers)
        return f"{self.name} ({n} layer{'s' if n != 1 else ''})"


def cascade(view: GraphView, target: Target, stages: bool = True) -> list[Step]:
    """The cascade's steps, top first: the classifier (when the head has learned layers),
    then (with `stages`) the stages above the target, nearest first. Steps without a
    learned layer are left out. Each weight belongs to one step (the first that reaches
    it)."""
    seen: set[str] = set()
    steps: list[Step] = []

    def add(name: str, op_ids: Sequence[str], start: Value | None) -> None:
        layers = [o for o in op_ids if _learned(view, o)]
        weights = []
        for o in layers:
            for c in _weight_consts(view, o):
                if c not in seen:
                    seen.add(c)
                    weights.append(c)
        if weights:
            steps.append(Step(name, tuple(layers), tuple(weights), start))

    add("classifier", [o for o in view.ops_between(target.value, target.scores)
                       if o != target.value.op], target.value)
    for name, op_ids, start in _stages(view, target.value) if stages else []:
        add(name, op_ids, start)
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


def _stages(view: GraphView, target: Value
            ) -> list[tuple[str, list[str], Value | None]]:
    """(name, op ids, start) of the stages above `target`, nearest first (see the module
    doc); `start` is the end of the stage below (None for the first stage).

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
    stages: list[tuple[str, list[str], int]] = []  # the index of the end after the stage
    last_key: tuple[int, ...] | None = None
    for i, (end, ops) in enumerate(zip(ends, blocks, strict=True)):
        key = _stage_key(view, end)
        if stages and key == last_key:
            stages[-1][1].extend(ops)
            stages[-1] = (stages[-1][0], stages[-1][1], i + 1)
        else:
            stages.append((_stage_name(key), list(ops), i + 1))
        last_key = key
    return [(name, ops, ends[after] if after < len(ends) else None)
            for name, ops, after in stages]


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
    noise = np.asarray(rng.standard_normal(array.shape, dtype=np.float32)) \
        * np.float32(values.std()) + np.float32(values.mean())
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        noise = np.clip(np.rint(noise), info.min, info.max)
    return np.asarray(noise, dtype=array.dtype)


def randomised(backend: Backend, model: Any, view: GraphView, steps: Sequence[Step],
               seed: int = 0, *, start: Value | None = None, output: str | None = None) -> Any:
    """A copy of `model` with the weights of every step in `steps` re-initialised (seeded;
    see the module doc). `model` is left as it was. With `start` and `output`: only the
    part of that copy that computes `output` from `start`, for steps whose weights all lie
    past `start` (a step's own `start`): what the original computes up to `start` need not
    run twice. Its inputs: `start` (named `CUT_INPUT` for OpenVINO, the tensor's own name
    for ONNX), then the model inputs that part still reads (as a shape)."""
    consts = [c for s in steps for c in s.weights]
    if backend.name == "onnx":
        copy = _onnx(model, view, consts, seed)
        if start is None or output is None:
            return copy
        t = view.tensor(start)
        return _onnx_cut(copy, _typed(t.names[0], _ONNX_TYPES[t.dtype], t.rank), output)
    copy, twins = _ov_twins(model, [view.native[c] for c in consts]
                            + ([view.native[start.op]] if start is not None else []))
    _ov_replace(view, consts, twins[:len(consts)], seed)
    copy.validate_nodes_and_infer_types()
    if start is None or output is None:
        return copy
    return _ov_cut(copy, twins[-1].output(start.port), output)


def cascade_models(backend: Backend, model: Any, view: GraphView, target: Target,
                   seed: int = 0) -> Iterator[tuple[Step, Any]]:
    """Each step of the cascade and a copy of `model` re-initialised from the top down to
    it (cascading MPRT; one copy at a time). A weight gets the same draw in every copy."""
    steps = cascade(view, target)
    for k, step in enumerate(steps):
        yield step, randomised(backend, model, view, steps[:k + 1], seed)


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


def _ov_replace(view: GraphView, consts: Sequence[str], nodes: Sequence[Any], seed: int
                ) -> None:
    """Re-initialise the Constant `nodes` (the twins of `consts` in a clone), in place."""
    import openvino as ov

    arrays: dict[str, np.ndarray] = {}
    by_const: dict[str, Any] = {}
    for c, node in zip(consts, nodes, strict=True):
        if node.get_type_name() != "Constant":
            raise XaiGraphError(f"weight '{view.ops[c].name}' is not a constant of the model")
        by_const[c] = node
        arrays[c] = np.array(node.get_data(), copy=True)
    rng = np.random.default_rng(seed)
    for c in _choose(view, consts, arrays):
        old = by_const[c]
        new = ov.op.Constant(reinitialise(arrays[c], rng))
        new.set_friendly_name(old.get_friendly_name())
        old.output(0).replace(new.output(0))


def tap(backend: Backend, model: Any, view: GraphView, value: Value) -> Any:
    """A copy of `model` with `value` (of `view`, see the module doc) as its last output."""
    if backend.name == "onnx":
        import onnx

        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        t = view.tensor(value)
        copy.graph.output.append(_typed(t.names[0], _ONNX_TYPES[t.dtype]))
        return copy
    copy, nodes = _ov_twins(model, [view.native[value.op]])
    copy.add_outputs([nodes[0].output(value.port)])
    return copy


CUT_INPUT = "xaigraph_cut"  # the OpenVINO cut model's first input
_ONNX_TYPES = {"f32": 1, "f16": 10, "f64": 11, "bf16": 16}  # onnx.TensorProto's numbers


def _ov_cut(copy: Any, port: Any, output: str) -> Any:
    """The part of the OpenVINO model `copy` that computes `output` from `port`."""
    import openvino as ov

    param = ov.op.Parameter(port.get_element_type(), port.get_partial_shape())
    param.set_friendly_name(CUT_INPUT)
    param.output(0).set_names({CUT_INPUT})
    for target in list(port.get_target_inputs()):
        target.replace_source_output(param.output(0))
    result = next((r for r in copy.get_results()
                   if output in r.input_value(0).get_names()), None)
    if result is None:
        raise XaiGraphError(f"the model has no output '{output}'")
    used = {n.get_instance_id() for n in _ov_reached(result)}
    params = [param] + [p for p in copy.get_parameters() if p.get_instance_id() in used]
    return ov.Model([result], params)


def _ov_twins(model: Any, nodes: Sequence[Any]) -> tuple[Any, list[Any]]:
    """A clone of `model` and its twins of `nodes` (nodes of `model`)."""
    index = {n.get_instance_id(): i for i, n in enumerate(model.get_ordered_ops())}
    copy = model.clone()
    copied = copy.get_ordered_ops()
    twins = []
    for n in nodes:
        i = index.get(n.get_instance_id())
        if i is None:
            raise XaiGraphError(f"'{n.get_friendly_name()}' is not an op of the model")
        twins.append(copied[i])
    return copy, twins


def _ov_reached(result: Any) -> list[Any]:
    seen: dict[int, Any] = {}
    stack = [result]
    while stack:
        n = stack.pop()
        if n.get_instance_id() in seen:
            continue
        seen[n.get_instance_id()] = n
        stack.extend(i.get_source_output().get_node() for i in n.inputs())
    return list(seen.values())


def _typed(name: str, elem_type: int, rank: int | None = None) -> Any:
    """An ONNX value info of `name` with an element type, and `rank` dims of unknown size
    (no shape when None)."""
    import onnx
    from onnx import helper

    if rank is not None:
        return helper.make_tensor_value_info(name, elem_type, [f"d{i}" for i in range(rank)])
    info = onnx.ValueInfoProto()
    info.name = name
    info.type.tensor_type.elem_type = elem_type
    return info


def _onnx_cut(model: Any, first: Any, output: str) -> Any:
    """The part of the ONNX `model` that computes `output` from the tensor `first` (a value
    info) names."""
    from onnx import helper

    producer = {o: n for n in model.graph.node for o in n.output if o}
    inits = {t.name: t for t in model.graph.initializer}
    inputs = {vi.name: vi for vi in model.graph.input}
    if output not in producer:
        raise XaiGraphError(f"the model has no output '{output}'")
    keep: list[Any] = []
    seen: set[str] = set()
    reads: set[str] = set()
    stack = [output]
    while stack:
        name = stack.pop()
        if name in seen or name == first.name:
            continue
        seen.add(name)
        if name in producer:
            node = producer[name]
            if all(node is not k for k in keep):
                keep.append(node)
            stack.extend(i for i in node.input if i)
        else:
            reads.add(name)
    order = {id(n): i for i, n in enumerate(model.graph.node)}
    keep.sort(key=lambda n: order[id(n)])
    graph_inputs = [first]
    graph_inputs += [vi for name, vi in inputs.items() if name in reads and name not in inits]
    out_vi = next(o for o in model.graph.output if o.name == output)
    graph = helper.make_graph(keep, "cut", graph_inputs, [out_vi],
                              [inits[n] for n in inits if n in reads])
    cut_model = helper.make_model(graph, opset_imports=model.opset_import)
    cut_model.ir_version = model.ir_version
    return cut_model

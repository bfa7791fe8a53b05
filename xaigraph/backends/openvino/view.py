"""Build a `GraphView` from an `ov.Model`."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import networkx as nx
import numpy as np
import openvino as ov
from openvino.passes import ConstantFolding, Manager

from xaigraph.graph_view import (
    Dim,
    GraphView,
    OpInfo,
    TensorInfo,
    Value,
    attention_kind,
    mark_attention_queries,
    matrix_layout,
    norm_axes,
)

__all__ = ["build_view", "probe_input_shapes"]

log = logging.getLogger(__name__)

DEFAULT_SPATIAL = 224

_SCORE = {"Softmax", "LogSoftmax", "Sigmoid"}
# Ops that act on each spatial location on its own (given the checks in `_pointwise`).
_UNARY = {
    "Relu", "Sigmoid", "Swish", "HSwish", "HSigmoid", "Clamp", "Exp", "Tanh", "Gelu", "Mish",
    "SoftPlus", "Elu", "Abs", "Negative", "Sqrt", "Erf", "Convert", "Log", "Floor", "Ceiling",
    "Sign", "SoftSign", "Selu", "BatchNormInference",
}
_BINARY = {
    "Add", "Multiply", "Subtract", "Divide", "Maximum", "Minimum", "Power", "SquaredDifference",
    "PRelu",
}
_SHAPE = {"Reshape", "Squeeze", "Unsqueeze", "Convert"}
_TAG = "xaigraph_probe_index"
# How an op is affine in its data: "always" (shape moves, per-channel affine maps), "single"
# (when only one operand carries data: linear layers, sums, products), "numerator" (x / c).
_AFFINE = {
    **dict.fromkeys(["Reshape", "Squeeze", "Unsqueeze", "Transpose", "Convert",
                     "BatchNormInference"], "always"),
    **dict.fromkeys(["MatMul", "Convolution", "GroupConvolution", "Add", "Subtract",
                     "Multiply"], "single"),
    "Divide": "numerator",
}
_LINEAR = {"Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData"}


def _dims(ps: ov.PartialShape) -> tuple[Dim, ...] | None:
    if ps.rank.is_dynamic:
        return None
    return tuple(d.get_length() if d.is_static else None for d in ps)


def _input_channels(param: ov.Node) -> int | None:
    """Channels expected by the first convolution fed (through cheap ops) by `param`."""
    queue: deque[tuple[Any, int]] = deque([(param, 0)])
    seen = set()
    while queue:
        node, depth = queue.popleft()
        for out in node.outputs():
            for target in out.get_target_inputs():
                consumer = target.get_node()
                if id(consumer) in seen:
                    continue
                seen.add(id(consumer))
                kind = consumer.get_type_name()
                if kind in ("Convolution", "GroupConvolution") and target.get_index() == 0:
                    w = consumer.input_value(1).get_partial_shape()
                    if w.rank.is_static and w[1].is_static:
                        if kind == "Convolution":
                            return int(w[1].get_length())
                        if w[0].is_static and w[2].is_static:
                            return int(w[0].get_length() * w[2].get_length())
                elif depth < 6:
                    queue.append((consumer, depth + 1))
    return None


def probe_input_shapes(model: ov.Model, spatial: int = DEFAULT_SPATIAL) -> list[tuple[int, ...]]:
    """Concrete input shapes: static dims kept, batch 1, spatial `spatial`, channels guessed."""
    shapes: list[tuple[int, ...]] = []
    for param in model.get_parameters():
        ps = param.get_partial_shape()
        if ps.rank.is_dynamic:
            shapes.append((1, _input_channels(param) or 3, spatial, spatial))
            continue
        rank = ps.rank.get_length()
        dims = []
        for i, d in enumerate(ps):
            if d.is_static:
                dims.append(int(d.get_length()))
                continue
            lo = d.get_min_length()
            hi = d.get_max_length()
            if rank == 4 and i == 1:
                want = _input_channels(param) or 3
            elif rank >= 3 and i >= rank - 2:
                want = spatial
            else:
                want = 1
            want = max(want, lo)
            if hi >= 0:
                want = min(want, hi)
            dims.append(want)
        shapes.append(tuple(dims))
    return shapes


Probe = tuple[tuple[int, ...] | None, np.ndarray | None]


def _probe(model: ov.Model, shapes: list[tuple[int, ...]]) -> list[list[Probe]]:
    """For every op output (in `get_ordered_ops` order): its shape at the given input shapes,
    and its value when that is a small constant there (folded shape computations included).

    The probe runs on a clone: reshaped, then constant-folded. Reshaping may rebuild folded
    shape subgraphs and folding replaces ops by constants, so clone nodes are tagged with
    their original position first and matched back by tag afterwards.
    """
    ops = model.get_ordered_ops()
    unknown: list[list[Probe]] = [[(None, None)] * n.get_output_size() for n in ops]
    clone = model.clone()
    cloned = clone.get_ordered_ops()
    if len(cloned) != len(ops) or any(
        a.get_type_name() != b.get_type_name() for a, b in zip(ops, cloned, strict=True)
    ):
        log.info("the cloned model orders ops differently; shapes stay symbolic")
        return unknown
    for i, node in enumerate(cloned):
        node.get_rt_info()[_TAG] = i
    declared = [p.get_partial_shape() for p in model.get_parameters()]
    pairs = zip(declared, shapes, strict=True)
    try:
        if not all(ps.is_static and tuple(ps.to_shape()) == s for ps, s in pairs):
            clone.reshape({i: ov.PartialShape(list(s)) for i, s in enumerate(shapes)})
        manager = Manager()
        manager.register_pass(ConstantFolding())
        manager.run_passes(clone)
    except Exception as exc:
        log.info("cannot propagate shapes at input %s (%s); shapes stay symbolic",
                    shapes, str(exc).strip().splitlines()[-1:])
        return unknown
    twins: dict[int, Any] = {}
    for node in clone.get_ordered_ops():
        info = node.get_rt_info()
        if _TAG not in info:
            continue
        i = int(info[_TAG].astype(int))
        kind = node.get_type_name()
        if kind == ops[i].get_type_name() or (kind == "Constant" and i not in twins):
            twins[i] = node
    out = []
    for i, node in enumerate(ops):
        twin = twins.get(i)
        if twin is None:
            out.append(unknown[i])
            continue
        row: list[Probe] = []
        for port in range(node.get_output_size()):
            ps = twin.get_output_partial_shape(min(port, twin.get_output_size() - 1))
            shape = tuple(int(x) for x in ps.to_shape()) if ps.is_static else None
            value = None
            if twin.get_type_name() == "Constant" and shape is not None and _size(shape) <= 64:
                value = _const_array(twin)
            row.append((shape, value))
        out.append(row)
    return out


def _size(shape: tuple[Dim, ...]) -> int:
    n = 1
    for d in shape:
        n *= d if d is not None else 1 << 30
    return n


def _const_array(node: ov.Node) -> np.ndarray | None:
    if node.get_type_name() != "Constant":
        return None
    try:
        return np.asarray(node.get_data())
    except Exception:
        return None


def _pointwise(node: ov.Node, t: str, ins: list[TensorInfo]) -> str | None:
    """How `node` can act per spatial location on a 4-D input 0: 'unary' (elementwise on
    input 0, other inputs are parameters), 'binary' (elementwise with broadcasting; operands
    that do not carry the data must not vary over space), or None."""
    if t in _UNARY:
        return "unary"
    if t in _BINARY:
        return "binary"
    if t in ("Convolution", "GroupConvolution") and len(ins) == 2:
        attrs = node.get_attributes()
        w = ins[1].probe or ins[1].shape
        pads = list(attrs.get("pads_begin", [])) + list(attrs.get("pads_end", []))
        if (
            w is not None
            and tuple(w[-2:]) == (1, 1)
            and list(attrs.get("strides", [])) == [1, 1]
            and not any(pads)
            and attrs.get("auto_pad", "explicit") in ("explicit", "notset", "valid")
        ):
            return "unary"
    if t in ("Softmax", "LogSoftmax") and ins and ins[0].rank == 4:
        axis = int(node.get_attributes().get("axis", -1))
        if axis % 4 == 1:
            return "unary"
    return None


def _classify(node: ov.Node, info: OpInfo, view_inputs: list[TensorInfo],
              const_inputs: list[bool]) -> str:
    t = info.type
    if t == "Parameter":
        return "input"
    if t == "Constant":
        return "const"
    if t == "Result":
        return "output"
    if t == "ShapeOf":
        return "shapeof"
    if t in _SCORE:
        return "score"
    if t in _SHAPE:
        return "shape"
    if t in _LINEAR and len(const_inputs) >= 2 and (const_inputs[1] or const_inputs[0]):
        return "linear"
    data = view_inputs[0] if view_inputs else None
    in_probe = data.probe if data is not None else None
    if t == "ReduceMean" and data is not None and data.rank == 4:
        axes = view_inputs[1].probe_value if len(view_inputs) > 1 else None
        if axes is not None:
            norm = {int(a) % 4 for a in np.atleast_1d(axes)}
            if norm == {2, 3}:
                return "gap"
    if t == "AvgPool" and in_probe is not None and len(in_probe) == 4:
        attrs = node.get_attributes()
        kernel = list(attrs.get("kernel", []))
        pads = list(attrs.get("pads_begin", [])) + list(attrs.get("pads_end", []))
        if kernel == list(in_probe[2:]) and not any(pads):
            return "gap"
    if t == "AdaptiveAvgPool":
        size = view_inputs[1].probe_value if len(view_inputs) > 1 else None
        if size is not None and [int(s) for s in np.atleast_1d(size)] == [1, 1]:
            return "gap"
    return "other"


def build_view(model: ov.Model, spatial: int = DEFAULT_SPATIAL) -> GraphView:
    ops = model.get_ordered_ops()
    probe_inputs = probe_input_shapes(model, spatial)
    probes = _probe(model, probe_inputs)

    # Op ids are friendly names, made unique; nodes are matched by their instance id.
    by_ptr: dict[int, str] = {}
    native: dict[str, Any] = {}
    for node in ops:
        base = node.get_friendly_name() or node.get_type_name()
        oid, k = base, 1
        while oid in native:
            k += 1
            oid = f"{base}#{k}"
        by_ptr[node.get_instance_id()] = oid
        native[oid] = node

    view_ops: dict[str, OpInfo] = {}
    order: list[str] = []
    graph = nx.DiGraph()
    const_derived: dict[str, bool] = {}
    for idx, node in enumerate(ops):
        oid = by_ptr[node.get_instance_id()]
        inputs = []
        for inp in node.inputs():
            src = inp.get_source_output()
            inputs.append(Value(by_ptr[src.get_node().get_instance_id()], src.get_index()))
        outputs = []
        for i in range(node.get_output_size()):
            out = node.output(i)
            outputs.append(
                TensorInfo(
                    shape=_dims(out.get_partial_shape()),
                    probe=probes[idx][i][0],
                    probe_value=probes[idx][i][1],
                    dtype=out.get_element_type().get_type_name(),
                    names=tuple(sorted(out.get_names())),
                )
            )
        t = node.get_type_name()
        if t == "Parameter":
            const_derived[oid] = False
        elif t == "Constant":
            const_derived[oid] = True
        else:
            const_derived[oid] = all(const_derived[v.op] for v in inputs)
        info = OpInfo(id=oid, name=node.get_friendly_name(), type=t, kind="other",
                      inputs=inputs, outputs=outputs)
        if t == "Constant" and outputs[0].shape is not None and _size(outputs[0].shape) <= 64:
            value = _const_array(node)
            if value is not None:
                info.attrs["value"] = value
        in_tensors = [view_ops[v.op].outputs[v.port] for v in inputs]
        info.kind = _classify(node, info, in_tensors, [const_derived[v.op] for v in inputs])
        pointwise = _pointwise(node, t, in_tensors)
        if pointwise is not None:
            info.attrs["pointwise"] = pointwise
        if t in _AFFINE:
            info.attrs["affine"] = _AFFINE[t]
        attention = attention_kind(t, in_tensors[0] if in_tensors else None)
        if attention is not None:
            info.attrs["attention"] = attention
        if (t.startswith("Reduce") or t == "MVN") and len(in_tensors) > 1:
            axes = norm_axes(in_tensors[1].probe_value, in_tensors[0].rank)
            if axes is not None:
                info.attrs["axes"] = axes
        if t == "MatMul":
            attrs = node.get_attributes()
            if attrs.get("transpose_a"):
                info.attrs["transpose_a"] = True
            layout = matrix_layout(in_tensors[1], [const_derived[v.op] for v in inputs],
                                   bool(attrs.get("transpose_a")),
                                   bool(attrs.get("transpose_b")))
            if layout is not None:
                info.attrs["matrix"] = layout
        view_ops[oid] = info
        order.append(oid)
        graph.add_node(oid)
        for dst_port, v in enumerate(inputs):
            if graph.has_edge(v.op, oid):
                graph.edges[v.op, oid]["ports"].append((v.port, dst_port))
            else:
                graph.add_edge(v.op, oid, ports=[(v.port, dst_port)])

    params = [by_ptr[p.get_instance_id()] for p in model.get_parameters()]
    results = [by_ptr[r.get_instance_id()] for r in model.get_results()]
    view = GraphView(ops=view_ops, order=order, inputs=params, results=results, graph=graph,
                     native=native, probe_inputs=probe_inputs)
    view._const_derived = const_derived
    mark_attention_queries(view)
    return view

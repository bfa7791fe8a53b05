"""Build a `GraphView` from an ONNX model.

Op ids are node names (made unique; generated for unnamed nodes), graph input names, and
initializer names; each graph output becomes an op of kind ``output``. Declared shapes come
from ONNX shape inference on the model as it is (symbolic dims become None). Probe shapes
(inputs fixed to the probe sizes) come from OpenVINO's shape inference where it can read the
model, tensor names being shared, else from ONNX shape inference.
"""

from __future__ import annotations

import logging
from typing import Any

import networkx as nx
import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

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

__all__ = ["DTYPES", "build_view", "opset_version", "probe_input_shapes", "real_inputs"]

log = logging.getLogger(__name__)

DEFAULT_SPATIAL = 224

DTYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "f32",
    onnx.TensorProto.FLOAT16: "f16",
    onnx.TensorProto.DOUBLE: "f64",
    onnx.TensorProto.BFLOAT16: "bf16",
    onnx.TensorProto.INT64: "i64",
    onnx.TensorProto.INT32: "i32",
    onnx.TensorProto.INT8: "i8",
    onnx.TensorProto.UINT8: "u8",
    onnx.TensorProto.BOOL: "boolean",
}

_SCORE = {"Softmax", "LogSoftmax", "Sigmoid"}
_SHAPE = {"Reshape", "Squeeze", "Unsqueeze", "Cast", "Flatten", "Identity", "Dropout"}
_LINEAR = {"Conv", "ConvTranspose", "MatMul", "Gemm"}
_UNARY = {
    "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Abs", "Neg", "Sqrt", "Erf", "Clip", "LeakyRelu",
    "Elu", "Selu", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Gelu", "Mish", "Cast",
    "Identity", "Floor", "Ceil", "Sign", "BatchNormalization", "Dropout",
}
_BINARY = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "PRelu"}
# How an op is affine in its data (see ov_view._AFFINE).
_AFFINE = {
    **dict.fromkeys(["Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose", "Identity",
                     "Dropout", "Cast", "BatchNormalization"], "always"),
    **dict.fromkeys(["MatMul", "Gemm", "Conv", "Add", "Sub", "Mul"], "single"),
    "Div": "numerator",
}


def opset_version(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def _dims(vi: onnx.ValueInfoProto | None) -> tuple[tuple[Dim, ...] | None, str]:
    if vi is None or not vi.type.HasField("tensor_type"):
        return None, "?"
    tt = vi.type.tensor_type
    dtype = DTYPES.get(tt.elem_type, f"onnx{tt.elem_type}")
    if not tt.HasField("shape"):
        return None, dtype
    dims: list[Dim] = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    return tuple(dims), dtype


def real_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """The graph inputs that are not initializers (before IR 4 initializers are inputs too)."""
    inits = {i.name for i in graph.initializer}
    return [i for i in graph.input if i.name not in inits]


def _input_channels(graph: onnx.GraphProto, name: str) -> int | None:
    """Channels of the first Conv fed (through at most a few ops) by input `name`."""
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    frontier, seen = {name}, set()
    for _ in range(6):
        nxt = set()
        for node in graph.node:
            if not frontier & set(node.input) or id(node) in seen:
                continue
            seen.add(id(node))
            if node.op_type == "Conv" and node.input[0] in frontier and len(node.input) > 1:
                w = shapes.get(node.input[1])
                if w is not None and len(w) == 4:
                    group = next((a.i for a in node.attribute if a.name == "group"), 1)
                    return int(w[1] * group)
            nxt.update(node.output)
        frontier = nxt
    return None


def probe_input_shapes(model: onnx.ModelProto, spatial: int = DEFAULT_SPATIAL
                       ) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    for vi in real_inputs(model.graph):
        dims, _ = _dims(vi)
        if dims is None:
            shapes.append((1, _input_channels(model.graph, vi.name) or 3, spatial, spatial))
            continue
        rank = len(dims)
        out = []
        for i, d in enumerate(dims):
            if d is not None and d > 0:
                out.append(d)
            elif rank == 4 and i == 1:
                out.append(_input_channels(model.graph, vi.name) or 3)
            elif rank >= 3 and i >= rank - 2:
                out.append(spatial)
            else:
                out.append(1)
        shapes.append(tuple(out))
    return shapes


def _infer(model: onnx.ModelProto, inputs: list[tuple[int, ...]] | None
           ) -> dict[str, onnx.ValueInfoProto]:
    """name -> value info after shape inference (inputs fixed to `inputs` when given)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.value_info[:]
    if inputs is not None:
        for vi, shape in zip(real_inputs(m.graph), inputs, strict=True):
            dims = vi.type.tensor_type.shape.dim
            del dims[:]
            for d in shape:
                dims.add().dim_value = d
    try:
        inferred = shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    except Exception as exc:  # inference is best effort: unknown shapes stay unknown
        log.info("ONNX shape inference failed: %s", exc)
        inferred = m
    g = inferred.graph
    out = {vi.name: vi for vi in list(g.value_info) + list(g.input) + list(g.output)}
    for init in g.initializer:
        out.setdefault(init.name, onnx.helper.make_tensor_value_info(
            init.name, init.data_type, list(init.dims)))
    return out


def _ov_probe(model: onnx.ModelProto, inputs: list[tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> static shape at the probe input sizes, from OpenVINO's shape inference,
    which folds shape computations that ONNX shape inference gives up on (padding amounts
    computed by Concat/Slice chains, say). Empty when OpenVINO cannot read the model."""
    from xaigraph.model_io import ov_from_onnx

    if model.ByteSize() > 1_900_000_000:
        return {}
    try:
        ov_model = ov_from_onnx(model)
        ov_model.reshape({i: list(s) for i, s in enumerate(inputs)})
    except Exception as exc:
        log.info("OpenVINO cannot probe the ONNX model's shapes: %s", exc)
        return {}
    shapes: dict[str, tuple[int, ...]] = {}
    for node in ov_model.get_ordered_ops():
        for out in node.outputs():
            ps = out.get_partial_shape()
            if ps.is_static:
                for name in out.get_names():
                    shapes[name] = tuple(int(d) for d in ps.to_shape())
    return shapes


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _classify(node: onnx.NodeProto, ins: list[TensorInfo], const_in: list[bool],
              consts: dict[str, np.ndarray], opset: int) -> tuple[str, str | None]:
    t = node.op_type
    kind = "other"
    if t in _SCORE:
        kind = "score"
    elif t in _SHAPE:
        kind = "shape"
    elif t == "Shape":
        kind = "shapeof"
    elif t in _LINEAR and len(const_in) >= 2 and (const_in[1] or const_in[0]):
        kind = "linear"
    elif t == "GlobalAveragePool" and ins and ins[0].rank == 4:
        kind = "gap"
    elif t == "ReduceMean" and ins and ins[0].rank == 4:
        axes = _attr(node, "axes")
        if axes is None and len(node.input) > 1:
            axes = consts.get(node.input[1])
        if axes is not None and {int(a) % 4 for a in np.atleast_1d(axes)} == {2, 3}:
            kind = "gap"
    elif t == "AveragePool" and ins and ins[0].probe is not None and len(ins[0].probe) == 4:
        kernel = list(_attr(node, "kernel_shape", []))
        pads = list(_attr(node, "pads", []))
        auto = _attr(node, "auto_pad", b"NOTSET")
        if kernel == list(ins[0].probe[2:]) and not any(pads) and auto in (b"NOTSET", b"VALID"):
            kind = "gap"

    pointwise = None
    if t in _UNARY:
        pointwise = "unary"
    elif t in _BINARY:
        pointwise = "binary"
    elif t == "Conv" and len(ins) >= 2:
        w = ins[1].probe or ins[1].shape
        strides = list(_attr(node, "strides", [1, 1]))
        pads = list(_attr(node, "pads", []))
        auto = _attr(node, "auto_pad", b"NOTSET")
        if (w is not None and tuple(w[-2:]) == (1, 1) and strides == [1, 1]
                and not any(pads) and auto in (b"NOTSET", b"VALID")):
            pointwise = "unary"
    elif (t in ("Softmax", "LogSoftmax") and opset >= 13 and ins and ins[0].rank == 4
          and int(_attr(node, "axis", -1)) % 4 == 1):
        pointwise = "unary"
    return kind, pointwise


def _axes(node: onnx.NodeProto, ins: list[TensorInfo], consts: dict[str, np.ndarray]
          ) -> tuple[int, ...] | None:
    """`attrs["axes"]` of a reduction or normalisation (see graph_view)."""
    t = node.op_type
    rank = ins[0].rank if ins else None
    if rank is None:
        return None
    if t == "LayerNormalization":
        return tuple(range(int(_attr(node, "axis", -1)) % rank, rank))
    if t == "MeanVarianceNormalization":
        return norm_axes(_attr(node, "axes", [0, 2, 3]), rank)
    if not t.startswith("Reduce"):
        return None
    axes = _attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = consts.get(node.input[1])
        if axes is None and len(ins) > 1:
            axes = ins[1].probe_value
    if axes is None:
        return None if len(node.input) > 1 else tuple(range(rank))
    return norm_axes(axes, rank)


def _matrix(node: onnx.NodeProto, ins: list[TensorInfo], const_in: list[bool]) -> str | None:
    if node.op_type == "MatMul" and len(ins) == 2:
        return matrix_layout(ins[1], const_in, False, False)
    if node.op_type != "Gemm" or len(ins) < 2:
        return None
    if float(_attr(node, "alpha", 1.0)) != 1.0 or float(_attr(node, "beta", 1.0)) != 1.0:
        return None
    return matrix_layout(ins[1], const_in, bool(_attr(node, "transA", 0)),
                         bool(_attr(node, "transB", 0)))


def build_view(model: onnx.ModelProto, spatial: int = DEFAULT_SPATIAL) -> GraphView:
    graph = model.graph
    opset = opset_version(model)
    probe_inputs = probe_input_shapes(model, spatial)
    declared = _infer(model, None)
    probed = _infer(model, probe_inputs)
    ov_probed = _ov_probe(model, probe_inputs)

    ops: dict[str, OpInfo] = {}
    native: dict[str, Any] = {}
    order: list[str] = []
    producer: dict[str, Value] = {}
    consts: dict[str, np.ndarray] = {}
    const_derived: dict[str, bool] = {}
    graph_nx = nx.DiGraph()

    def new_id(base: str) -> str:
        oid, k = base, 1
        while oid in ops:
            k += 1
            oid = f"{base}#{k}"
        return oid

    def tensor(name: str) -> TensorInfo:
        shape, dtype = _dims(declared.get(name))
        probe, pdtype = _dims(probed.get(name))
        if name in ov_probed:
            probe = ov_probed[name]
        probe_ok = probe is not None and all(d is not None for d in probe)
        value = consts.get(name)
        small = value if value is not None and value.size <= 64 else None
        return TensorInfo(
            shape=shape,
            probe=tuple(int(d or 0) for d in probe) if probe_ok and probe is not None else None,
            dtype=dtype if dtype != "?" else pdtype,
            names=(name,),
            probe_value=small,
        )

    def add(info: OpInfo, obj: Any) -> None:
        ops[info.id] = info
        native[info.id] = obj
        order.append(info.id)
        graph_nx.add_node(info.id)
        for dst, v in enumerate(info.inputs):
            if graph_nx.has_edge(v.op, info.id):
                graph_nx.edges[v.op, info.id]["ports"].append((v.port, dst))
            else:
                graph_nx.add_edge(v.op, info.id, ports=[(v.port, dst)])

    inputs = []
    for vi in real_inputs(graph):
        oid = new_id(vi.name)
        add(OpInfo(oid, vi.name, "Parameter", "input", [], [tensor(vi.name)]), vi)
        producer[vi.name] = Value(oid, 0)
        const_derived[oid] = False
        inputs.append(oid)
    for init in graph.initializer:
        if init.name in producer:
            continue
        if _numel(init.dims) <= 64 and init.data_location != onnx.TensorProto.EXTERNAL:
            consts[init.name] = numpy_helper.to_array(init)
        oid = new_id(init.name)
        info = OpInfo(oid, init.name, "Constant", "const", [], [tensor(init.name)])
        if init.name in consts:
            info.attrs["value"] = consts[init.name]
        add(info, init)
        producer[init.name] = Value(oid, 0)
        const_derived[oid] = True

    for idx, node in enumerate(graph.node):
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            value_attr = next((a for a in node.attribute if a.name == "value"), None)
            if value_attr is not None and _numel(value_attr.t.dims) <= 64:
                consts[node.output[0]] = numpy_helper.to_array(value_attr.t)
        oid = new_id(node.name or f"{node.op_type}_{idx}")
        in_values = []
        for name in node.input:
            if not name:  # an omitted optional input
                continue
            if name not in producer:  # an outer-scope or missing value: treat as a constant
                cid = new_id(name)
                add(OpInfo(cid, name, "Constant", "const", [], [tensor(name)]), None)
                producer[name] = Value(cid, 0)
                const_derived[cid] = True
            in_values.append(producer[name])
        outs = [tensor(name) for name in node.output]
        info = OpInfo(oid, node.name or oid, node.op_type, "other", in_values, outs)
        if node.op_type == "Constant":
            info.kind = "const"
            if node.output[0] in consts:
                info.attrs["value"] = consts[node.output[0]]
        else:
            in_tensors = [ops[v.op].outputs[v.port] for v in in_values]
            info.kind, pointwise = _classify(
                node, in_tensors, [const_derived[v.op] for v in in_values], consts, opset)
            if pointwise is not None:
                info.attrs["pointwise"] = pointwise
            if node.op_type in _AFFINE:
                info.attrs["affine"] = _AFFINE[node.op_type]
            axes = _axes(node, in_tensors, consts)
            if axes is not None:
                info.attrs["axes"] = axes
            layout = _matrix(node, in_tensors, [const_derived[v.op] for v in in_values])
            if layout is not None:
                info.attrs["matrix"] = layout
            attention = attention_kind(node.op_type, in_tensors[0] if in_tensors else None)
            if attention is not None:
                info.attrs["attention"] = attention
        const_derived[oid] = node.op_type == "Constant" or (
            bool(in_values) and all(const_derived[v.op] for v in in_values))
        add(info, node)
        for port, name in enumerate(node.output):
            if name:
                producer[name] = Value(oid, port)

    results = []
    for out in graph.output:
        src = producer.get(out.name)
        if src is None:
            continue
        oid = new_id(f"output:{out.name}")
        add(OpInfo(oid, out.name, "Result", "output", [src], []), out)
        results.append(oid)

    view = GraphView(ops=ops, order=order, inputs=inputs, results=results, graph=graph_nx,
                     native=native, probe_inputs=probe_inputs)
    view._const_derived = const_derived
    mark_attention_queries(view)
    return view


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n

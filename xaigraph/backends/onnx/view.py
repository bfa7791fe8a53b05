"""Build a `GraphView` from an ONNX model: the ONNX translator.

Op ids are node names (made unique; generated for unnamed nodes), graph input names, and
initializer names; each graph output becomes an op of kind ``output``. Each op type is named
in the neutral vocabulary (`xaigraph.opkinds`) and the few native attributes its rules need
are read; `xaigraph.view_builder` does the rest. Declared shapes come from ONNX shape
inference on the model as it is (symbolic dims become None). Probe shapes (inputs fixed to
the probe sizes) come from OpenVINO's shape inference where it can read the model, tensor
names being shared, else from ONNX shape inference.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from xaigraph import signals
from xaigraph.graph_view import Dim, GraphView, OpInfo, TensorInfo, Value
from xaigraph.model_io import ov_from_onnx
from xaigraph.opkinds import REDUCTIONS
from xaigraph.view_builder import (
    DEFAULT_SPATIAL,
    Translated,
    assemble,
    probe_input_shapes,
    unique_id,
)

__all__ = ["DTYPES", "build_view", "opset_version", "real_inputs"]

log = logging.getLogger(__name__)

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

# Native op type -> neutral name (xaigraph.opkinds); anything else is "other".
NEUTRAL = {
    "Constant": "const", "Shape": "shapeof",
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max", "Min": "min",
    "Pow": "pow", "PRelu": "prelu", "Relu": "relu", "LeakyRelu": "leaky_relu",
    "Sigmoid": "sigmoid", "HardSigmoid": "hard_sigmoid", "HardSwish": "hard_swish",
    "Clip": "clip", "Exp": "exp", "Log": "log", "Tanh": "tanh", "Gelu": "gelu", "Mish": "mish",
    "Softplus": "softplus", "Softsign": "softsign", "Elu": "elu", "Selu": "selu",
    "Abs": "abs", "Neg": "neg", "Sqrt": "sqrt", "Erf": "erf", "Floor": "floor",
    "Ceil": "ceil", "Sign": "sign", "Cast": "cast", "Identity": "identity",
    "Dropout": "dropout", "BatchNormalization": "batch_norm", "Softmax": "softmax",
    "LogSoftmax": "log_softmax", "Reshape": "reshape", "Squeeze": "squeeze",
    "Unsqueeze": "unsqueeze", "Flatten": "flatten", "Transpose": "transpose",
    "Concat": "concat", "Gather": "gather", "Conv": "conv", "ConvTranspose": "conv_transpose",
    "MatMul": "matmul", "Gemm": "gemm", "AveragePool": "avg_pool", "MaxPool": "max_pool",
    "GlobalAveragePool": "global_avg_pool", "ReduceMean": "reduce_mean",
    "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max", "ReduceMin": "reduce_min",
    "ReduceProd": "reduce_prod", "ReduceL1": "reduce_l1", "ReduceL2": "reduce_l2",
    "ReduceLogSum": "reduce_log_sum", "ReduceLogSumExp": "reduce_log_sum_exp",
    "ReduceSumSquare": "reduce_sum_square", "LayerNormalization": "layer_norm",
    "MeanVarianceNormalization": "mvn", "QuantizeLinear": "quantize",
    "DequantizeLinear": "dequantize",
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
        signals.check()  # an interrupted run ends here, never goes on another way
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
    if model.ByteSize() > 1_900_000_000:
        return {}
    try:
        ov_model = ov_from_onnx(model)
        ov_model.reshape({i: list(s) for i, s in enumerate(inputs)})
    except Exception as exc:
        signals.check()  # an interrupted run ends here, never goes on another way
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


def _auto_pad(node: onnx.NodeProto) -> str:
    return bytes(_attr(node, "auto_pad", b"NOTSET")).decode().lower()


def _reduce_axes(node: onnx.NodeProto) -> dict[str, Any]:
    """Axes in the attribute (before opset 18), else in input 1, else all of them."""
    axes = _attr(node, "axes")
    if axes is not None:
        return {"axes": list(axes)}
    if len(node.input) > 1:
        return {"axes_input": 1} if node.input[1] else {}
    return {"axes_all": True}


def _facts(node: onnx.NodeProto, neutral: str, opset: int,
           weight: tuple[Dim, ...] | None) -> dict[str, Any]:
    """The neutral facts (`opkinds.FACTS`) of `node`, read from its attributes; `weight`:
    the declared shape of its input 1."""
    if neutral == "conv":
        channels = None
        if weight is not None and len(weight) == 4 and weight[1] is not None:
            channels = weight[1] * int(_attr(node, "group", 1))
        return {"strides": list(_attr(node, "strides", [1, 1])),
                "pads": list(_attr(node, "pads", [])), "auto_pad": _auto_pad(node),
                "in_channels": channels}
    if neutral == "avg_pool":
        return {"kernel": list(_attr(node, "kernel_shape", [])),
                "pads": list(_attr(node, "pads", [])), "auto_pad": _auto_pad(node)}
    if neutral in ("softmax", "log_softmax"):  # before opset 13: over axes `axis` to the last
        return {"axis": int(_attr(node, "axis", -1))} if opset >= 13 else {}
    if neutral == "gemm":
        return {"transpose_a": bool(_attr(node, "transA", 0)),
                "transpose_b": bool(_attr(node, "transB", 0)),
                "scaled": float(_attr(node, "alpha", 1.0)) != 1.0
                or float(_attr(node, "beta", 1.0)) != 1.0}
    if neutral == "layer_norm":
        return {"axes_from": int(_attr(node, "axis", -1))}
    if neutral == "mvn":
        return {"axes": list(_attr(node, "axes", [0, 2, 3]))}
    if neutral in REDUCTIONS:
        return _reduce_axes(node)
    if neutral == "transpose" and _attr(node, "perm") is not None:
        return {"perm": list(_attr(node, "perm"))}
    return {}


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _small_value(tensor: onnx.TensorProto) -> np.ndarray | None:
    if _numel(tensor.dims) > 64 or tensor.data_location == onnx.TensorProto.EXTERNAL:
        return None
    return numpy_helper.to_array(tensor)


class _Translator:
    """Every input, initializer, node and output of a graph as the view builder takes it."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.declared = _infer(model, None)
        self.opset = opset_version(model)
        self.ops: list[Translated] = []
        self.ids: set[str] = set()
        self.producer: dict[str, Value] = {}
        self.consts: dict[str, np.ndarray] = {}  # small constant values by tensor name

    def tensor(self, name: str) -> TensorInfo:
        shape, dtype = _dims(self.declared.get(name))
        return TensorInfo(shape=shape, probe=None, dtype=dtype, names=(name,),
                          probe_value=self.consts.get(name))

    def add(self, base: str, name: str | None, native_type: str, neutral: str,
            inputs: list[Value], outputs: list[str], native: Any,
            facts: dict[str, Any] | None = None) -> str:
        """Add an op with id `base` (made unique) and `name` (its id when None)."""
        oid = unique_id(base, self.ids)
        self.ids.add(oid)
        info = OpInfo(oid, name or oid, native_type, "other", inputs,
                      [self.tensor(n) for n in outputs], neutral=neutral)
        self.ops.append(Translated(info, native, facts or {}))
        for port, out in enumerate(outputs):
            if out:
                self.producer[out] = Value(oid, port)
        return oid

    def const(self, name: str, value: np.ndarray | None, native: Any) -> None:
        if value is not None:
            self.consts[name] = value
        self.add(name, name, "Constant", "const", [], [name], native, {"value": value})

    def node(self, idx: int, node: onnx.NodeProto) -> None:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            value_attr = next((a for a in node.attribute if a.name == "value"), None)
            if value_attr is not None:
                value = _small_value(value_attr.t)
                if value is not None:
                    self.consts[node.output[0]] = value
        inputs = []
        for name in node.input:
            if not name:  # an omitted optional input
                continue
            if name not in self.producer:  # an outer-scope or missing value: a constant
                self.const(name, None, None)
            inputs.append(self.producer[name])
        neutral = NEUTRAL.get(node.op_type, "other")
        weight = _dims(self.declared.get(node.input[1]))[0] if len(node.input) > 1 else None
        facts = _facts(node, neutral, self.opset, weight)
        if neutral == "const":
            facts["value"] = self.consts.get(node.output[0])
        self.add(node.name or f"{node.op_type}_{idx}", node.name or None, node.op_type, neutral,
                 inputs, list(node.output), node, facts)

    def run(self, graph: onnx.GraphProto) -> tuple[list[str], list[str]]:
        """(input op ids, output op ids)."""
        inputs = [self.add(vi.name, vi.name, "Parameter", "input", [], [vi.name], vi)
                  for vi in real_inputs(graph)]
        for init in graph.initializer:
            if init.name not in self.producer:
                self.const(init.name, _small_value(init), init)
        for idx, node in enumerate(graph.node):
            self.node(idx, node)
        results = []
        for out in graph.output:
            src = self.producer.get(out.name)
            if src is not None:
                results.append(self.add(f"output:{out.name}", out.name, "Result", "output",
                                        [src], [], out))
        return inputs, results


def _fill_probes(model: onnx.ModelProto, ops: list[Translated],
                 shapes: list[tuple[int, ...]]) -> None:
    """Each tensor's shape at the probe input `shapes` (its dtype too, when undeclared)."""
    probed = _infer(model, shapes)
    ov_probed = _ov_probe(model, shapes)
    for t in ops:
        for tensor in t.info.outputs:
            name = tensor.names[0]
            probe, dtype = _dims(probed.get(name))
            if name in ov_probed:
                probe = ov_probed[name]
            if probe is not None and all(d is not None for d in probe):
                tensor.probe = tuple(int(d or 0) for d in probe)
            if tensor.dtype == "?":
                tensor.dtype = dtype


def build_view(model: onnx.ModelProto, spatial: int = DEFAULT_SPATIAL) -> GraphView:
    translator = _Translator(model)
    inputs, results = translator.run(model.graph)
    probe_inputs = probe_input_shapes(translator.ops, inputs, spatial)
    _fill_probes(model, translator.ops, probe_inputs)
    return assemble(translator.ops, inputs, results, probe_inputs)

"""Small classifiers built by hand (both formats) for the stamp, strip and replace tests, and
`ops_of`: a model's ops as comparable data (type, inputs, attributes, constants).

    cnn:           image -> conv -> relu -> pool -> flatten -> fc (+ bias) [-> prob]
    channels_last: image -> conv -> nhwc (transpose) -> pool (mean over H, W) -> fc -> prob
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import openvino as ov
import openvino.opset13 as ops
from onnx import helper

from tests.unit.graphs import OnnxGraph, ov_model, rand

__all__ = ["CASES", "make", "ops_of"]

W1, FC, BIAS = rand(8, 3, 3, 3), rand(5, 8, seed=2), rand(5, seed=3)
W_NHWC, FC_NHWC = rand(6, 3, 1, 1, seed=7), rand(6, 5, seed=8)


def _ir_cnn(softmax: bool) -> ov.Model:
    x = ops.parameter(ov.PartialShape([-1, 3, 8, 8]), np.float32, name="image")
    conv = ops.convolution(x, ops.constant(W1), [1, 1], [1, 1], [1, 1], [1, 1], name="conv")
    pool = ops.reduce_mean(ops.relu(conv, name="relu"), np.array([2, 3]), True, name="pool")
    flat = ops.reshape(pool, np.array([0, -1]), True, name="flatten")
    fc = ops.matmul(flat, ops.constant(FC), False, True, name="fc")
    out = ops.add(fc, ops.constant(BIAS), name="bias")
    if softmax:
        out = ops.softmax(out, 1, name="prob")
    out.output(0).get_tensor().set_names({"scores"})
    return ov_model([out], [x])


def _onnx_cnn(softmax: bool) -> onnx.ModelProto:
    g = OnnxGraph()
    conv = g.op("Conv", [g.input("image", ["N", 3, 8, 8]), g.const("w1", W1)], "conv",
                pads=[1] * 4)
    pool = g.op("GlobalAveragePool", [g.op("Relu", [conv], "relu")], "pool")
    flat = g.op("Flatten", [pool], "flatten")
    out = g.op("Gemm", [flat, g.const("fc.w", FC), g.const("fc.b", BIAS)], "fc", transB=1)
    if softmax:
        out = g.op("Softmax", [out], "prob", axis=1)
    return _typed(g.model([out]), ["N", 5])


def _ir_channels_last() -> ov.Model:
    x = ops.parameter([1, 3, 8, 8], np.float32, name="image")
    conv = ops.convolution(x, ops.constant(W_NHWC), [1, 1], [0, 0], [0, 0], [1, 1],
                           name="conv")
    nhwc = ops.transpose(conv, np.array([0, 2, 3, 1], dtype=np.int64), name="nhwc")
    pool = ops.reduce_mean(nhwc, np.array([1, 2], dtype=np.int64), False, name="pool")
    fc = ops.matmul(pool, ops.constant(FC_NHWC), False, False, name="fc")
    return ov_model([ops.softmax(fc, 1, name="prob")], [x])


def _onnx_channels_last() -> onnx.ModelProto:
    g = OnnxGraph()
    conv = g.op("Conv", [g.input("image", [1, 3, 8, 8]), g.const("w", W_NHWC)], "conv")
    nhwc = g.op("Transpose", [conv], "nhwc", perm=[0, 2, 3, 1])
    pool = g.op("ReduceMean", [nhwc], "pool", axes=[1, 2], keepdims=0)
    fc = g.op("MatMul", [pool, g.const("fc.w", FC_NHWC)], "fc")
    return _typed(g.model([g.op("Softmax", [fc], "prob", axis=1)]), [1, 5])


def _typed(model: onnx.ModelProto, shape: list[Any]) -> onnx.ModelProto:
    out = model.graph.output[0]
    out.CopyFrom(helper.make_tensor_value_info(out.name, onnx.TensorProto.FLOAT, shape))
    onnx.checker.check_model(model)
    return model


# name: (graph, method, options)
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "reciprocam": ("cnn_softmax", "reciprocam", {}),
    "reciprocam-no-softmax": ("cnn", "reciprocam", {}),
    "activationmap-raw": ("cnn_softmax", "activationmap", {"scaling": False}),
    "targets": ("cnn_softmax", "reciprocam", {"targets": "topk:2"}),
    "channels-first": ("channels_last", "activationmap", {}),
}


def make(graph: str, backend: str) -> Any:
    """The graph `graph` (a `CASES` graph name) as an `ov.Model` ("ir") or ONNX model."""
    builders = {
        "cnn": (lambda: _ir_cnn(False), lambda: _onnx_cnn(False)),
        "cnn_softmax": (lambda: _ir_cnn(True), lambda: _onnx_cnn(True)),
        "channels_last": (_ir_channels_last, _onnx_channels_last),
    }
    ir, onnx_model = builders[graph]
    return ir() if backend == "ir" else onnx_model()


def ops_of(model: Any) -> dict[str, Any]:
    """Every op of `model` by name: type, inputs, attributes, constant values, output names."""
    if isinstance(model, onnx.ModelProto):
        g = model.graph
        nodes = {(n.name or "/".join(n.output)): (n.op_type, list(n.input), list(n.output),
                                                   [a.SerializeToString() for a in n.attribute])
                 for n in g.node}
        inits = {i.name: i.SerializeToString() for i in g.initializer}
        io = ([i.SerializeToString() for i in g.input], [o.SerializeToString() for o in g.output])
        return {"nodes": nodes, "initializers": inits, "io": io}
    out = {}
    for node in model.get_ordered_ops():
        sources = [(i.get_source_output().get_node().get_friendly_name(),
                    i.get_source_output().get_index()) for i in node.inputs()]
        const = node.get_data().tobytes() if node.get_type_name() == "Constant" else None
        out[node.get_friendly_name()] = (
            node.get_type_name(), node.get_type_info().version_id, sources,
            repr(sorted(node.get_attributes().items())), const,
            [sorted(o.get_names()) for o in node.outputs()],
            [str(o.get_partial_shape()) for o in node.outputs()])
    return out

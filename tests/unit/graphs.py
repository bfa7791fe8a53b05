"""Small graphs built by hand, once as an `ov.Model` and once as an ONNX model.

Each test draws its graph, builds it with `openvino.opset13` and with `OnnxGraph`, giving
the ops the same names in both, and runs both through their views (`views`). No torch, no
export: a graph is a few nodes and its views are built in milliseconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import openvino as ov
import openvino.opset13 as ops
from onnx import helper, numpy_helper

from xaigraph.backends.onnx.view import build_view as onnx_view
from xaigraph.backends.openvino.view import build_view as ov_view
from xaigraph.graph_view import GraphView, Value

__all__ = ["BACKENDS", "SPATIAL", "OnnxGraph", "build", "ops", "ov_model", "rand", "value", "views"]

BACKENDS = ("ir", "onnx")
SPATIAL = 32  # the probe size of dynamic spatial dims in these tests


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def ov_model(outputs: list[Any], params: list[Any]) -> ov.Model:
    return ov.Model([ops.result(o) for o in outputs], params, "g")


class OnnxGraph:
    """An ONNX graph whose nodes are named after their (single) output."""

    def __init__(self, opset: int = 17) -> None:
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []

    def input(self, name: str, shape: list[int | str | None] | None) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape))
        return name

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, outputs: int = 1,
           **attrs: Any) -> str:
        names = [name] + [f"{name}:{i}" for i in range(1, outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=name, **attrs))
        return name

    def model(self, outputs: list[str]) -> onnx.ModelProto:
        outs = [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None) for o in outputs]
        graph = helper.make_graph(self.nodes, "g", self.inputs, outs, self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])


def build(model: ov.Model | onnx.ModelProto) -> GraphView:
    if isinstance(model, onnx.ModelProto):
        return onnx_view(model, SPATIAL)
    return ov_view(model, SPATIAL)


def views(ir: ov.Model, onnx_model: onnx.ModelProto) -> dict[str, GraphView]:
    """Both views, by backend name."""
    return {"ir": build(ir), "onnx": build(onnx_model)}


def value(view: GraphView, name: str) -> Value:
    v = view.find(name)
    assert v is not None, f"no op named {name}"
    return v

"""A tiny classifier built by hand, as OpenVINO IR and as ONNX, for error and fuzz tests.

```
x [1,3,8,8] -> Conv 3->4 (3x3, pad 1) -> ReLU -> GlobalAveragePool -> Flatten -> MatMul 4->5
```

No torch, no export: `openvino.opset13` for the IR, `onnx.helper` for ONNX; both files are a
few hundred bytes, so a mutated copy is read in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import openvino.opset13 as ops
from onnx import helper, numpy_helper

__all__ = ["CLASSES", "INPUT_SHAPE", "onnx_classifier", "write_ir", "write_onnx"]

INPUT_SHAPE = (1, 3, 8, 8)
CLASSES = 5


def _weights() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    conv = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    fc = rng.standard_normal((4, CLASSES)).astype(np.float32)
    return conv, fc


def ir_classifier() -> ov.Model:
    conv_w, fc_w = _weights()
    x = ops.parameter(list(INPUT_SHAPE), np.float32, name="x")
    conv = ops.convolution(x, ops.constant(conv_w), [1, 1], [1, 1], [1, 1], [1, 1])
    conv.set_friendly_name("conv")
    relu = ops.relu(conv)
    relu.set_friendly_name("relu")
    gap = ops.reduce_mean(relu, ops.constant(np.array([2, 3], np.int64)), keep_dims=False)
    gap.set_friendly_name("gap")
    logits = ops.matmul(gap, ops.constant(fc_w), False, False)
    logits.set_friendly_name("logits")
    logits.output(0).get_tensor().set_names({"logits"})
    return ov.Model([ops.result(logits)], [x], "tiny")


def onnx_classifier() -> onnx.ModelProto:
    conv_w, fc_w = _weights()
    nodes = [
        helper.make_node("Conv", ["x", "conv_w"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("MatMul", ["flat", "fc_w"], ["logits"], name="logits"),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(INPUT_SHAPE))],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, CLASSES])],
        [numpy_helper.from_array(conv_w, "conv_w"), numpy_helper.from_array(fc_w, "fc_w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_ir(folder: Path, name: str = "tiny") -> Path:
    path = folder / f"{name}.xml"
    ov.save_model(ir_classifier(), str(path), compress_to_fp16=False)
    return path


def write_onnx(folder: Path, name: str = "tiny") -> Path:
    path = folder / f"{name}.onnx"
    onnx.save_model(onnx_classifier(), str(path))
    return path

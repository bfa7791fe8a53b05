"""Tiny detectors built with onnx.helper whose one box is the bounding box of the bright
pixels of their input (pixels 0..255, stretch / letterbox preprocessing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

SIZE = 48  # the model input: 48 x 48
BRIGHT = 150.0  # a pixel whose channel mean is above this is part of the object


def _const(name: str, value: np.ndarray | float) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def bright_box_detector(style: str = "boxes_labels_scores") -> onnx.ModelProto:
    """Outputs (per image, one detection): the bright pixels' box x1 y1 x2 y2 (input pixels,
    x2 and y2 exclusive), label 1, score = the brightest pixel / 255. `style`
    "boxes_labels_scores": `boxes [N, 1, 4]`, `labels [N, 1]`, `scores [N, 1]`; "modelapi":
    `boxes [N, 1, 5]` (score last) and `labels [N, 1]`."""
    ramp = np.arange(SIZE, dtype=np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["grey"], axes=[1], keepdims=0),  # [N, H, W]
        helper.make_node("Greater", ["grey", "bright"], ["on_b"]),
        helper.make_node("Cast", ["on_b"], ["on"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["on"], ["cols"], axes=[1], keepdims=0),  # [N, W]
        helper.make_node("ReduceMax", ["on"], ["rows"], axes=[2], keepdims=0),  # [N, H]
    ]
    for axis, mask in (("x", "cols"), ("y", "rows")):
        nodes += [
            helper.make_node("Mul", [mask, "ramp1"], [f"{axis}hi_v"]),
            helper.make_node("ReduceMax", [f"{axis}hi_v"], [f"{axis}2"], axes=[1], keepdims=1),
            helper.make_node("Mul", [mask, "rampr"], [f"{axis}lo_v"]),
            helper.make_node("ReduceMax", [f"{axis}lo_v"], [f"{axis}lo"], axes=[1],
                             keepdims=1),
            helper.make_node("Sub", ["side", f"{axis}lo"], [f"{axis}1"]),
        ]
    nodes += [
        helper.make_node("Concat", ["x1", "y1", "x2", "y2"], ["box4"], axis=1),  # [N, 4]
        helper.make_node("ReduceMax", ["grey"], ["peak0"], axes=[1, 2], keepdims=0),  # [N]
        helper.make_node("Unsqueeze", ["peak0", "axis1"], ["peak"]),  # [N, 1]
        helper.make_node("Div", ["peak", "full"], ["scores"]),
        helper.make_node("Mul", ["scores", "zero"], ["z"]),
        helper.make_node("Add", ["z", "one"], ["labf"]),
        helper.make_node("Cast", ["labf"], ["labels"], to=TensorProto.INT64),
    ]
    inits = [_const("bright", BRIGHT), _const("ramp1", ramp + 1), _const("rampr", SIZE - ramp),
             _const("side", float(SIZE)), _const("full", 255.0), _const("zero", 0.0),
             _const("one", 1.0), numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    outputs = [helper.make_tensor_value_info("labels", TensorProto.INT64, ["n", 1])]
    if style == "modelapi":
        nodes += [helper.make_node("Concat", ["box4", "scores"], ["box5"], axis=1),
                  helper.make_node("Unsqueeze", ["box5", "axis1"], ["boxes"])]
        outputs.insert(0, helper.make_tensor_value_info("boxes", TensorProto.FLOAT,
                                                        ["n", 1, 5]))
    else:
        nodes.append(helper.make_node("Unsqueeze", ["box4", "axis1"], ["boxes"]))
        outputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["n", 1, 4]),
                   *outputs,
                   helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 1])]
    graph = helper.make_graph(
        nodes, "bright_box",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, SIZE, SIZE])],
        outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def square_image(path: Path, width: int, height: int, box: tuple[int, int, int, int]
                 ) -> Path:
    """A dark photo (grey 40) with a white rectangle at `box` (x1 y1 x2 y2, exclusive)."""
    a = np.full((height, width, 3), 40, np.uint8)
    x1, y1, x2, y2 = box
    a[y1:y2, x1:x2] = 255
    Image.fromarray(a).save(path)
    return path

"""The tiny CNNs and the tiny detector of `tests/integration/tiny_models.py`, built with
onnx.helper: the same layers and shapes as torch's ONNX export of them (batch-norm folded into
its Conv), with seeded numpy weights, and no torch. For tests that need "a small CNN
classifier (or detector) in a file", not a torch reference.

    gap_fc    image [N,3,16,16] -> Conv 3->8 (3x3, pad 1) -> Relu
              -> Conv 8->12 (3x3, stride 2, pad 1) -> Relu            T [N,12,8,8]
              -> ReduceMean(H, W) -> Gemm 12->5 [-> Softmax] -> scores [N,5]
    gap_mlp   T -> ReduceMean(H, W, keepdims) -> Conv 12->20 (1x1) -> HardSwish -> Flatten
              -> Gemm 20->5 [-> Softmax]

    detector  image [N,3,16,16] -> Conv 3->8 (stride 2) -> Relu -> P3 [N,8,8,8]
              -> Conv 8->8 (stride 2) -> Relu -> P4 [N,8,4,4]
              on each level, shared: cls Conv (A*K) and box Conv (A*4), 3x3 pad 1;
              [N, A*D, h, w] -> Reshape [N, A, D, h*w] -> Transpose [N, h*w, A, D]
              -> Reshape [N, h*w*A, D] (rows in torch's order, any input size);
              the levels joined by Concat: scores [N, 240, 6], boxes [N, 240, 4] (A = 3)
    modelapi_detector: the detector decoded into the OpenVINO Model API's SSD layout,
              boxes [N, 240, 5] (x1 y1 x2 y2 score) and int64 labels [N, 240]

Routes (`write`): `onnxNN` (ONNX at opset NN >= 14, dynamic batch), and OpenVINO IR converted from
that file: `ov_static` (batch 1), `ov_dynbatch` (dynamic batch), `ov_dynamic` (every dim).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["CLASSES", "DET_CLASSES", "HEADS", "ROUTES", "SIZE", "cnn", "detector",
           "modelapi_detector", "write"]

HEADS = ("gap_fc", "gap_mlp")
ROUTES = ("onnx17", "onnx18", "ov_static", "ov_dynbatch", "ov_dynamic")
SIZE = 16  # input height and width
CLASSES = 5
DET_CLASSES = 6


class _Graph:
    """Nodes and seeded weights of one graph; `conv` and `linear` draw weights as torch's
    default initialisation does (uniform, bound 1/sqrt(fan_in))."""

    def __init__(self, seed: int, opset: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def _uniform(self, fan_in: int, *shape: int) -> np.ndarray:
        bound = 1 / np.sqrt(fan_in)
        return self.rng.uniform(-bound, bound, shape).astype(np.float32)

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def conv(self, x: str, name: str, c_in: int, c_out: int, k: int = 3, stride: int = 1,
             norm: bool = False) -> str:
        """A Conv; `norm`: followed by a batch-norm with non-trivial statistics, folded in."""
        fan_in = c_in * k * k
        w, b = self._uniform(fan_in, c_out, c_in, k, k), self._uniform(fan_in, c_out)
        if norm:
            mean = self.rng.uniform(-0.2, 0.2, c_out).astype(np.float32)
            var = self.rng.uniform(0.5, 1.5, c_out).astype(np.float32)
            scale = 1 / np.sqrt(var + 1e-5)
            w, b = w * scale[:, None, None, None], (b - mean) * scale
        pad = k // 2
        return self.op("Conv", [x, self.const(f"{name}.weight", w),
                                self.const(f"{name}.bias", b.astype(np.float32))], name,
                       kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride])

    def linear(self, x: str, name: str, c_in: int, c_out: int) -> str:
        w, b = self._uniform(c_in, c_out, c_in), self._uniform(c_in, c_out)
        return self.op("Gemm", [x, self.const(f"{name}.weight", w),
                                self.const(f"{name}.bias", b)], name, transB=1)

    def mean_hw(self, x: str, name: str, keepdims: bool) -> str:
        if self.opset >= 18:
            axes = self.const(f"{name}.axes", np.array([2, 3], np.int64))
            return self.op("ReduceMean", [x, axes], name, keepdims=int(keepdims))
        return self.op("ReduceMean", [x], name, axes=[2, 3], keepdims=int(keepdims))

    def model(self, outputs: dict[str, list[int | str]]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "tiny",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                           ["batch", 3, SIZE, SIZE])],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def cnn(head: str, softmax: bool = False, seed: int = 0, opset: int = 17) -> onnx.ModelProto:
    """The tiny CNN classifier with `head` (see the module's docstring)."""
    if head not in HEADS:
        raise ValueError(head)
    g = _Graph(seed, opset)
    r1 = g.op("Relu", [g.conv("image", "conv1", 3, 8)], "relu1")
    t = g.op("Relu", [g.conv(r1, "conv2", 8, 12, stride=2, norm=True)], "relu2")
    if head == "gap_fc":
        logits = g.linear(g.mean_hw(t, "gap", keepdims=False), "fc", 12, CLASSES)
    else:
        hidden = g.op("HardSwish", [g.conv(g.mean_hw(t, "gap", keepdims=True), "conv_head",
                                           12, 20, k=1)], "hardswish")
        logits = g.linear(g.op("Flatten", [hidden], "flatten", axis=1), "fc", 20, CLASSES)
    if softmax:
        g.op("Softmax", [logits], "softmax", axis=1)
    g.nodes[-1].output[0] = "scores"
    return g.model({"scores": ["batch", CLASSES]})


def detector(anchors: int = 3, seed: int = 0, opset: int = 17) -> onnx.ModelProto:
    """The tiny two-level single-stage detector (see the module's docstring)."""
    g = _Graph(seed, opset)
    p3 = g.op("Relu", [g.conv("image", "stem", 3, 8, stride=2)], "p3")
    p4 = g.op("Relu", [g.conv(p3, "down", 8, 8, stride=2)], "p4")
    joined = {}
    for branch, depth in (("cls", DET_CLASSES), ("box", 4)):
        fan_in = 8 * 9
        w = g.const(f"{branch}.weight", g._uniform(fan_in, anchors * depth, 8, 3, 3))
        b = g.const(f"{branch}.bias", g._uniform(fan_in, anchors * depth))
        rows = []
        for level, x in enumerate((p3, p4)):
            name = f"{branch}{level}"
            c = g.op("Conv", [x, w, b], name, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
            split = g.op("Reshape", [c, g.const(f"{name}.split_shape", np.array(
                [0, anchors, depth, -1], np.int64))], f"{name}.split")
            moved = g.op("Transpose", [split], f"{name}.moved", perm=[0, 3, 1, 2])
            rows.append(g.op("Reshape", [moved, g.const(f"{name}.rows_shape", np.array(
                [0, -1, depth], np.int64))], f"{name}.rows"))
        joined[branch] = g.op("Concat", rows, "scores" if branch == "cls" else "boxes", axis=1)
    m = anchors * ((SIZE // 2) ** 2 + (SIZE // 4) ** 2)
    return g.model({"scores": ["batch", m, DET_CLASSES], "boxes": ["batch", m, 4]})


def modelapi_detector(anchors: int = 3) -> onnx.ModelProto:
    """`detector` decoded into the Model API's SSD outputs: `boxes [N, M, 5]`
    (the box logits squashed to 0..SIZE, then the best class probability) and `labels [N, M]`
    (int64), no NMS; `model_info.model_type` SSD, as an OTX export records it."""
    model = detector(anchors)
    g = model.graph
    rows = anchors * ((SIZE // 2) ** 2 + (SIZE // 4) ** 2)
    g.initializer.append(numpy_helper.from_array(np.array(float(SIZE), np.float32),
                                                 "det.side"))
    g.node.extend([
        helper.make_node("Sigmoid", ["scores"], ["det.probs"], name="det.probs"),
        helper.make_node("ReduceMax", ["det.probs"], ["det.best"], axes=[2], keepdims=1,
                         name="det.best"),
        helper.make_node("ArgMax", ["det.probs"], ["labels"], axis=2, keepdims=0,
                         name="det.labels"),
        helper.make_node("Sigmoid", ["boxes"], ["det.unit"], name="det.unit"),
        helper.make_node("Mul", ["det.unit", "det.side"], ["det.corners"], name="det.corners"),
        helper.make_node("Concat", ["det.corners", "det.best"], ["boxes5"], axis=2,
                         name="det.boxes5"),
    ])
    del g.output[:]
    g.output.extend([
        helper.make_tensor_value_info("boxes5", TensorProto.FLOAT, ["batch", rows, 5]),
        helper.make_tensor_value_info("labels", TensorProto.INT64, ["batch", rows])])
    prop = model.metadata_props.add()
    prop.key, prop.value = "model_info.model_type", "SSD"
    onnx.checker.check_model(model, full_check=True)
    return model


def write(build: Callable[[int], onnx.ModelProto], route: str, folder: Path, name: str
          ) -> Path:
    """`build(opset)` written as `folder/{name}_{route}.onnx|.xml` by `route`."""
    if route.startswith("onnx"):
        path = folder / f"{name}_{route}.onnx"
        onnx.save_model(build(int(route.removeprefix("onnx"))), str(path))
        return path
    import openvino as ov

    source = folder / f"{name}_onnx17.onnx"
    if not source.exists():
        write(build, "onnx17", folder, name)
    model = ov.convert_model(str(source))
    if route == "ov_static":
        model.reshape({0: [1, 3, SIZE, SIZE]})
    elif route == "ov_dynamic":
        model.reshape({0: ov.PartialShape.dynamic(4)})
    elif route != "ov_dynbatch":
        raise ValueError(route)
    path = folder / f"{name}_{route}.xml"
    ov.save_model(model, str(path), compress_to_fp16=False)
    return path

"""One op at a time: both views give it the neutral name, kind and attributes of
`xaigraph.opkinds`.

Every case is the graph

    x -> OP -> y

with OP built natively for OpenVINO (opset13) and for ONNX; a case that one format cannot
express is built for the other only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import openvino as ov
import pytest

from tests.unit.graphs import OnnxGraph, build, ops, ov_model, rand, value

IMAGE = [1, 4, 6, 6]
DERIVED = ("pointwise", "affine", "attention", "matrix", "axes")


def _ir(shape: list[int], make: Callable[[Any], Any]) -> ov.Model:
    x = ops.parameter(shape, np.float32, name="x")
    return ov_model([make(x)], [x])


def _onnx(shape: list[int], make: Callable[[OnnxGraph, str], str], opset: int = 17
          ) -> onnx.ModelProto:
    g = OnnxGraph(opset)
    return g.model([make(g, g.input("x", shape))])


def _conv(kernel: int, stride: int, pad: int) -> dict[str, Any]:
    w = rand(8, 4, kernel, kernel)
    return {
        "ir": _ir(IMAGE, lambda x: ops.convolution(
            x, ops.constant(w), [stride] * 2, [pad] * 2, [pad] * 2, [1, 1], name="op")),
        "onnx": _onnx(IMAGE, lambda g, x: g.op(
            "Conv", [x, g.const("w", w)], "op", strides=[stride] * 2, pads=[pad] * 4)),
    }


def _unary(ir: Callable[[Any], Any], onnx_type: str, shape: list[int] = IMAGE,
           opset: int = 17, **attrs: Any) -> dict[str, Any]:
    return {"ir": _ir(shape, ir),
            "onnx": _onnx(shape, lambda g, x: g.op(onnx_type, [x], "op", **attrs), opset)}


def _binary(ir: Callable[[Any, Any], Any], onnx_type: str, c: np.ndarray) -> dict[str, Any]:
    return {"ir": _ir(IMAGE, lambda x: ir(x, ops.constant(c))),
            "onnx": _onnx(IMAGE, lambda g, x: g.op(onnx_type, [x, g.const("c", c)], "op"))}


def _mean(ir_axes: list[int], onnx_axes: list[int], opset: int, shape: list[int] = IMAGE
          ) -> dict[str, Any]:
    def onnx_mean(g: OnnxGraph, x: str) -> str:
        if opset >= 18:
            return g.op("ReduceMean", [x, g.const("axes", np.array(onnx_axes))], "op")
        return g.op("ReduceMean", [x], "op", axes=onnx_axes)

    return {"ir": _ir(shape, lambda x: ops.reduce_mean(x, np.array(ir_axes), True, name="op")),
            "onnx": _onnx(shape, onnx_mean, opset)}


def _avg_pool(kernel: int, stride: int) -> dict[str, Any]:
    return {
        "ir": _ir(IMAGE, lambda x: ops.avg_pool(x, [stride] * 2, [0, 0], [0, 0], [kernel] * 2,
                                                True, name="op")),
        "onnx": _onnx(IMAGE, lambda g, x: g.op("AveragePool", [x], "op",
                                               kernel_shape=[kernel] * 2, strides=[stride] * 2)),
    }


def _matmul(weight: np.ndarray, ir_transpose: bool, onnx_type: str, **attrs: Any
            ) -> dict[str, Any]:
    return {
        "ir": _ir([1, 4], lambda x: ops.matmul(x, ops.constant(weight), False, ir_transpose,
                                               name="op")),
        "onnx": _onnx([1, 4], lambda g, x: g.op(onnx_type, [x, g.const("w", weight)], "op",
                                                **attrs)),
    }


@dataclass
class Case:
    id: str
    models: dict[str, Any]
    kind: str
    attrs: dict[str, Any] = field(default_factory=dict)  # every derived attribute it has
    neutral: dict[str, str] | str | None = None  # per backend when they differ

    def expected_neutral(self, backend: str) -> str | None:
        return self.neutral.get(backend) if isinstance(self.neutral, dict) else self.neutral


def _cases() -> list[Case]:
    per_channel = rand(1, 4, 1, 1)
    norm = rand(4, seed=1)
    return [
        Case("conv1x1", _conv(1, 1, 0), "linear", {"pointwise": "unary", "affine": "single"},
             "conv"),
        Case("conv3x3", _conv(3, 1, 1), "linear", {"affine": "single"}, "conv"),
        Case("conv1x1-stride2", _conv(1, 2, 0), "linear", {"affine": "single"}, "conv"),
        Case("conv1x1-padded", _conv(1, 1, 1), "linear", {"affine": "single"}, "conv"),
        Case("relu", _unary(lambda x: ops.relu(x, name="op"), "Relu"), "other",
             {"pointwise": "unary"}, "relu"),
        Case("cast", _unary(lambda x: ops.convert(x, np.float32, name="op"), "Cast",
                            to=onnx.TensorProto.FLOAT),
             "shape", {"pointwise": "unary", "affine": "always"}, "cast"),
        Case("batch-norm", {
            "ir": _ir(IMAGE, lambda x: ops.batch_norm_inference(
                x, ops.constant(norm), ops.constant(norm), ops.constant(norm),
                ops.constant(np.abs(norm) + 1), 1e-5, name="op")),
            "onnx": _onnx(IMAGE, lambda g, x: g.op("BatchNormalization", [
                x, g.const("s", norm), g.const("b", norm), g.const("m", norm),
                g.const("v", np.abs(norm) + 1)], "op")),
        }, "other", {"pointwise": "unary", "affine": "always"}, "batch_norm"),
        Case("add", _binary(lambda x, c: ops.add(x, c, name="op"), "Add", per_channel),
             "other", {"pointwise": "binary", "affine": "single"}, "add"),
        Case("mul", _binary(lambda x, c: ops.multiply(x, c, name="op"), "Mul", per_channel),
             "other", {"pointwise": "binary", "affine": "single"}, "mul"),
        Case("div", _binary(lambda x, c: ops.divide(x, c, name="op"), "Div", per_channel),
             "other", {"pointwise": "binary", "affine": "numerator"}, "div"),
        Case("mean-hw", _mean([2, 3], [2, 3], 17), "gap", {"axes": (2, 3)}, "reduce_mean"),
        Case("mean-hw-negative-axes-input", _mean([-1, -2], [-2, -1], 18), "gap",
             {"axes": (2, 3)}, "reduce_mean"),
        Case("mean-c", _mean([1], [1], 13), "other", {"axes": (1,)}, "reduce_mean"),
        Case("mean-hw-of-3d", _mean([1, 2], [1, 2], 18, [1, 4, 6]), "other",
             {"axes": (1, 2)}, "reduce_mean"),
        Case("global-pool", {
            "ir": _ir(IMAGE, lambda x: ops.adaptive_avg_pool(x, np.array([1, 1]), name="op")),
            "onnx": _onnx(IMAGE, lambda g, x: g.op("GlobalAveragePool", [x], "op")),
        }, "gap", {}, {"ir": "adaptive_avg_pool", "onnx": "global_avg_pool"}),
        Case("avg-pool-full-window", _avg_pool(6, 1), "gap", {}, "avg_pool"),
        Case("avg-pool-2x2", _avg_pool(2, 2), "other", {}, "avg_pool"),
        Case("softmax-channels", _unary(lambda x: ops.softmax(x, 1, name="op"), "Softmax",
                                        [1, 4, 6, 5], axis=1),
             "score", {"pointwise": "unary"}, "softmax"),
        Case("softmax-flattening", {  # before opset 13, Softmax works on axes 1..3 at once
            "onnx": _onnx([1, 4, 6, 5], lambda g, x: g.op("Softmax", [x], "op", axis=1), 11),
        }, "score", {}, "softmax"),
        Case("softmax-keys", _unary(lambda x: ops.softmax(x, -1, name="op"), "Softmax",
                                    [1, 2, 5, 5], axis=-1),
             "score", {"attention": "softmax"}, "softmax"),
        Case("sigmoid", _unary(lambda x: ops.sigmoid(x, name="op"), "Sigmoid"), "score",
             {"pointwise": "unary"}, "sigmoid"),
        Case("transpose", _unary(lambda x: ops.transpose(x, np.array([0, 2, 3, 1]), name="op"),
                                 "Transpose", perm=[0, 2, 3, 1]),
             "other", {"affine": "always"}, "transpose"),
        Case("reshape", {
            "ir": _ir(IMAGE, lambda x: ops.reshape(x, np.array([1, -1]), False, name="op")),
            "onnx": _onnx(IMAGE, lambda g, x: g.op(
                "Reshape", [x, g.const("s", np.array([1, -1]))], "op")),
        }, "shape", {"affine": "always"}, "reshape"),
        Case("matmul-kc", _matmul(rand(3, 4), True, "Gemm", transB=1), "linear",
             {"affine": "single", "matrix": "kc"}, {"ir": "matmul", "onnx": "gemm"}),
        Case("matmul-ck", _matmul(rand(4, 3), False, "MatMul"), "linear",
             {"affine": "single", "matrix": "ck"}, "matmul"),
        Case("gemm-scaled", {"onnx": _matmul(rand(4, 3), False, "Gemm", alpha=2.0)["onnx"]},
             "linear", {"affine": "single"}, "gemm"),
        Case("layer-norm", {
            "ir": _ir([1, 5, 4], lambda x: ops.mvn(x, ops.constant(np.array([-1])), True, 1e-5,
                                                    "inside_sqrt", name="op")),
            "onnx": _onnx([1, 5, 4], lambda g, x: g.op(
                "LayerNormalization", [x, g.const("s", norm), g.const("b", norm)], "op")),
        }, "other", {"axes": (2,)}, {"ir": "mvn", "onnx": "layer_norm"}),
        Case("sdpa", {"ir": _ir([1, 2, 5, 4], lambda x: ops.scaled_dot_product_attention(
            x, x, x, name="op"))}, "other", {"attention": "sdpa"}, "sdpa"),
        Case("shapeof", {
            "ir": _ir(IMAGE, lambda x: ops.shape_of(x, name="op")),
            "onnx": _onnx(IMAGE, lambda g, x: g.op("Shape", [x], "op")),
        }, "shapeof", {}, "shapeof"),
        Case("concat", {
            "ir": _ir(IMAGE, lambda x: ops.concat([x, x], 1, name="op")),
            "onnx": _onnx(IMAGE, lambda g, x: g.op("Concat", [x, x], "op", axis=1)),
        }, "other", {}, "concat"),
        Case("gather", {
            "ir": _ir(IMAGE, lambda x: ops.gather(x, np.array(0), np.array(1), name="op")),
            "onnx": _onnx(IMAGE, lambda g, x: g.op(
                "Gather", [x, g.const("i", np.array(0))], "op", axis=1)),
        }, "other", {}, "gather"),
    ]


CASES = [(c, backend) for c in _cases() for backend in c.models]


@pytest.mark.parametrize(("case", "backend"), CASES,
                         ids=[f"{c.id}-{b}" for c, b in CASES])
def test_op(case: Case, backend: str) -> None:
    view = build(case.models[backend])
    op = view.ops[value(view, "op").op]
    assert op.kind == case.kind
    assert {k: op.attrs[k] for k in DERIVED if k in op.attrs} == case.attrs
    assert op.neutral == case.expected_neutral(backend)


def test_native_type_is_kept_for_display() -> None:
    models = _binary(lambda x, c: ops.multiply(x, c, name="op"), "Mul", rand(1))
    types = {b: build(m).ops["op"].type for b, m in models.items()}
    assert types == {"ir": "Multiply", "onnx": "Mul"}


def test_every_native_name_is_in_the_vocabulary() -> None:
    """The translators' tables name only ops the vocabulary knows."""
    from xaigraph import opkinds
    from xaigraph.backends.onnx.view import NEUTRAL as ONNX_NAMES
    from xaigraph.backends.openvino.view import NEUTRAL as OV_NAMES

    known = (opkinds.UNARY | opkinds.BINARY | opkinds.SCORES | opkinds.MOVES | opkinds.LINEAR
             | opkinds.REDUCTIONS | opkinds.NORMS | {"input", "const", "output", "shapeof",
                                                      "concat", "gather", "avg_pool",
                                                      "max_pool", "global_avg_pool",
                                                      "adaptive_avg_pool", "sdpa"})
    assert set(OV_NAMES.values()) <= known
    assert set(ONNX_NAMES.values()) <= known

"""Models people deploy in reduced precision, built by hand (no torch, no NNCF):

- FP16-compressed IR (`ov.save_model(..., compress_to_fp16=True)`: f16 weights, Convert ops);
- INT8 IR as NNCF writes it: FakeQuantize on the activations and on the weights;
- INT8 weight-compressed IR: i8 / u8 weights decompressed by Convert (Subtract) Multiply;
- ONNX QDQ: QuantizeLinear / DequantizeLinear pairs on activations, DequantizeLinear weights;
- an ONNX model that computes in f16 from its input to its output.

`insert` finds the target through the (de)quantisation ops, builds every method that applies
(ReciproCAM's fast form right through a quantiser between the target and the pooling), and
validates with the tolerance that fits the precision (`xaigraph.validate.tolerance_for`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
import openvino.opset13 as ops
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.unit.graphs import build
from xaigraph.api import insert
from xaigraph.validate import TOLERANCES, tolerance_for

SIZE = 8
W1 = np.random.default_rng(1).standard_normal((8, 3, 3, 3)).astype(np.float32)
W2 = np.random.default_rng(2).standard_normal((16, 8, 3, 3)).astype(np.float32)
FC = np.random.default_rng(3).standard_normal((5, 16)).astype(np.float32)
METHODS = ("reciprocam", "activationmap", "cam", "eigencam")


def _image() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((2, 3, SIZE, SIZE)).astype(np.float32)


# --- OpenVINO IR -------------------------------------------------------------------------

def _fq(x: Any, lo: Any, hi: Any, levels: int = 256) -> Any:
    lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    return ops.fake_quantize(x, lo, hi, lo, hi, levels)


def _fq_weight(w: np.ndarray) -> Any:
    """Per-output-channel symmetric 8-bit FakeQuantize of a constant weight (NNCF's way)."""
    bound = np.abs(w).reshape(len(w), -1).max(1).reshape((-1,) + (1,) * (w.ndim - 1))
    return _fq(ops.constant(w), -bound, bound, 255)


def _i8_weight(w: np.ndarray) -> Any:
    """i8 weight, Convert, Multiply by a per-channel scale."""
    scale = (np.abs(w).reshape(len(w), -1).max(1) / 127).reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.round(w / scale).astype(np.int8)
    return ops.multiply(ops.convert(ops.constant(q), np.float32),
                        ops.constant(scale.astype(np.float32)))


def _u8_weight(w: np.ndarray) -> Any:
    """u8 weight with a zero point: Convert, Subtract, Multiply."""
    scale = np.float32((w.max() - w.min()) / 255)
    zero = np.uint8(np.round(-w.min() / scale))
    q = np.clip(np.round(w / scale) + zero, 0, 255).astype(np.uint8)
    shifted = ops.subtract(ops.convert(ops.constant(q), np.float32),
                           ops.convert(ops.constant(np.array(zero)), np.float32))
    return ops.multiply(shifted, ops.constant(scale))


def _ir_model(weight: Any = ops.constant, act: Any = None) -> ov.Model:
    """image -> conv -> relu -> conv -> relu (`feat`) -> mean -> flatten -> fc -> softmax;
    `weight` makes each weight, `act(x, hi)` (when given) quantises the activations."""
    quant = act or (lambda x, hi: x)
    x = ops.parameter(ov.PartialShape([-1, 3, SIZE, SIZE]), np.float32, name="image")
    conv = ops.convolution(quant(x, 4.0), weight(W1), [1, 1], [1, 1], [1, 1], [1, 1])
    c1 = quant(ops.relu(conv), 20.0)
    feat = ops.relu(ops.convolution(c1, weight(W2), [1, 1], [1, 1], [1, 1], [1, 1]),
                    name="feat")
    pool = ops.reduce_mean(quant(feat, 60.0), np.array([2, 3]), True, name="pool")
    flat = ops.reshape(quant(pool, 60.0), np.array([0, -1]), True)
    logits = ops.matmul(flat, weight(FC), False, True)
    return ov.Model([ops.result(ops.softmax(logits, 1))], [x], "m")


def _fq_activations(x: Any, hi: float) -> Any:
    return _fq(x, -hi if hi == 4.0 else 0.0, hi)


def _saved(model: ov.Model, folder: Path, fp16: bool = False) -> Path:
    path = folder / "m.xml"
    ov.save_model(model, str(path), compress_to_fp16=fp16)
    return path


def _run_ir(model: ov.Model, x: np.ndarray) -> list[np.ndarray]:
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(x)
    return [result[o] for o in compiled.outputs]


IR_MODELS = {
    "fp16-compressed": lambda d: _saved(_ir_model(), d, fp16=True),
    "int8-fakequantize": lambda d: _saved(_ir_model(_fq_weight, _fq_activations), d),
    "int8-weights-i8": lambda d: _saved(_ir_model(_i8_weight), d),
    "int8-weights-u8": lambda d: _saved(_ir_model(_u8_weight), d),
}


@pytest.mark.parametrize("kind", IR_MODELS)
def test_ir_variant_inserts_every_method(kind: str, tmp_path: Path) -> None:
    path = IR_MODELS[kind](tmp_path)
    for method in METHODS:
        if kind == "int8-fakequantize" and method == "cam":
            continue  # refused: see test_cam_refuses_a_quantised_head
        result = insert(path, method)
        assert result.changed and result.report["validation"]["passed"], (kind, method)
        maps = _run_ir(result.model, _image())[-1]
        assert maps.shape[0] == 2 and maps.dtype == np.uint8


def test_cam_refuses_a_quantised_head(tmp_path: Path) -> None:
    """A FakeQuantize after the pooling is not affine: CAM says so (one clear line)."""
    from xaigraph.errors import MethodError

    path = IR_MODELS["int8-fakequantize"](tmp_path)
    with pytest.raises(MethodError, match="not linear: FakeQuantize"):
        insert(path, "cam")


@pytest.mark.parametrize("kind", ["fp16-compressed", "int8-weights-i8", "int8-weights-u8"])
def test_compressed_weights_keep_the_target_and_f32_tolerance(kind: str, tmp_path: Path) -> None:
    """Weights and their decompression are constants: the target is the same map as in the
    f32 model, the model computes in f32, and validation keeps the f32 tolerance."""
    model = ov.Core().read_model(IR_MODELS[kind](tmp_path))
    view = build(model)
    assert tolerance_for(view) == TOLERANCES["f32"]
    result = insert(model, "reciprocam", scaling=False)
    assert result.changed and result.report["target"]["name"] == "feat"
    assert result.report["validation"]["tolerance"] == {"atol": 1e-5, "rtol": 1e-4}
    plain = insert(_ir_model(), "reciprocam", scaling=False)
    got, ref = _run_ir(result.model, _image())[-1], _run_ir(plain.model, _image())[-1]
    step = 0.02 * np.abs(ref).max()  # 8-bit or f16 weights move the scores a little
    np.testing.assert_allclose(got, ref, atol=step)


def test_fakequantize_is_elementwise_in_the_view(tmp_path: Path) -> None:
    model = ov.Core().read_model(IR_MODELS["int8-fakequantize"](tmp_path))
    view = build(model)
    quantisers = [op for op in view.ops.values() if op.type == "FakeQuantize"]
    assert quantisers and all(op.neutral == "fake_quantize" for op in quantisers)
    on_data = [op for op in quantisers if not view.is_const_derived(op.id)]
    assert len(on_data) == 4  # 4 on activations; the 3 on weights fold into constants
    assert all(op.attrs["pointwise"] == "binary" for op in on_data)
    assert tolerance_for(view) == TOLERANCES["int8"]


def _fast_equals_mosaic(make: Any, run: Any, target: str) -> str:
    """ReciproCAM at `target` by its fast form and by the mosaic (reference) form: the same
    maps. `make()` gives a fresh model (insert changes an in-memory model in place). Returns
    the fast form's description."""
    fast = insert(make(), "reciprocam", target_layer=target, scaling=False)
    mosaic = insert(make(), "reciprocam", target_layer=target, scaling=False, form="mosaic")
    assert fast.changed and mosaic.changed
    np.testing.assert_allclose(run(fast.model, _image())[-1], run(mosaic.model, _image())[-1],
                               rtol=1e-4, atol=1e-5)
    return str(fast.report["form"])


# --- ONNX ---------------------------------------------------------------------------------

class _Onnx:
    def __init__(self, dtype: int = TensorProto.FLOAT) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.dtype = dtype

    def const(self, name: str, value: Any) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def qdq(self, x: str, hi: float, name: str, signed: bool = False) -> str:
        """QuantizeLinear -> DequantizeLinear, per tensor, 8 bits, range [0, hi] (or
        [-hi, hi] signed)."""
        scale = self.const(f"{name}_scale", np.float32((2 * hi if signed else hi) / 255))
        zero = self.const(f"{name}_zero", np.uint8(128 if signed else 0))
        q = self.op("QuantizeLinear", [x, scale, zero], f"{name}_q")
        return self.op("DequantizeLinear", [q, scale, zero], f"{name}_dq")

    def weight(self, w: np.ndarray, name: str) -> str:
        """A per-channel i8 weight and its DequantizeLinear (axis 0)."""
        scale = (np.abs(w).reshape(len(w), -1).max(1) / 127).astype(np.float32)
        q = np.round(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.int8)
        return self.op("DequantizeLinear", [self.const(f"{name}_q", q),
                                            self.const(f"{name}_s", scale),
                                            self.const(f"{name}_z", np.zeros(len(w), np.int8))],
                       name, axis=0)

    def model(self) -> onnx.ModelProto:
        io = [helper.make_tensor_value_info("image", self.dtype, ["N", 3, SIZE, SIZE]),
              helper.make_tensor_value_info("prob", self.dtype, ["N", 5])]
        graph = helper.make_graph(self.nodes, "g", io[:1], io[1:], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(model, full_check=True)
        return model


def _qdq_model() -> onnx.ModelProto:
    g = _Onnx()
    x = g.qdq("image", 4.0, "in", signed=True)
    c1 = g.qdq(g.op("Relu", [g.op("Conv", [x, g.weight(W1, "w1")], "conv1", pads=[1] * 4)],
                    "relu1"), 20.0, "a1")
    feat = g.op("Relu", [g.op("Conv", [c1, g.weight(W2, "w2")], "conv2", pads=[1] * 4)], "feat")
    pool = g.op("GlobalAveragePool", [g.qdq(feat, 60.0, "a2")], "pool")
    flat = g.op("Flatten", [g.qdq(pool, 60.0, "a3")], "flat")
    g.op("Softmax", [g.op("Gemm", [flat, g.weight(FC, "fcw")], "fc", transB=1)], "prob", axis=1)
    return g.model()


def _f16_model() -> onnx.ModelProto:
    """Everything in f16: input, weights, every op, output (an f16-converted export)."""
    g = _Onnx(TensorProto.FLOAT16)
    c1 = g.op("Relu", [g.op("Conv", ["image", g.const("w1", W1.astype(np.float16))], "conv1",
                            pads=[1] * 4)], "relu1")
    feat = g.op("Relu", [g.op("Conv", [c1, g.const("w2", W2.astype(np.float16))], "conv2",
                              pads=[1] * 4)], "feat")
    flat = g.op("Flatten", [g.op("GlobalAveragePool", [feat], "pool")], "flat")
    logits = g.op("Gemm", [flat, g.const("fcw", FC.astype(np.float16)),
                           g.const("fcb", np.linspace(-1, 1, 5).astype(np.float16))], "fc",
                  transB=1)
    g.op("Softmax", [logits], "prob", axis=1)
    return g.model()


def _run_onnx(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    dtype = np.float16 if model.graph.input[0].type.tensor_type.elem_type == \
        TensorProto.FLOAT16 else np.float32
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(a) for a in session.run(None, {"image": x.astype(dtype)})]


@pytest.mark.parametrize("fmt", ["onnx", "ir"])
def test_qdq_inserts_every_method(fmt: str, tmp_path: Path) -> None:
    """The target is found through the pairs; CAM refuses the quantised pooled vector."""
    from xaigraph.errors import MethodError

    path = tmp_path / "qdq.onnx"
    onnx.save(_qdq_model(), path)
    with pytest.raises(MethodError, match=r"not linear: (QuantizeLinear|FakeQuantize)"):
        insert(path, "cam", output_format=fmt)
    for method in ("reciprocam", "activationmap", "eigencam"):
        result = insert(path, method, output_format=fmt)
        assert result.report["target"]["name"] == "a2_dq", method  # through the pair
        assert result.report["validation"]["passed"], method
        assert result.report["validation"]["tolerance"]["rtol"] == pytest.approx(1 / 255)
        run = _run_onnx if fmt == "onnx" else _run_ir
        assert run(result.model, _image())[-1].shape[0] == 2


def test_qdq_is_elementwise_in_the_view() -> None:
    view = build(_qdq_model())
    assert view.ops["a2_q"].neutral == "quantize"
    assert view.ops["a2_dq"].neutral == "dequantize"
    assert view.ops["a2_dq"].attrs["affine"] == "always"
    assert view.ops["a2_q"].attrs["pointwise"] == "binary"
    assert view.is_const_derived("w1")  # DequantizeLinear of an i8 initializer: a weight
    assert view.ops["conv1"].kind == "linear"


def test_reciprocam_fast_form_through_a_qdq_pair() -> None:
    """`feat -> Q -> DQ -> pool`: the pair acts per location, so the fast form applies at
    `feat` (the old vocabulary saw unknown ops there and built the mosaic form)."""
    text = _fast_equals_mosaic(_qdq_model, _run_onnx, "feat")
    assert text.startswith("fast exact form"), text


def test_f16_model_validates_with_the_f16_tolerance() -> None:
    """ReciproCAM's fast form runs the model's own pooled vector in one batch with the
    location vectors; in f16 that rounds the original scores differently by about one unit
    in the last place (beyond the f32 tolerance: the old validation refused the model)."""
    assert tolerance_for(build(_f16_model())) == TOLERANCES["f16"]
    for method in METHODS:
        result = insert(_f16_model(), method)
        validation = result.report["validation"]
        assert validation["passed"] and validation["tolerance"]["rtol"] == 4e-3, method
        prob, maps = _run_onnx(result.model, _image())
        assert prob.dtype == np.float16 and maps.shape[:2] in ((2, 5), (2, SIZE))

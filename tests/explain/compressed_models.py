"""A tiny FP32 classifier and its compressed copies, made in code, for `eval --reference`.

    fp32.onnx       tests.tiny_onnx.cnn("gap_fc") (logits out; 16x16 input, target relu2
                    [12, 8, 8], two Convs before it, one Gemm after)
    fp16.xml        OpenVINO IR with FP16 weights (`save_model(compress_to_fp16=True)`:
                    f16 constants and a Convert each)
    int8_qdq.onnx   ONNX QDQ INT8 (`onnxruntime.quantization.quantize_static`, calibrated on
                    the photos as explain feeds them)
    int8_fq.xml     OpenVINO IR with FakeQuantize (OpenVINO's reading of the QDQ model: a
                    FakeQuantize per Q/DQ pair, int8 weights)
    int8_wc.xml     OpenVINO IR with weight compression only, as NNCF's `compress_weights`
                    writes it: u8 weights -> Convert -> Subtract(zero point) -> Multiply(scale)
    negated.onnx    the FP32 model with fc's weights and bias negated (a broken head: every
                    class score, so every ReciproCAM map, is the source's negated)
    flat.onnx       conv2's weights zeroed: the target map is its bias, flat in space, so every
                    in-graph map is uniform (the "uniformly red map" failure)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from tests import tiny_onnx

__all__ = ["build", "calibration_inputs", "u8_weights"]


def calibration_inputs(model: Path, images: Path) -> list[np.ndarray]:
    """The model inputs explain makes of the photos in `images` (its preprocessing)."""
    from PIL import Image

    from xaigraph.explain.plan import prepare

    pre = prepare(model, method="rise").preprocess
    return [np.asarray(pre.apply(Image.open(p).convert("RGB")), np.float32).reshape(
        1, 3, tiny_onnx.SIZE, tiny_onnx.SIZE) for p in sorted(images.glob("*.png"))]


def _with_weights(model: onnx.ModelProto,
                  change: dict[str, Callable[[np.ndarray], np.ndarray]]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        if init.name in change:
            w = change[init.name](numpy_helper.to_array(init)).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(w, init.name))
    return out


def _qdq(source: Path, target: Path, images: Path) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    inputs = calibration_inputs(source, images)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"image": x} for x in inputs])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)


def u8_weights(model: Any, kinds: tuple[str, ...] = ("Convolution", "MatMul"),
               with_zero: bool = False) -> Any:
    """`model` (an `ov.Model`, in place) with each `kinds` op's constant weight (an f16
    constant behind a Convert too) as u8 codes per output channel, NNCF's asymmetric 8-bit
    weight compression: `(convert(q) - convert(zero_point)) * scale`. `with_zero`: each
    channel's range stretched to hold 0."""
    import openvino.opset13 as ops

    for op in model.get_ordered_ops():
        if op.get_type_name() not in kinds:
            continue
        node = op.input_value(1).get_node()
        if node.get_type_name() == "Convert":
            node = node.input_value(0).get_node()
        if node.get_type_name() != "Constant":
            continue
        w = node.get_data().astype(np.float32)
        axes = tuple(range(1, w.ndim))
        low, high = w.min(axis=axes, keepdims=True), w.max(axis=axes, keepdims=True)
        if with_zero:
            low, high = np.minimum(low, 0.0), np.maximum(high, 0.0)
        scale = np.maximum(high - low, 1e-8) / 255.0
        zero = np.clip(np.round(-low / scale), 0, 255)
        q = np.clip(np.round(w / scale) + zero, 0, 255).astype(np.uint8)
        decompressed = ops.multiply(
            ops.subtract(ops.convert(ops.constant(q), "f32"),
                         ops.convert(ops.constant(zero.astype(np.uint8)), "f32")),
            ops.constant(scale.astype(np.float32)))
        op.input(1).replace_source_output(decompressed.output(0))
    model.validate_nodes_and_infer_types()
    return model


def _weight_compressed(source: Path, target: Path) -> None:
    """Each Convolution's and MatMul's f32 weight replaced by u8 codes (`u8_weights`)."""
    import openvino as ov

    ov.save_model(u8_weights(ov.convert_model(str(source))), str(target),
                  compress_to_fp16=False)


def build(folder: Path, images: Path) -> dict[str, Path]:
    """Every model of the module's docstring written into `folder`, by name."""
    import openvino as ov

    folder.mkdir(parents=True, exist_ok=True)
    fp32 = tiny_onnx.cnn("gap_fc")
    paths = {name: folder / name for name in (
        "fp32.onnx", "fp16.xml", "int8_qdq.onnx", "int8_fq.xml", "int8_wc.xml",
        "negated.onnx", "flat.onnx")}
    onnx.save_model(fp32, str(paths["fp32.onnx"]))
    ov.save_model(ov.convert_model(str(paths["fp32.onnx"])), str(paths["fp16.xml"]),
                  compress_to_fp16=True)
    _qdq(paths["fp32.onnx"], paths["int8_qdq.onnx"], images)
    ov.save_model(ov.convert_model(str(paths["int8_qdq.onnx"])), str(paths["int8_fq.xml"]),
                  compress_to_fp16=False)
    _weight_compressed(paths["fp32.onnx"], paths["int8_wc.xml"])
    onnx.save_model(_with_weights(fp32, {"fc.weight": np.negative, "fc.bias": np.negative}),
                    str(paths["negated.onnx"]))
    onnx.save_model(_with_weights(fp32, {"conv2.weight": np.zeros_like}),
                    str(paths["flat.onnx"]))
    return paths

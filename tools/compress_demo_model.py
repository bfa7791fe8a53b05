"""Compressed copies of the bundled EfficientNet-Lite0, for `xaigraph eval --reference`.

    python tools/compress_demo_model.py -o /tmp/lite0     # writes the files below
    xaigraph eval /tmp/lite0/int8_qdq.onnx /tmp/lite0/photos -o /tmp/ev \
        --methods reciprocam --reference /tmp/lite0/fp32.onnx --metrics complexity

Writes into DIR:

* `fp32.onnx`: the bundled model with its float16-stored weights (initializer -> `Cast`)
  widened into float32 initializers: the same arithmetic (the reference).
* `fp16.xml`: OpenVINO IR of fp32.onnx saved with `compress_to_fp16=True`.
* `int8_qdq.onnx`: ONNX QDQ INT8 by `onnxruntime.quantization.quantize_static` (per-channel
  int8 weights, int8 activations, MinMax calibration) on the `calibration/` photos.
* `int8_fq.xml`: OpenVINO's reading of int8_qdq.onnx (a FakeQuantize per Q/DQ pair).
* `int8_wc.xml`: weight compression only, as NNCF's `compress_weights` writes it: u8 weights
  per output channel -> Convert -> Subtract(zero point) -> Multiply(scale), f32 activations.
* `photos/` (16) and `calibration/` (16, other crops): crops, flips and brightness changes
  of the bundled chelsea.png (no other photo is on this machine), 320x240.

Every copy carries the bundled model's preprocessing and labels (`xaigraph.model_info`).
NNCF is not used: it is not installed here; the forms above are what it writes.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from xaigraph import model_info
from xaigraph.demo import EFFICIENTNET_LITE, MODEL_FILE
from xaigraph.labels import imagenet_labels

SIZE = (320, 240)


def widened(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with each float16 initializer -> `Cast(to=FLOAT)` pair made one float32
    initializer named as the Cast's output."""
    fp16 = {i.name: i for i in model.graph.initializer
            if i.data_type == onnx.TensorProto.FLOAT16}
    keep, widened_inits = [], []
    for node in model.graph.node:
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if node.op_type == "Cast" and node.input[0] in fp16 and to == onnx.TensorProto.FLOAT:
            value = numpy_helper.to_array(fp16[node.input[0]]).astype(np.float32)
            widened_inits.append(numpy_helper.from_array(value, node.output[0]))
            continue
        keep.append(node)
    used = {i for n in keep for i in n.input}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(keep)
    others = [i for i in out.graph.initializer if i.name not in fp16 or i.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(others + widened_inits)
    onnx.checker.check_model(out)
    return out


def photos(folder: Path, count: int, seed: int) -> list[Path]:
    """`count` crops / flips / brightness changes of chelsea.png, `SIZE`, as PNGs."""
    from PIL import Image, ImageEnhance

    folder.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("xaigraph.data") / "chelsea.png") as p:
        cat = Image.open(p).convert("RGB")
    rng = np.random.default_rng(seed)
    w, h = cat.size
    written = []
    for i in range(count):
        scale = rng.uniform(0.6, 1.0)
        cw, ch = int(w * scale), int(h * scale)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        im = cat.crop((x, y, x + cw, y + ch)).resize(SIZE, Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.7, 1.3))
        path = folder / f"cat{seed}_{i:02d}.png"
        im.save(path)
        written.append(path)
    return written


def quantized(source: Path, target: Path, calibration: list[Path]) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from PIL import Image

    inputs = [np.asarray(EFFICIENTNET_LITE.apply(Image.open(p).convert("RGB")),
                         np.float32).reshape(1, 3, 224, 224) for p in calibration]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"image": x} for x in inputs])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8)


def weight_compressed(model: object) -> None:
    """Each Convolution's and MatMul's f32 constant weight (an `ov.Model`'s, in place) as
    u8 codes per output channel: `(convert(q) - convert(zero_point)) * scale`."""
    import openvino.opset13 as ops

    for op in model.get_ordered_ops():  # type: ignore[attr-defined]
        if op.get_type_name() not in ("Convolution", "GroupConvolution", "MatMul"):
            continue
        weight = op.input_value(1).get_node()
        if weight.get_type_name() != "Constant":
            continue
        w = weight.get_data().astype(np.float32)
        axes = tuple(range(1, w.ndim))
        low = np.minimum(w.min(axis=axes, keepdims=True), 0.0)
        high = np.maximum(w.max(axis=axes, keepdims=True), 0.0)
        scale = np.maximum(high - low, 1e-12) / 255.0
        zero = np.clip(np.round(-low / scale), 0, 255)
        q = np.clip(np.round(w / scale) + zero, 0, 255).astype(np.uint8)
        decompressed = ops.multiply(
            ops.subtract(ops.convert(ops.constant(q), "f32"),
                         ops.convert(ops.constant(zero.astype(np.uint8)), "f32")),
            ops.constant(scale.astype(np.float32)))
        op.input(1).replace_source_output(decompressed.output(0))
    model.validate_nodes_and_infer_types()  # type: ignore[attr-defined]


def _labelled_ir(model: object, path: Path, fp16: bool) -> None:
    import openvino as ov

    model_info.write(model, EFFICIENTNET_LITE, imagenet_labels(), task="Classification")
    ov.save_model(model, str(path), compress_to_fp16=fp16)


def main(argv: list[str] | None = None) -> int:
    import openvino as ov

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True, help="folder to write")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("xaigraph.data") / MODEL_FILE) as p:
        bundled = onnx.load(str(p))
    fp32 = widened(bundled)
    onnx.save_model(fp32, str(out / "fp32.onnx"))
    photos(out / "photos", 16, seed=0)
    calibration = photos(out / "calibration", 16, seed=1)
    _labelled_ir(ov.convert_model(str(out / "fp32.onnx")), out / "fp16.xml", fp16=True)
    quantized(out / "fp32.onnx", out / "int8_qdq.onnx", calibration)
    qdq = onnx.load(str(out / "int8_qdq.onnx"))
    model_info.write(qdq, EFFICIENTNET_LITE, imagenet_labels(), task="Classification")
    onnx.save_model(qdq, str(out / "int8_qdq.onnx"))
    _labelled_ir(ov.convert_model(str(out / "int8_qdq.onnx")), out / "int8_fq.xml", fp16=False)
    wc = ov.convert_model(str(out / "fp32.onnx"))
    weight_compressed(wc)
    _labelled_ir(wc, out / "int8_wc.xml", fp16=False)
    for name in ("fp32.onnx", "fp16.xml", "int8_qdq.onnx", "int8_fq.xml", "int8_wc.xml"):
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

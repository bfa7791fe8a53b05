"""`model_info`: the Model API keys read as the Model API means them, xaigraph's own keys,
the input's size/layout/dtype, write -> read round trips (ONNX, IR, on disk, ONNX read by
OpenVINO), malformed values, flags, labels, and the bundled model's own metadata."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import openvino.opset13 as ops
import pytest
from onnx import TensorProto, helper
from PIL import Image

from xaigraph import model_info
from xaigraph.demo import EFFICIENTNET_LITE, MODEL_FILE
from xaigraph.errors import BadInputError
from xaigraph.labels import imagenet_labels, read_labels_file
from xaigraph.model_info import model_labels
from xaigraph.preprocess import Preprocess


def onnx_model(shape: list[int | str], elem: int = TensorProto.FLOAT,
               props: dict[str, str] | None = None) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", elem, shape)
    y = helper.make_tensor_value_info("y", elem, shape)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if props:
        helper.set_model_props(model, props)
    return model


def ir_model(shape: list[int], dtype: type = np.float32) -> ov.Model:
    x = ops.parameter(shape, dtype, name="x")
    return ov.Model([ops.result(ops.relu(x))], [x], "m")


MODEL_API = {"mean_values": "10 20 30", "scale_values": "2",
             "reverse_input_channels": "False", "resize_type": "fit_to_window_letterbox",
             "pad_value": "114", "labels": "cat tiger_cat dog", "model_type": "Classification"}
WANT = Preprocess(size=(16, 20), resize="letterbox", interpolation="bilinear",
                  mean=(10.0, 20.0, 30.0), std=(2.0, 2.0, 2.0), channels="BGR", layout="NCHW",
                  dtype="float32", pad_value=114)


@pytest.mark.parametrize("prefix", ["model_info.", "model_info ", ""])
def test_onnx_model_api_keys(prefix: str) -> None:
    model = onnx_model([1, 3, 16, 20], props={prefix + k: v for k, v in MODEL_API.items()})
    info = model_info.read(model)
    assert info.preprocess == WANT
    assert info.labels == ["cat", "tiger cat", "dog"] and info.task == "Classification"
    assert info.raw == MODEL_API


def test_ir_model_api_keys_and_framework_of_onnx(tmp_path: Path) -> None:
    model = ir_model([1, 3, 16, 20])
    for key, value in MODEL_API.items():
        model.set_rt_info(value, ["model_info", key])
    info = model_info.read(model)
    assert (info.preprocess, info.labels, info.task) == (WANT, ["cat", "tiger cat", "dog"],
                                                         "Classification")
    path = tmp_path / "m.onnx"
    onnx.save(onnx_model([1, 3, 16, 20], props={f"model_info.{k}": v
                                                for k, v in MODEL_API.items()}), path)
    read_by_ov = ov.Core().read_model(path)  # ONNX metadata as rt_info['framework']
    assert model_info.read(read_by_ov).preprocess == WANT


def test_precedence_dotted_then_spaced_then_bare() -> None:
    model = onnx_model([1, 3, 8, 8], props={"mean_values": "1", "model_info mean_values": "2",
                                            "model_info.mean_values": "3", "labels": "a b",
                                            "model_info labels": "c d"})
    info = model_info.read(model)
    assert info.preprocess is not None and info.preprocess.mean == (3.0, 3.0, 3.0)
    assert info.labels == ["c", "d"] and model_labels(model) == ["c", "d"]


def test_reverse_input_channels_means_the_model_wants_rgb() -> None:
    """The Model API converts its BGR input to RGB when the key is true, so True is RGB.
    Against a numpy re-implementation of the Model API on the same BGR pixels."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    bgr = rgb[..., ::-1]
    for flag in ("True", "False"):
        props = {"model_info.mean_values": "10 20 30", "model_info.scale_values": "2 4 8",
                 "model_info.reverse_input_channels": flag}
        info = model_info.read(onnx_model([1, 3, 16, 20], props=props))
        assert info.preprocess is not None
        got = info.preprocess.apply(Image.fromarray(rgb))[0].transpose(1, 2, 0)
        fed = bgr[..., ::-1] if flag == "True" else bgr  # what the Model API gives the model
        want = (fed.astype(np.float64) - [10, 20, 30]) / [2, 4, 8]
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize(("shape", "elem", "size", "layout", "channels", "dtype"), [
    ([1, 3, 16, 20], TensorProto.FLOAT, (16, 20), "NCHW", "RGB", "float32"),
    ([1, 16, 20, 3], TensorProto.FLOAT, (16, 20), "NHWC", "RGB", "float32"),
    ([1, 1, 16, 20], TensorProto.FLOAT16, (16, 20), "NCHW", "GRAY", "float16"),
    (["N", 3, "H", "W"], TensorProto.UINT8, (224, 224), "NCHW", "RGB", "uint8"),
    ([1, "H", 20, 3], TensorProto.FLOAT, (224, 20), "NHWC", "RGB", "float32"),
])
def test_input_geometry(shape: list, elem: int, size: tuple[int, int], layout: str,
                        channels: str, dtype: str) -> None:
    info = model_info.read(onnx_model(shape, elem))
    assert info.preprocess is None  # nothing recorded
    assert info.input is not None
    assert (info.input.size, info.input.layout, info.input.channels, info.input.dtype) == (
        size, layout, channels, dtype)


def test_dynamic_size_from_xaigraph_size_and_not_an_image() -> None:
    info = model_info.read(onnx_model(["N", 3, "H", "W"], props={"xaigraph.size": "300 200"}))
    assert info.input is not None and info.input.size == (300, 200)
    assert model_info.read(onnx_model([1, 6])).input is None
    assert model_info.read(onnx_model([1, 5, 8, 8])).input is None


def test_ir_input_geometry() -> None:
    info = model_info.read(ir_model([1, 12, 10, 3], np.uint8))
    assert info.input == Preprocess(size=(12, 10), layout="NHWC", dtype="uint8")


ROUND_TRIP = [
    EFFICIENTNET_LITE,
    Preprocess(size=(16, 20), resize="letterbox", interpolation="nearest", scale=1 / 255,
               mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), channels="BGR",
               pad_value=114),
    Preprocess(size=(16, 20), resize="fit_to_window", pad_value=7),
    Preprocess(size=(16, 20), resize="crop", interpolation="lanczos"),
    Preprocess(size=(16, 20), resize="stretch", scale=0.5, mean=(1.0, 2.0, 3.0)),
]
LABELS = ["tiger cat", "dog", "a_b"]  # "a_b" comes back as "a b": the Model API convention


@pytest.mark.parametrize("pre", ROUND_TRIP, ids=[p.resize for p in ROUND_TRIP])
def test_round_trip_onnx_and_ir(pre: Preprocess, tmp_path: Path) -> None:
    want = Preprocess.from_dict({**pre.as_dict(), "size": (16, 20)})
    back = ["tiger cat", "dog", "a b"]
    proto = model_info.write(onnx_model([1, 3, 16, 20]), pre, LABELS, task="Classification")
    assert (model_info.read(proto).preprocess, model_info.read(proto).labels) == (want, back)
    path = tmp_path / "m.onnx"
    onnx.save(proto, path)
    for loaded in (onnx.load(path), ov.Core().read_model(path)):
        info = model_info.read(loaded)
        assert (info.preprocess, info.labels, info.task) == (want, back, "Classification")
    ir = model_info.write(ir_model([1, 3, 16, 20]), pre, LABELS)
    assert model_info.read(ir).preprocess == want
    ov.save_model(ir, tmp_path / "m.xml")
    info = model_info.read(ov.Core().read_model(tmp_path / "m.xml"))
    assert (info.preprocess, info.labels) == (want, back)


def test_write_replaces_and_writes_model_api_meaning() -> None:
    proto = onnx_model([1, 3, 8, 8], props={"model_info.mean_values": "9", "other": "kept"})
    pre = Preprocess(size=(8, 8), scale=1 / 255, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    model_info.write(proto, pre, None)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["other"] == "kept" and [p.key for p in proto.metadata_props].count(
        "model_info.mean_values") == 1
    # Model API meaning: (pixel - mean) / scale on 0..255 pixels
    assert [float(v) for v in props["model_info.mean_values"].split()] == pytest.approx(
        [127.5] * 3)
    assert [float(v) for v in props["model_info.scale_values"].split()] == pytest.approx(
        [63.75] * 3)
    assert props["model_info.reverse_input_channels"] == "True"
    assert "model_info.labels" not in props


@pytest.mark.parametrize(("key", "value"), [
    ("mean_values", "1 2"), ("mean_values", "a b c"), ("scale_values", "0"),
    ("scale_values", "nan"), ("reverse_input_channels", "maybe"), ("resize_type", "zoom"),
    ("pad_value", "300"), ("pad_value", "1.5"), ("xaigraph.crop_fraction", "0"),
    ("xaigraph.interpolation", "cubic"), ("xaigraph.size", "10"), ("xaigraph.scale", "-1"),
    ("xaigraph.resize", "zoom"),
])
def test_malformed_value_names_the_key(key: str, value: str) -> None:
    model = onnx_model([1, 3, 8, 8], props={f"model_info.{key}": value})
    with pytest.raises(BadInputError) as info:
        model_info.read(model)
    message = str(info.value)
    assert key in message and repr(value)[1:-1] in message and "\n" not in message


def test_from_flags_over_the_model() -> None:
    base = model_info.read(onnx_model([1, 3, 16, 20], props={
        f"model_info.{k}": v for k, v in MODEL_API.items()})).preprocess
    got = model_info.from_flags(base, resize="center_crop", crop_fraction=0.5,
                                mean=(1.0, 1.0, 1.0), channels="RGB")
    assert got == Preprocess(size=(16, 20), resize="center_crop", crop_fraction=0.5,
                             mean=(1.0, 1.0, 1.0), std=(2.0, 2.0, 2.0), pad_value=114)
    assert model_info.from_flags(None) == Preprocess()
    with pytest.raises(BadInputError, match="crop_fraction"):
        model_info.from_flags(base, crop_fraction=2.0)


def test_labels_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("cat\n\n  tiger cat \ndog\n", encoding="utf-8")
    assert read_labels_file(path) == ["cat", "tiger cat", "dog"]
    with pytest.raises(BadInputError, match="cannot read it"):
        read_labels_file(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(BadInputError, match="no class names"):
        read_labels_file(tmp_path / "empty.txt")


def test_bundled_model_carries_its_preprocessing_and_labels() -> None:
    data = resources.files("xaigraph.data").joinpath(MODEL_FILE)
    with resources.as_file(data) as path:
        for model in (onnx.load(path), ov.Core().read_model(path)):
            info = model_info.read(model)
            assert info.preprocess == EFFICIENTNET_LITE
            assert info.labels == imagenet_labels()
            assert info.task == "Classification"

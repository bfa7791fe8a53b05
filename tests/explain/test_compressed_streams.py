"""A weight-compressed model (u8 codes decompressed in the graph, as NNCF writes them) gets
one CPU stream: OpenVINO 2026.4 computes it wrongly with two (THROUGHPUT, which explain and
RISE ask for), and explain then showed "plunger" for the bundled cat photo."""

from __future__ import annotations

from importlib import resources

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from PIL import Image

from xaigraph.demo import MODEL_FILE, preprocess
from xaigraph.session import Session, compressed_weights

TIGER_CAT = 282


def _bundled() -> ov.Model:
    return ov.Core().read_model(str(resources.files("xaigraph.data").joinpath(MODEL_FILE)))


def _weights(op: ov.Node) -> np.ndarray | None:
    """A Convolution's constant weights (the bundled model stores them f16 -> Convert)."""
    node = op.input_value(1).get_node()
    if node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    return node.get_data().astype(np.float32) if node.get_type_name() == "Constant" else None


def _u8_weights(model: ov.Model) -> ov.Model:
    """Every Convolution's weights as u8 codes per output channel: convert(q) - zero, times
    scale (NNCF's asymmetric 8-bit weight compression)."""
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Convolution" or (w := _weights(op)) is None:
            continue
        axes = tuple(range(1, w.ndim))
        low = np.minimum(w.min(axis=axes, keepdims=True), 0.0)
        high = np.maximum(w.max(axis=axes, keepdims=True), 0.0)
        scale = np.maximum(high - low, 1e-12) / 255.0
        zero = np.clip(np.round(-low / scale), 0, 255)
        q = np.clip(np.round(w / scale) + zero, 0, 255).astype(np.uint8)
        op.input(1).replace_source_output(ops.multiply(
            ops.subtract(ops.convert(ops.constant(q), "f32"),
                         ops.convert(ops.constant(zero.astype(np.uint8)), "f32")),
            ops.constant(scale.astype(np.float32))).output(0))
    model.validate_nodes_and_infer_types()
    return model


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return preprocess(Image.open(str(resources.files("xaigraph.data").joinpath("chelsea.png"))))


def test_a_weight_compressed_model_runs_on_one_stream(photo: np.ndarray) -> None:
    model = _u8_weights(_bundled())
    assert compressed_weights(model)
    session = Session.open(model, "openvino", config={"PERFORMANCE_HINT": "THROUGHPUT"})
    assert int(session._impl.compiled.get_property("NUM_STREAMS")) == 1  # type: ignore
    logits = session.run([photo])[0]
    latency = ov.Core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                    "INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(logits, latency([photo])[0], atol=1e-4)
    assert int(logits[0].argmax()) == TIGER_CAT


def test_other_models_keep_their_streams() -> None:
    model = _bundled()  # f16 weights -> Convert: not integer codes
    assert not compressed_weights(model)
    session = Session.open(model, "openvino", config={"PERFORMANCE_HINT": "THROUGHPUT"})
    assert int(session._impl.compiled.get_property("NUM_STREAMS")) >= 1  # type: ignore
    assert session._impl.compiled.get_property("NUM_STREAMS") == ov.Core().compile_model(
        model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"}).get_property("NUM_STREAMS")

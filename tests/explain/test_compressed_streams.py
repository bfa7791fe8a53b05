"""A weight-compressed model (u8 codes decompressed in the graph, as NNCF writes them) gets
one CPU stream: OpenVINO 2026.4 computes it wrongly with two (THROUGHPUT, which explain and
RISE ask for), and explain then showed "plunger" for the bundled cat photo."""

from __future__ import annotations

from importlib import resources

import numpy as np
import openvino as ov
import pytest
from PIL import Image

from tests.explain.compressed_models import u8_weights
from xaigraph.demo import MODEL_FILE, preprocess
from xaigraph.session import Session, compressed_weights

TIGER_CAT = 282


def _bundled() -> ov.Model:
    return ov.Core().read_model(str(resources.files("xaigraph.data").joinpath(MODEL_FILE)))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return preprocess(Image.open(str(resources.files("xaigraph.data").joinpath("chelsea.png"))))


def test_a_weight_compressed_model_runs_on_one_stream(photo: np.ndarray) -> None:
    model = u8_weights(_bundled(), ("Convolution",), with_zero=True)
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

"""The OpenVINO Model API opens an IR written by `xaigraph insert --preprocess
--feature-vector` unchanged: `ClassificationModel.create_model` picks the wrapper from the
`model_type` xaigraph records, reads the preprocessing and labels from its `model_info` keys,
and returns the `saliency_map` and `feature_vector` xaigraph wrote, equal to a local run of
the same file on the tensor that preprocessing makes. Likewise `DetectionModel` (its `SSD`
wrapper) for a single-stage detector with the Model API's output layout (`boxes [N, M, 5]`,
`labels [N, M]`) augmented with detclassprobabilitymap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest
from click.testing import CliRunner
from PIL import Image

from tests import tiny_onnx
from tests.extras import require
from xaigraph import model_info
from xaigraph.cli import cli
from xaigraph.session import Session

cv2 = require("cv2")
require("model_api")
from model_api.adapters import OpenvinoAdapter  # noqa: E402
from model_api.models import ClassificationModel, DetectionModel  # noqa: E402

DATA = Path(model_info.__file__).parent / "data"
pytestmark = pytest.mark.slow  # an insert and three compilations of EfficientNet-Lite0


@pytest.fixture(scope="module")
def augmented(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("modelapi") / "lite0.xml"
    result = CliRunner().invoke(cli, ["insert", str(DATA / "efficientnet_lite0.onnx"), "-o",
                                      str(out), "--preprocess", "--feature-vector", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["feature_vector"]["passed"]
    return out


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 224 x 224 crop of the bundled photo: the model's own size, so that the Model API's
    resize leaves it as it is and the reference needs no resize of its own."""
    path = tmp_path_factory.mktemp("photo") / "cat224.png"
    with Image.open(DATA / "chelsea.png") as img:
        img.convert("RGB").crop((120, 20, 344, 244)).save(path)
    return path


def f32_model(path: Path, wrapper: type = ClassificationModel, **configuration: object
              ) -> ClassificationModel:
    """`create_model` on an adapter compiled with f32 precision (the CPU's default may be
    bf16, which a comparison to 1e-5 cannot take)."""
    adapter = OpenvinoAdapter(ov.Core(), str(path), device="CPU",
                              plugin_config={"INFERENCE_PRECISION_HINT": "f32"})
    return wrapper.create_model(adapter, configuration=configuration)


def test_create_model_reads_what_xaigraph_recorded(augmented: Path) -> None:
    model = ClassificationModel.create_model(str(augmented), device="CPU")
    recorded = model_info.read(ov.Core().read_model(augmented))
    assert type(model).__name__ == "ClassificationModel"
    assert recorded.task == "Classification" and recorded.preprocess is not None
    assert recorded.labels is not None and len(recorded.labels) == 1000
    # Model API splits labels at spaces (xaigraph writes a space inside a name as `_`)
    assert model.params.labels == [name.replace(" ", "_") for name in recorded.labels]
    assert model.params.mean_values == [127.0] * 3 and model.params.scale_values == [128.0] * 3
    assert model.params.reverse_input_channels is True
    assert model.params.resize_type == "crop"
    assert "saliency_map" in model.out_layer_names and "feature_vector" in model.out_layer_names


def test_results_equal_a_local_run(augmented: Path, photo: Path) -> None:
    model = f32_model(augmented, output_raw_scores=True, topk=3)
    bgr = cv2.imread(str(photo))
    result = model(bgr)
    # the reference: the same IR on the tensor the recorded preprocessing makes, by hand
    rgb = np.asarray(Image.open(photo).convert("RGB"), np.float32)
    x = ((rgb - 127.0) / 128.0).transpose(2, 0, 1)[None]
    session = Session.open(augmented)
    logits, vector, maps = session.run([x], outputs=["logits", "feature_vector",
                                                     "saliency_map"])
    assert result.saliency_map.dtype == np.uint8 and result.saliency_map.shape == (1, 1000, 7, 7)
    off = np.abs(result.saliency_map.astype(int) - maps.astype(int))
    assert off.max() <= 1 and np.count_nonzero(off) <= maps.size // 1000  # rounding to u8
    np.testing.assert_allclose(result.feature_vector, vector, rtol=1e-5, atol=1e-5)
    probs = np.exp(logits[0] - logits[0].max())
    probs /= probs.sum()
    np.testing.assert_allclose(result.raw_scores, probs, rtol=1e-3, atol=1e-5)
    best = np.argsort(-probs)[:3]
    assert [label.id for label in result.top_labels] == list(best)
    assert result.top_labels[0].name == model.params.labels[best[0]]


def test_the_default_model_runs_the_photo(augmented: Path) -> None:
    """As a user opens it (the device's default precision): the map of the top class is the
    one of the model's output, u8."""
    model = ClassificationModel.create_model(str(augmented), device="CPU")
    result = model(cv2.imread(str(DATA / "chelsea.png")))
    assert result.saliency_map.shape == (1, 1000, 7, 7) and result.feature_vector.shape == (1,
                                                                                           1280)
    top = result.top_labels[0].id
    assert result.saliency_map[0, top].max() == 255  # scaled in the graph: max at 255


def test_detection_model_returns_the_saliency_map(tmp_path: Path) -> None:
    source, out = tmp_path / "det.onnx", tmp_path / "det.xml"
    onnx.save_model(tiny_onnx.modelapi_detector(), str(source))
    result = CliRunner().invoke(cli, ["insert", str(source), "-o", str(out), "-m",
                                      "detclassprobabilitymap", "--preprocess", "--resize",
                                      "stretch"])
    assert result.exit_code == 0, result.output
    model = f32_model(out, DetectionModel, confidence_threshold=0.5)
    assert type(model).__name__ == "SSD"  # from the model_type xaigraph carried over
    rgb = np.random.default_rng(3).integers(0, 256, (tiny_onnx.SIZE, tiny_onnx.SIZE, 3),
                                            dtype=np.uint8)  # the model's size: no resize
    found = model(np.ascontiguousarray(rgb[:, :, ::-1]))  # the Model API takes BGR
    x = rgb.astype(np.float32).transpose(2, 0, 1)[None]  # recorded: mean 0, std 1, RGB
    boxes, labels, maps = Session.open(out).run([x], outputs=["boxes5", "labels",
                                                              "saliency_map"])
    assert found.saliency_map.dtype == np.uint8
    assert found.saliency_map.shape == maps.shape == (1, tiny_onnx.DET_CLASSES, 8, 8)
    np.testing.assert_array_equal(found.saliency_map, maps)
    # its detections (after its own area filter and NMS) are rows of the model's outputs
    assert len(found.labels) > 0
    for label, score in zip(found.labels, found.scores, strict=True):
        rows = (labels[0] == label) & np.isclose(boxes[0, :, 4], score, rtol=1e-5, atol=1e-6)
        assert rows.any() and score > 0.5

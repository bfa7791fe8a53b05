"""The bundled demo: EfficientNet-Lite0 + ReciproCAM on the photo of Chelsea the cat.

The demo runs once per module (a few seconds); the checks read its files and compare with an
independent run of the bundled ONNX model in ONNX Runtime. No torch here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest
from PIL import Image

from xaigraph.demo import crop_box, preprocess, run_demo
from xaigraph.errors import BadInputError
from xaigraph.overlay import colorize, overlay, panel

CAT_LABELS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
# Chelsea's face (eyes, nose, muzzle, cheeks) in the 451x300 photo, read off the PNG; the
# blurred background lies right of x = 400 and in the top corners.
FACE = (90, 40, 340, 290)  # left, top, right, bottom


def _data(name: str) -> Path:
    return Path(str(resources.files("xaigraph.data").joinpath(name)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo") / "out"  # does not exist yet: run_demo creates it
    return out, run_demo(out)


@pytest.fixture(scope="module")
def photo_input() -> np.ndarray:
    with Image.open(_data("chelsea.png")) as img:
        return preprocess(img)


@pytest.fixture(scope="module")
def ir_outputs(
    demo: tuple[Path, dict[str, Any]], photo_input: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(logits, saliency_map) of the saved IR, read and run by a fresh OpenVINO runtime."""
    out, _ = demo
    core = ov.Core()
    model = core.read_model(str(out / "efficientnet_lite0_xai.xml"))
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled([photo_input])
    return (np.asarray(result[compiled.outputs[0]]),
            np.asarray(result[compiled.output("saliency_map")]))


def test_preprocess_geometry_and_range(photo_input: np.ndarray) -> None:
    assert crop_box(451, 300) == (95, 19, 357, 281)  # centred 262 = 224/256 * 300 square
    assert photo_input.shape == (1, 3, 224, 224)
    assert photo_input.dtype == np.float32
    assert photo_input.flags.c_contiguous
    assert -1.0 <= photo_input.min() < -0.5 and 0.5 < photo_input.max() <= 1.0  # (x-127)/128


def test_demo_writes_its_files(demo: tuple[Path, dict[str, Any]]) -> None:
    out, summary = demo
    for name in ("efficientnet_lite0_xai.xml", "efficientnet_lite0_xai.bin",
                 "chelsea_saliency.png", "summary.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["validation"]["passed"] is True
    assert summary["target_layer"]
    assert summary["saliency_map"]["shape"] == [1, 1000, 7, 7]
    assert len(summary["top5"]) == 5
    probs = [t["probability"] for t in summary["top5"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
    with Image.open(out / "chelsea_saliency.png") as png:
        assert png.mode == "RGB"
        assert png.width > 2 * 451 and png.height > 300


def test_top1_is_a_cat_and_its_map_is_scaled(
    demo: tuple[Path, dict[str, Any]], ir_outputs: tuple[np.ndarray, np.ndarray]
) -> None:
    _, summary = demo
    logits, saliency = ir_outputs
    top1 = summary["top5"][0]
    assert top1["label"] in CAT_LABELS, summary["top5"]
    assert int(np.argmax(logits[0])) == top1["index"] == summary["saliency_map"]["class_index"]
    assert saliency.dtype == np.uint8
    assert saliency.shape == (1, 1000, 7, 7)
    class_map = saliency[0, top1["index"]]
    assert int(class_map.min()) == 0 and int(class_map.max()) == 255


def test_map_class_matches_onnx_runtime(
    demo: tuple[Path, dict[str, Any]],
    ir_outputs: tuple[np.ndarray, np.ndarray],
    photo_input: np.ndarray,
) -> None:
    """Independent of OpenVINO and xaigraph: the bundled ONNX model in ONNX Runtime."""
    _, summary = demo
    session = ort.InferenceSession(str(_data("efficientnet_lite0.onnx")),
                                   providers=["CPUExecutionProvider"])
    (ort_logits,) = session.run(["logits"], {"image": photo_input})
    assert int(np.argmax(ort_logits[0])) == summary["saliency_map"]["class_index"]
    np.testing.assert_allclose(ir_outputs[0], ort_logits, atol=1e-3, rtol=0)


def test_saliency_peak_is_on_the_cat(
    demo: tuple[Path, dict[str, Any]], ir_outputs: tuple[np.ndarray, np.ndarray]
) -> None:
    _, summary = demo
    class_map = ir_outputs[1][0, summary["saliency_map"]["class_index"]]
    row, col = np.unravel_index(int(np.argmax(class_map)), class_map.shape)
    assert [int(row), int(col)] == summary["saliency_map"]["peak"]
    left, top, right, bottom = crop_box(451, 300)  # the map covers the crop the model saw
    x = left + (col + 0.5) / class_map.shape[1] * (right - left)
    y = top + (row + 0.5) / class_map.shape[0] * (bottom - top)
    fl, ft, fr, fb = FACE
    assert fl <= x <= fr and ft <= y <= fb, f"peak at ({x:.0f}, {y:.0f}) in the photo"


def test_existing_outputs_need_force(demo: tuple[Path, dict[str, Any]]) -> None:
    out, _ = demo
    with pytest.raises(BadInputError, match="output exists"):
        run_demo(out)  # refused before any work is done


def test_activationmap_demo_has_one_class_free_map(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, method="activationmap")
    sal = summary["saliency_map"]
    assert sal["shape"] == [1, 7, 7] and sal["dtype"] == "uint8"
    assert sal["class_index"] is None and (sal["min"], sal["max"]) == (0, 255)
    assert summary["top5"][0]["label"] in CAT_LABELS
    assert (tmp_path / "chelsea_saliency.png").is_file()


def test_overlay_pictures() -> None:
    ramp: np.ndarray = np.arange(256, dtype=np.uint8)[None, :].repeat(2, axis=0)
    rgb = colorize(ramp)
    assert rgb.shape == (2, 256, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 2] > 100 and rgb[0, 0, 0] == 0  # low: blue
    assert rgb[0, 255, 0] > 100 and rgb[0, 255, 2] == 0  # high: red
    assert rgb[0, 128, 1] == 255  # middle: green at full
    photo = Image.new("RGB", (40, 30), (200, 200, 200))
    small = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    assert overlay(photo, small).size == (40, 30)
    boxed = np.asarray(overlay(photo, small, box=(10, 5, 30, 25)))
    assert tuple(boxed[0, 0]) == (90, 90, 90)  # outside the box: dimmed, not coloured
    picture = panel(photo, small, "a title", box=(10, 5, 30, 25))
    assert picture.width >= 80 and picture.height > 30


def test_runtime_does_not_import_torch() -> None:
    code = ("import sys, xaigraph, xaigraph.demo, xaigraph.overlay; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

"""detclassprobabilitymap on tiny single-stage detectors built in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xaigraph
from tests.conftest import image, run
from tests.integration import tiny_models
from tests.integration.test_onnx import ort_run


@pytest.fixture(scope="module")
def detector_file(exported):  # type: ignore[no-untyped-def]
    def get(anchors: int, route: str) -> Path:
        return exported(f"det{anchors}", lambda: tiny_models.TinyDetector(anchors), route)

    return get


@pytest.mark.parametrize("route", ["ov_dynbatch", "ov_static", "onnx13", "onnx17"])
@pytest.mark.parametrize("anchors", [3, 1])
def test_detclassprobabilitymap_matches_numpy(detector_file, route: str,  # type: ignore[no-untyped-def]
                                              anchors: int) -> None:
    path = detector_file(anchors, route)
    info = xaigraph.inspect(path)
    assert info["detector"].startswith(f"2 levels, {tiny_models.DET_CLASSES} classes")
    assert info["methods"]["detclassprobabilitymap"]["applies"]
    assert "detector" in info["methods"]["reciprocam"]["reason"]
    batch = 1 if route == "ov_static" else 2
    x = image(batch, seed=31)
    ref = tiny_models.reference_detclassprob(tiny_models.TinyDetector(anchors), x)
    for fmt in (["ir", "onnx"] if route.startswith("onnx") else ["ir"]):
        result = xaigraph.insert(path, "detclassprobabilitymap", scaling=False,
                                 output_format=fmt)
        assert result.report["validation"]["passed"]
        outs = run(result.model, x) if fmt == "ir" else ort_run(result.model, x)
        assert len(outs) == 3  # class logits, boxes, saliency_map
        assert outs[-1].shape == ref.shape == (batch, tiny_models.DET_CLASSES, 8, 8)
        np.testing.assert_allclose(outs[-1], ref, rtol=1e-4, atol=1e-6)


def test_levels_by_name_with_num_anchors(detector_file) -> None:  # type: ignore[no-untyped-def]
    path = detector_file(3, "onnx17")
    auto = xaigraph.inspect(path)
    names = [part.split(" [")[0] for part in auto["detector"].split(": ", 1)[1].split(", ")]
    result = xaigraph.insert(path, "detclassprobabilitymap", scaling=False,
                             target_layer=",".join(reversed(names)), num_anchors=3)
    x = image(2, seed=4)
    ref = tiny_models.reference_detclassprob(tiny_models.TinyDetector(3), x)
    np.testing.assert_allclose(run(result.model, x)[-1], ref, rtol=1e-4, atol=1e-6)
    assert "detect-target{layer=" in result.report["pipeline"]


def test_classifier_methods_refuse_a_detector(detector_file) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(xaigraph.MethodError, match="detclassprobabilitymap"):
        xaigraph.insert(detector_file(3, "onnx17"), "reciprocam")

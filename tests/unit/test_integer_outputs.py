"""An integer output is never class scores: a single-stage detector with the Model API's
output layout (`boxes [N, M, 5]` and int64 `labels [N, M]`) is analysed as a detector, not
as a classifier whose `[N, K]` output is its labels (which refused detclassprobabilitymap
before: "the model has a classification output")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

import xaigraph
from tests import tiny_onnx
from tests.conftest import image
from xaigraph.session import Session


def test_labels_output_is_not_class_scores(tmp_path: Path) -> None:
    path = tmp_path / "det.onnx"
    onnx.save_model(tiny_onnx.modelapi_detector(), str(path))
    info = xaigraph.inspect(path)
    assert info["detector"].startswith(f"2 levels, {tiny_onnx.DET_CLASSES} classes")
    assert info["methods"]["detclassprobabilitymap"]["applies"]
    result = xaigraph.insert(path, "detclassprobabilitymap", scaling=False)
    assert result.report["validation"]["passed"]
    # the same maps as the plain detector's, whose only outputs are the raw scores and boxes
    plain = tmp_path / "plain.onnx"
    onnx.save_model(tiny_onnx.detector(), str(plain))
    x = image(2, seed=8)
    want = Session.open(xaigraph.insert(plain, "detclassprobabilitymap", scaling=False).model)
    got = Session.open(result.model).run([x], outputs=["saliency_map"])[0]
    np.testing.assert_allclose(got, want.run([x], outputs=["saliency_map"])[0], rtol=1e-6,
                               atol=1e-7)

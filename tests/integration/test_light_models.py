"""The nine light ONNX classifiers shipped inside the `onnx` package insert and validate with
both methods; ReciproCAM matches a brute-force re-run of each model's own head. Their weights
are constant (each a Broadcast of one value: every class scores alike), so the sanity checks
refuse their ReciproCAM maps (the same for every class) by default; the insertion itself is
checked with `--sanity warn`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xaigraph
from tests.conftest import LIGHT_MODELS, image, run
from tests.integration import reference
from xaigraph.errors import SanityError
from xaigraph.model_io import load_model


def test_all_nine_are_there() -> None:
    assert len(LIGHT_MODELS) == 9


@pytest.mark.parametrize("path", LIGHT_MODELS, ids=lambda p: p.stem)
@pytest.mark.parametrize("method", ["reciprocam", "activationmap"])
def test_light_model_inserts_and_validates(path: Path, method: str) -> None:
    result = xaigraph.insert(path, method, sanity="warn")
    report = result.report
    if method == "reciprocam":  # what the default level refuses, written anyway
        assert any("the same for every class" in w for w in report["sanity"]["warnings"])
    assert report["status"] == "inserted"
    assert report["validation"]["passed"] is True
    runs = report["validation"]["runs"]
    assert runs and all(o["ok"] for r in runs for o in r["outputs"])
    sal = result.model.outputs[-1]
    assert sal.get_names() == {"saliency_map"}
    assert sal.get_element_type().get_type_name() == "u8"
    expected_rank = 4 if method == "reciprocam" else 3
    assert sal.get_partial_shape().rank.get_length() == expected_rank


@pytest.mark.parametrize("path", LIGHT_MODELS, ids=lambda p: p.stem)
def test_light_model_reciprocam_matches_brute_force(path: Path) -> None:
    result = xaigraph.insert(path, "reciprocam", scaling=False, validate=False, sanity="off")
    x = image(1, 224, seed=3)
    got = run(result.model, x)[-1]
    original = load_model(path).model
    ref = reference.brute_force(original, result.report["target"]["name"], x)
    assert got.shape == ref.shape
    span = float(ref.max() - ref.min())
    err = float(np.max(np.abs(got - ref)))
    assert err <= 1e-4 * max(span, 1e-6), f"max diff {err:.3g}, map range {span:.3g}"


@pytest.mark.parametrize("path", LIGHT_MODELS[:3], ids=lambda p: p.stem)
def test_light_model_reciprocam_is_refused_by_default(path: Path) -> None:
    with pytest.raises(SanityError) as caught:
        xaigraph.insert(path, "reciprocam")
    text = str(caught.value)
    assert "the reciprocam map is the same for every" in text
    assert "the same for every class on every probe" in text
    assert "every learned layer's weights are constant" in text
    assert text.endswith("--sanity warn to write it anyway")

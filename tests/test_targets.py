"""--targets: maps for each image's top-k classes, or for a fixed list, plus their indices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import xaigraph
from tests.conftest import LIGHT_MODELS, image, run
from tests.test_onnx import ort_run
from xaigraph.cli import cli


def _outputs(result: xaigraph.InsertResult, x: np.ndarray) -> list[np.ndarray]:
    return run(result.model, x) if result.report["format"] == "ir" else ort_run(result.model, x)


@pytest.mark.parametrize("fmt", ["ir", "onnx"])
@pytest.mark.parametrize("method", ["reciprocam", "cam"])
def test_topk_keeps_each_images_best_classes(tiny_file: Callable[..., Path], fmt: str,
                                              method: str) -> None:
    path = tiny_file("gap_fc", True, "onnx17")
    x = image(3, seed=17)
    full = _outputs(xaigraph.insert(path, method, scaling=False, output_format=fmt), x)
    probs, all_maps = full[0], full[-1]
    result = xaigraph.insert(path, method, scaling=False, output_format=fmt, targets="topk:3")
    names = [p.name for p in result.backend.outputs(result.model)]
    assert names[-2:] == ["saliency_map", "saliency_classes"]
    outs = _outputs(result, x)
    maps, classes = outs[-2], outs[-1]
    assert classes.dtype == np.int64 and classes.shape == (3, 3)
    np.testing.assert_array_equal(classes, np.argsort(-probs, axis=1)[:, :3])
    np.testing.assert_allclose(maps, np.take_along_axis(all_maps, classes[:, :, None, None], 1),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs[0], probs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", ["ir", "onnx"])
def test_fixed_class_list(tiny_file: Callable[..., Path], fmt: str) -> None:
    path = tiny_file("maxpool_view", False, "onnx13")
    x = image(2, seed=2)
    all_maps = _outputs(xaigraph.insert(path, "reciprocam", output_format=fmt), x)[-1]
    result = xaigraph.insert(path, "reciprocam", output_format=fmt, targets="4,0,2")
    outs = _outputs(result, x)
    np.testing.assert_array_equal(outs[-1], [[4, 0, 2], [4, 0, 2]])
    assert outs[-2].dtype == np.uint8
    np.testing.assert_array_equal(outs[-2], all_maps[:, [4, 0, 2]])  # scaled per map: same
    assert result.report["pipeline"].startswith(
        "detect-target,insert-saliency{method=reciprocam},select-classes{targets=4 0 2}")


def test_topk_on_an_opset_9_onnx_model() -> None:
    """No GatherElements before opset 11: the selection is a one-hot product instead."""
    path = next(p for p in LIGHT_MODELS if "squeezenet" in p.stem)
    x = image(1, 224, seed=1)
    full = ort_run(xaigraph.insert(path, "reciprocam", scaling=False,
                                   output_format="onnx").model, x)
    result = xaigraph.insert(path, "reciprocam", scaling=False, output_format="onnx",
                             targets="topk:4")
    assert [o.version for o in result.model.opset_import] == [9]
    outs = ort_run(result.model, x)
    scores = full[0].reshape(1, -1)
    top = outs[-1]
    assert top.shape == (1, 4)
    assert np.all(np.sort(scores[0, top[0]])[::-1] >= np.sort(scores[0])[::-1][3] - 1e-6)
    np.testing.assert_allclose(outs[-2], np.take_along_axis(full[-1], top[:, :, None, None], 1),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("spec", "fragment"), [
    ("topk:0", "give topk:K"), ("first", "give topk:K"), ("topk:9", "the model has 5 classes"),
    ("1,7", "class 7: the model has 5 classes"),
])
def test_bad_targets(tiny_file: Callable[..., Path], tmp_path: Path, spec: str,
                     fragment: str) -> None:
    result = CliRunner().invoke(cli, ["insert", str(tiny_file("gap_fc", False, "onnx13")),
                                      "-o", str(tmp_path / "m.xml"), "--targets", spec])
    assert result.exit_code == 2
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.xml").exists()


def test_targets_need_a_per_class_method(tiny_file: Callable[..., Path]) -> None:
    with pytest.raises(xaigraph.MethodError, match="per-class"):
        xaigraph.insert(tiny_file("gap_fc", False, "onnx13"), "activationmap",
                        targets="topk:2")

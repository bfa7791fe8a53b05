"""--targets: maps for each image's top-k classes, or for a fixed list, plus their indices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import xaigraph
from tests.conftest import LIGHT_MODELS, image, run
from tests.integration import tiny_models
from tests.integration.test_onnx import ort_run
from tests.integration.test_reciprocam import assert_close_to_reference
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
    assert names[-2:] == ["saliency_classes", "saliency_map"]
    outs = _outputs(result, x)
    classes, maps = outs[-2], outs[-1]
    assert classes.dtype == np.int64 and classes.shape == (3, 3)
    np.testing.assert_array_equal(classes, np.argsort(-probs, axis=1)[:, :3])
    np.testing.assert_allclose(maps, np.take_along_axis(all_maps, classes[:, :, None, None], 1),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs[0], probs, rtol=1e-5, atol=1e-6)


def _class_products(result: xaigraph.InsertResult) -> list[int]:
    """Batch sizes (at the probe input, batch 1) of the matrix products that make scores
    for all classes in the augmented model."""
    view = result.backend.build_view(result.model)
    return [op.outputs[0].probe[0] for op in view.ops.values()
            if "matrix" in op.attrs and op.outputs[0].probe is not None
            and op.outputs[0].probe[-1] == tiny_models.CLASSES]


@pytest.mark.parametrize(("head", "route", "fmt"), [
    ("gap_fc", "onnx17", "ir"), ("gap_fc", "onnx17", "onnx"), ("gap_fc", "ov_dynbatch", "ir"),
    ("gap_view", "onnx13", "onnx"), ("gap_mlp", "onnx17", "onnx"),
    ("gap_mlp", "ov_dynbatch", "ir"),
])
def test_topk_runs_only_the_chosen_rows_of_the_classifier(
    tiny_file: Callable[..., Path], head: str, route: str, fmt: str
) -> None:
    """A head ending in a linear layer: the maps of the chosen classes come from their rows
    of the weight; the product with every class's row runs on the images only."""
    x = image(3, seed=5)
    result = xaigraph.insert(tiny_file(head, True, route), "reciprocam", scaling=False,
                             output_format=fmt, targets="topk:2")
    assert "chosen classes' rows of the classifier" in result.report["form"]
    assert _class_products(result) == [1]
    outs = _outputs(result, x)
    classes, maps = outs[-2], outs[-1]
    ref = tiny_models.brute_force_reciprocam(tiny_models.Tiny(head, True), x)
    assert_close_to_reference(maps, np.take_along_axis(ref, classes[:, :, None, None], 1))
    np.testing.assert_array_equal(classes, np.argsort(-outs[0], axis=1)[:, :2])


@pytest.mark.parametrize("fmt", ["ir", "onnx"])
def test_cam_for_a_class_list_uses_its_rows(tiny_file: Callable[..., Path], fmt: str) -> None:
    model = tiny_models.Tiny("gap_fc", False)
    x = image(2, seed=8)
    result = xaigraph.insert(tiny_file("gap_fc", False, "onnx17"), "cam", scaling=False,
                             output_format=fmt, targets="3,1")
    assert "chosen classes' rows" in result.report["form"]
    assert _class_products(result) == [1]
    weights = model.fc.weight.detach().double().numpy()[[3, 1]]
    ref = np.einsum("kc,nchw->nkhw", weights, tiny_models.target_map(model, x))
    assert_close_to_reference(_outputs(result, x)[-1], ref)


def test_the_mosaic_form_computes_all_maps_then_picks(tiny_file: Callable[..., Path]) -> None:
    """Without global average pooling the head runs whole on the mosaics (ReLU between two
    linear layers): every class's map is computed, then the chosen ones kept."""
    result = xaigraph.insert(tiny_file("maxpool_fc", False, "onnx17"), "reciprocam",
                             scaling=False, targets="topk:2")
    assert result.report["form"].endswith("the chosen classes' maps are then kept")


@pytest.mark.parametrize("fmt", ["ir", "onnx"])
def test_fixed_class_list(tiny_file: Callable[..., Path], fmt: str) -> None:
    path = tiny_file("maxpool_view", False, "onnx13")
    x = image(2, seed=2)
    all_maps = _outputs(xaigraph.insert(path, "reciprocam", output_format=fmt), x)[-1]
    result = xaigraph.insert(path, "reciprocam", output_format=fmt, targets="4,0,2")
    outs = _outputs(result, x)
    np.testing.assert_array_equal(outs[-2], [[4, 0, 2], [4, 0, 2]])
    assert outs[-1].dtype == np.uint8
    np.testing.assert_array_equal(outs[-1], all_maps[:, [4, 0, 2]])  # scaled per map: same
    assert result.report["pipeline"].startswith(
        "detect-target,select-classes{targets=4 0 2},insert-saliency{method=reciprocam}")


def test_topk_on_an_opset_9_onnx_model() -> None:
    """No GatherElements before opset 11: the selection is a one-hot product instead."""
    path = next(p for p in LIGHT_MODELS if "squeezenet" in p.stem)
    x = image(1, 224, seed=1)
    # constant weights: the sanity checks would refuse these maps; the selection is checked
    full = ort_run(xaigraph.insert(path, "reciprocam", scaling=False, output_format="onnx",
                                   sanity="off").model, x)
    result = xaigraph.insert(path, "reciprocam", scaling=False, output_format="onnx",
                             targets="topk:4", sanity="off")
    assert [o.version for o in result.model.opset_import] == [9]
    outs = ort_run(result.model, x)
    scores = full[0].reshape(1, -1)
    top = outs[-2]
    assert top.shape == (1, 4)
    assert np.all(np.sort(scores[0, top[0]])[::-1] >= np.sort(scores[0])[::-1][3] - 1e-6)
    np.testing.assert_allclose(outs[-1], np.take_along_axis(full[-1], top[:, :, None, None], 1),
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

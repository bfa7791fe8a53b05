"""An augmented model whose maps cover some classes only (`insert --targets`) is never asked
for a map it does not have: the targets it cannot give are refused in one line (exit 2),
nothing is written, and the maps it gives are those of the classes named."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import xaigraph
from xaigraph.cli import cli
from xaigraph.session import Session


def _augmented(cnn_file: Callable[..., Path], tmp_path: Path, targets: str) -> Path:
    out = tmp_path / f"aug_{targets.replace(':', '').replace(',', '_')}.onnx"
    result = xaigraph.insert(cnn_file("gap_fc", False, "onnx17"), "reciprocam",
                             targets=targets, output_format="onnx")
    xaigraph.save(result, out)
    return out


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    return path


def _explain(model: Path, photo: Path, out: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["explain", str(model), str(photo), "-o", str(out),
                                      "--no-overlay", *args])
    return result.exit_code, result.stderr


@pytest.mark.parametrize("asked", ["1", "predicted", "topk:2", "2,1"])
def test_fixed_classes_refuse_other_targets(cnn_file: Callable[..., Path], tmp_path: Path,
                                            asked: str) -> None:
    model = _augmented(cnn_file, tmp_path, "2,4")
    code, err = _explain(model, _photo(tmp_path), tmp_path / "out", "--targets", asked)
    assert code == 2, err
    assert err.count("\n") == 1 and "computes the maps of 2, 4 only" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("asked,classes", [("4", [4]), ("4,2", [4, 2]), ("all", [2, 4])])
def test_fixed_classes_give_the_maps_named(cnn_file: Callable[..., Path], tmp_path: Path,
                                           asked: str, classes: list[int]) -> None:
    model = _augmented(cnn_file, tmp_path, "2,4")
    photo = _photo(tmp_path)
    code, err = _explain(model, photo, tmp_path / "out", "--targets", asked, "--raw")
    assert code == 0, err
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").open()]
    assert [t["class"] for t in record["targets"]] == classes
    # each map is the model's map of that class (its saliency_classes row says where)
    classes_row, maps = Session.open(model, "onnxruntime").run(
        [_input(model, photo)], ["saliency_classes", "saliency_map"])
    row = [int(c) for c in classes_row[0]]
    for t in record["targets"]:
        raw = np.load(tmp_path / "out" / t["raw"])
        np.testing.assert_array_equal(raw, maps[0][row.index(t["class"])].astype(np.float32))


@pytest.mark.parametrize("asked,code", [("predicted", 0), ("topk:2", 0), ("topk:3", 2),
                                        ("1", 2), ("all", 2)])
def test_per_image_best_classes_refuse_what_they_may_not_have(
        cnn_file: Callable[..., Path], tmp_path: Path, asked: str, code: int) -> None:
    model = _augmented(cnn_file, tmp_path, "topk:2")
    got, err = _explain(model, _photo(tmp_path), tmp_path / "out", "--targets", asked)
    assert got == code, err
    if code == 2:
        assert "computes the maps of each image's 2 best classes only" in err, err


def _input(model: Path, photo: Path) -> np.ndarray:
    """The photo as the model's input `[1, C, H, W]`, as explain preprocesses it."""
    from xaigraph.explain import images
    from xaigraph.explain.plan import prepare

    spec = prepare(model, targets="all")
    return spec.preprocess.apply(images.load(photo))


def test_targets_all_on_a_thousand_classes_is_refused_without_max_maps(tmp_path: Path) -> None:
    import onnx

    from tests.explain.run_models import classifier

    model = tmp_path / "k1000.onnx"
    onnx.save(classifier(size=16, classes=1000), model)
    photo = _photo(tmp_path)
    for extra, code in (((), 2), (("--json",), 2), (("--max-maps", "1000"), 0)):
        got, err = _explain(model, photo, tmp_path / "out", "--targets", "all", *extra)
        assert got == code, err
        if code == 2:
            assert "asks for 1000 maps per image (1000 files for the 1 image given); " \
                   "pass --max-maps 1000" in err, err
            assert not (tmp_path / "out").exists()
    assert len(list((tmp_path / "out" / "maps").iterdir())) == 1000
    got, err = _explain(model, photo, tmp_path / "few", "--targets", "topk:3")
    assert got == 0, err

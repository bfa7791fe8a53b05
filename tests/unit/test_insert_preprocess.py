"""`xaigraph insert --preprocess` records the model's preprocessing with the flags over it,
and labels, in the output (IR and ONNX); without it nothing new is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest
from click.testing import CliRunner
from PIL import Image

from tests import fuzz_models
from xaigraph import api, model_info
from xaigraph.cli import cli
from xaigraph.preprocess import Preprocess

PHOTO = Path(api.__file__).parent / "data" / "chelsea.png"
FLAGS = ["--resize", "letterbox", "--pad-value", "114", "--interpolation", "bicubic",
         "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--scale", "1/255",
         "--bgr"]
WANT = Preprocess(size=(8, 8), resize="letterbox", interpolation="bicubic", scale=1 / 255,
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), channels="BGR",
                  pad_value=114)
NAMES = ["cat", "tiger cat", "dog", "bird", "fish"]  # fuzz_models.CLASSES = 5


def run(*args: str) -> tuple[int, dict, list[str]]:
    result = CliRunner().invoke(cli, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout), result.stderr.strip().splitlines()


def read_back(path: Path) -> model_info.ModelInfo:
    model = onnx.load(path) if path.suffix == ".onnx" else ov.Core().read_model(path)
    return model_info.read(model)


@pytest.fixture()
def labels_file(tmp_path: Path) -> Path:
    path = tmp_path / "names.txt"
    path.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("source", "suffix"), [("onnx", ".onnx"), ("onnx", ".xml"),
                                                ("ir", ".xml")])
def test_flags_and_labels_are_recorded(tmp_path: Path, labels_file: Path, source: str,
                                       suffix: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    model = (fuzz_models.write_onnx if source == "onnx" else fuzz_models.write_ir)(folder)
    out = tmp_path / f"out{suffix}"
    code, report, err = run("insert", str(model), "-o", str(out), "--preprocess", *FLAGS,
                            "--labels", str(labels_file))
    assert code == 0, err
    info = read_back(out)
    assert info.preprocess == WANT
    assert info.labels == NAMES
    assert report["model_info"] == {"preprocess": json.loads(json.dumps(WANT.as_dict())),
                                    "labels": 5}


def test_model_values_kept_under_flags(tmp_path: Path) -> None:
    proto = fuzz_models.onnx_classifier()
    onnx.helper.set_model_props(proto, {"model_info.mean_values": "10 20 30",
                                        "model_info.scale_values": "2",
                                        "model_info.labels": " ".join(n.replace(" ", "_")
                                                                     for n in NAMES)})
    path = tmp_path / "m.onnx"
    onnx.save(proto, path)
    out = tmp_path / "o.onnx"
    code, _, err = run("insert", str(path), "-o", str(out), "--preprocess", "--rgb",
                       "--resize", "crop")
    assert code == 0, err
    info = read_back(out)
    assert info.preprocess == Preprocess(size=(8, 8), resize="crop", mean=(10.0, 20.0, 30.0),
                                         std=(2.0, 2.0, 2.0))
    assert info.labels == NAMES


def test_without_preprocess_nothing_new_is_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    out = tmp_path / "o.onnx"
    code, report, err = run("insert", str(fuzz_models.write_onnx(folder)), "-o", str(out))
    assert code == 0, err
    assert "model_info" not in report
    assert model_info.read(onnx.load(out)).raw == {}


def test_flags_apply_to_image_samples(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    code, report, err = run("insert", str(fuzz_models.write_onnx(folder)), "-o",
                            str(tmp_path / "o.onnx"), "--sample", str(PHOTO), *FLAGS)
    assert code == 0, err
    assert "preprocessing flags" in report["samples"][0]["how"]
    (got,) = api.load_samples([PHOTO], folder / "tiny.onnx")  # the model's own: none
    assert not np.allclose(got, WANT.apply(Image.open(PHOTO)))


@pytest.mark.parametrize(("args", "fragment"), [
    (["--mean", "1,2,3"], "--mean is used with --preprocess"),
    (["--preprocess", "--labels", "NAMES4"], "4 class names to record (--labels, else the "
                                               "model's own) but the model has 5"),
    (["--preprocess", "--labels", "MISSING"], "cannot read it"),
    (["--sample", str(PHOTO), "--labels", "NAMES4"], "--labels is used with --preprocess"),
    (["--preprocess", "--crop-fraction", "0"], "--crop-fraction"),
    (["--preprocess", "--std", "1,0,1"], "divides by 0"),
])
def test_errors_are_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    names4 = tmp_path / "four.txt"
    names4.write_text("a\nb\nc\nd\n")
    args = [str(names4) if a == "NAMES4" else str(tmp_path / "nope.txt") if a == "MISSING"
            else a for a in args]
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(cli, ["insert", str(fuzz_models.write_onnx(folder)), "-o",
                                      str(out / "o.onnx"), *args])
    err = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and fragment in err[-1], err
    assert list(out.iterdir()) == []

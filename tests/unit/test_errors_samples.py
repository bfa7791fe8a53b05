"""`--sample` takes a .npy array or an image, and says in one line what else it must be
(item 9: 94d8f99 answered an image with numpy's pickle message)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from PIL import Image

from tests import fuzz_models
from xaigraph import api
from xaigraph.cli import cli
from xaigraph.errors import SampleError
from xaigraph.preprocess import Preprocess

PHOTO = Path(api.__file__).parent / "data" / "chelsea.png"


def run(*args: str) -> tuple[int, dict, list[str]]:
    result = CliRunner().invoke(cli, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout), result.stderr.strip().splitlines()


@pytest.fixture()
def ir(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return fuzz_models.write_ir(folder)


def test_image_sample_is_resized_and_scaled(ir: Path, tmp_path: Path) -> None:
    code, report, err = run("insert", str(ir), "-o", str(tmp_path / "o.xml"),
                            "--sample", str(PHOTO))
    assert code == 0, err
    assert [r["label"] for r in report["validation"]["runs"]] == ["random batch 1", "sample 1"]
    (sample,) = report["samples"]
    assert sample["shape"] == [1, 3, 8, 8]
    assert sample["how"] == ("image resized to 8x8, scaled to [0, 1] (the model records no "
                             "preprocessing)")
    # the array itself, against PIL and numpy directly
    (got,) = api.load_samples([PHOTO], ir)
    want = np.asarray(Image.open(PHOTO).convert("RGB").resize((8, 8), Image.Resampling.BILINEAR),
                      np.float32).transpose(2, 0, 1)[None] / 255
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_recorded_preprocessing_is_used(tmp_path: Path) -> None:
    """model_info mean/scale (OpenVINO Model API's keys; ONNX metadata model_info.*)."""
    proto = fuzz_models.onnx_classifier()
    onnx.helper.set_model_props(proto, {"model_info.mean_values": "10 20 30",
                                        "model_info.scale_values": "2"})
    path = tmp_path / "m.onnx"
    onnx.save_model(proto, str(path))
    (got,) = api.load_samples([PHOTO], path)
    pixels = Preprocess(size=(8, 8), resize="stretch").apply(Image.open(PHOTO))
    want = (pixels - np.array([10, 20, 30], np.float32)[None, :, None, None]) / 2
    np.testing.assert_allclose(got, want, rtol=1e-6)
    code, report, _ = run("insert", str(path), "-o", str(tmp_path / "o.onnx"),
                          "--sample", str(PHOTO))
    assert code == 0 and "model_info mean [10.0, 20.0, 30.0]" in report["samples"][0]["how"]


@pytest.mark.parametrize(("content", "fragment"), [
    ("npz", "is an .npz archive"),
    ("text", "is neither a .npy array nor an image"),
    ("pickle", "holds Python objects"),
    ("strings", "holds <U1 values, not numbers"),
])
def test_what_a_sample_must_be(ir: Path, tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / f"s.{content}"
    if content == "npz":
        np.savez(tmp_path / "s.npz", a=np.zeros(fuzz_models.INPUT_SHAPE, np.float32))
    elif content == "text":
        path.write_text("hello")
    elif content == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        path = path.with_name(path.name + ".npy")
    else:
        np.save(path, np.array(["a"]))
        path = path.with_name(path.name + ".npy")
    out = tmp_path / "out"
    out.mkdir()
    code, obj, err = run("insert", str(ir), "-o", str(out / "o.xml"), "--sample", str(path))
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert obj["error"]["kind"] == "bad-sample"
    assert "internal error" not in err[0] and "pickle=" not in err[0]
    assert list(out.iterdir()) == []


def test_missing_sample_and_wrong_shape(ir: Path, tmp_path: Path) -> None:
    code, obj, err = run("insert", str(ir), "-o", str(tmp_path / "o.xml"),
                         "--sample", str(tmp_path / "nope.npy"))
    assert code == 2 and obj["error"]["kind"] == "not-found"
    assert err == [f"xaigraph: error: cannot read sample {tmp_path / 'nope.npy'}: no such file "
                   "or folder"]
    np.save(tmp_path / "small.npy", np.zeros((2, 2), np.float32))
    code, obj, _ = run("insert", str(ir), "-o", str(tmp_path / "o.xml"),
                       "--sample", str(tmp_path / "small.npy"))
    assert code == 2 and obj["error"]["kind"] == "bad-sample"


def test_image_for_a_model_without_an_image_input(tmp_path: Path) -> None:
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 6], np.float32, name="x")
    model = ov.Model([ops.result(ops.relu(x))], [x], "vec")
    with pytest.raises(SampleError, match=r"does not take one \[N, 3, H, W\]"):
        api.load_samples([PHOTO], model)

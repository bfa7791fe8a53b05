"""`xaigraph strip`, `insert --replace` and inserting into augmented models, from the command
line, on exported tiny CNNs (issue 11, items 10 to 12): by every route, the exit codes, one
stderr line, nothing written on a refusal, and a stripped file equal to the original."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
import pytest
from click.testing import CliRunner

from tests.conftest import image
from tests.unit.stamp_graphs import ops_of
from xaigraph.cli import cli


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _ort(path: Path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return list(session.run(None, {session.get_inputs()[0].name: x}))


def _ov(path: Path, x: np.ndarray) -> list[np.ndarray]:
    compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(x)
    return [result[o] for o in compiled.outputs]


@pytest.fixture()
def augmented_onnx(tiny_file: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    """(the original .onnx, the .onnx reciprocam made of it)."""
    src = tiny_file("gap_fc", True, "onnx17")
    out = tmp_path / "aug.onnx"
    assert invoke("insert", str(src), "-o", str(out))[0] == 0
    return src, out


def test_an_augmented_onnx_read_as_ir_is_already_augmented(
        augmented_onnx: tuple[Path, Path], tmp_path: Path) -> None:
    _, aug = augmented_onnx
    out = tmp_path / "o.xml"
    code, stdout, stderr = invoke("insert", str(aug), "-o", str(out))
    assert (code, stderr) == (0, "")
    assert "already augmented by xaigraph" in stdout and "method reciprocam" in stdout
    assert not out.exists() and not out.with_suffix(".bin").exists()


@pytest.mark.parametrize("suffix", [".xml", ".onnx"])
def test_another_method_exits_2_unless_replace(augmented_onnx: tuple[Path, Path],
                                               tmp_path: Path, suffix: str) -> None:
    _, aug = augmented_onnx
    out = tmp_path / f"o{suffix}"
    code, stdout, stderr = invoke("insert", str(aug), "-o", str(out), "-m", "activationmap")
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert "already augmented" in stderr and "--replace" in stderr
    assert list(tmp_path.iterdir()) == [aug]
    code, stdout, _ = invoke("insert", str(aug), "-o", str(out), "-m", "activationmap",
                             "--replace", "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["replaced"]["method"] == "reciprocam" and report["method"] == "activationmap"
    x = image(2)
    outputs = _ov(out, x) if suffix == ".xml" else _ort(out, x)
    assert len(outputs) == 2 and outputs[-1].shape == (2, 8, 8)  # one activation map each


def test_strip_onnx_gives_back_the_original_file(augmented_onnx: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    src, aug = augmented_onnx
    out = tmp_path / "plain.onnx"
    code, stdout, stderr = invoke("strip", str(aug), "-o", str(out))
    assert (code, stderr) == (0, "")
    assert "stripped    reciprocam" in stdout and "validation  passed" in stdout
    original, stripped = onnx.load(str(src)), onnx.load(str(out))
    assert ops_of(stripped) == ops_of(original)
    assert not [p for p in stripped.metadata_props if p.key.startswith("xai.")]
    x = image(2, seed=3)
    np.testing.assert_array_equal(_ort(out, x)[0], _ort(src, x)[0])


def test_strip_an_onnx_model_to_ir(augmented_onnx: tuple[Path, Path], tmp_path: Path) -> None:
    src, aug = augmented_onnx
    out = tmp_path / "plain.xml"
    code, stdout, _ = invoke("strip", str(aug), "-o", str(out), "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["removed_outputs"] == ["saliency_map"] and report["validation"]["passed"]
    model = ov.Core().read_model(out)
    assert len(model.outputs) == 1 and not model.has_rt_info(["xai"])
    assert "xai" not in repr(model.get_rt_info())
    x = image(2, seed=4)
    np.testing.assert_allclose(_ov(out, x)[0], _ort(src, x)[0], atol=1e-5)


@pytest.mark.parametrize("targets", [None, "topk:2"])
def test_strip_ir_gives_back_the_original_file(tiny_file: Callable[..., Path], tmp_path: Path,
                                               targets: str | None) -> None:
    src = tiny_file("gap_fc", True, "ov_dynbatch")
    aug, out = tmp_path / "aug.xml", tmp_path / "plain.xml"
    extra = ["--targets", targets] if targets else []
    assert invoke("insert", str(src), "-o", str(aug), *extra)[0] == 0
    assert invoke("strip", str(aug), "-o", str(out))[0] == 0
    core = ov.Core()
    assert ops_of(core.read_model(out)) == ops_of(core.read_model(src))


def test_strip_refuses_a_plain_model(tiny_file: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "o.xml"
    code, stdout, stderr = invoke("strip", str(tiny_file("gap_fc", True, "ov_dynbatch")),
                                  "-o", str(out))
    assert code == 2 and stdout == "" and len(stderr.strip().splitlines()) == 1
    assert "is not augmented by xaigraph (it has no xaigraph stamp); nothing to strip" in stderr
    assert not out.exists()


def test_inspect_shows_the_stamp_and_the_original(augmented_onnx: tuple[Path, Path]) -> None:
    src, aug = augmented_onnx
    code, stdout, _ = invoke("inspect", str(aug))
    assert code == 0
    lines = stdout.splitlines()
    stamp = next(i for i, line in enumerate(lines) if line.startswith("stamp"))
    assert "augmented by xaigraph" in lines[stamp] and "method reciprocam" in lines[stamp]
    assert lines[stamp + 1].strip().startswith("pipeline detect-target,insert-saliency")
    _, plain, _ = invoke("inspect", str(src))
    after = [line for line in lines if line.startswith(("target", "head", "scores"))]
    assert after == [line for line in plain.splitlines()
                     if line.startswith(("target", "head", "scores"))]
    assert "xai/" not in "\n".join(lines[lines.index("candidates  (nearest the output first)"):])


def test_readme_python_lines(tiny_file: Callable[..., Path], tmp_path: Path) -> None:
    """The README's `strip` and `replace=True` lines, on a saved augmented model."""
    import xaigraph

    aug = xaigraph.save(xaigraph.insert(tiny_file("gap_fc", False, "onnx13")),
                        tmp_path / "model_xai.xml")
    plain = xaigraph.strip(aug)
    assert plain.report["validation"]["passed"] and len(plain.model.outputs) == 1
    again = xaigraph.insert(aug, method="activationmap", replace=True)
    assert again.changed and again.report["replaced"]["method"] == "reciprocam"

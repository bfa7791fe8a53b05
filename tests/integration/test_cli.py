"""The command line: happy paths, safety rules, and one clear line for every bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from click.testing import CliRunner
from xaigraph.passes import build_pipeline

import xaigraph.api
from tests.integration import tiny_models
from xaigraph.cli import cli
from xaigraph.pipeline import Pass, PassContext, PassManager, PassResult


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def ir(tiny_file: Callable[..., Path], tmp_path: Path) -> Path:
    """A private copy of a dynamic-batch IR (tests may break or delete its files)."""
    src = tiny_file("gap_fc", True, "ov_dynbatch")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(src, folder / "model.xml")
    shutil.copy(src.with_suffix(".bin"), folder / "model.bin")
    return folder / "model.xml"


def test_insert_writes_ir_and_reports(ir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xml"
    code, stdout, stderr = invoke("insert", str(ir), "-o", str(out), "--method", "reciprocam")
    assert code == 0, stderr
    assert out.exists() and out.with_suffix(".bin").exists()
    assert "validation  passed" in stdout
    assert "saliency_map" in stdout
    model = ov.Core().read_model(out)
    assert model.outputs[-1].get_names() == {"saliency_map"}


def test_insert_json(ir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xml"
    code, stdout, _ = invoke("insert", str(ir), "-o", str(out), "--method", "activationmap",
                             "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["status"] == "inserted"
    assert report["method"] == "activationmap"
    assert report["output"] == str(out)
    assert report["target"]["shape"] == "[1,12,8,8]"
    assert report["saliency_map"] == {"name": "saliency_map", "shape": "[?,8,8]", "type": "u8"}
    assert [r["label"] for r in report["validation"]["runs"]] == ["random batch 1",
                                                                  "random batch 2"]
    assert {"detect-target", "insert-saliency", "validate"} <= set(report["timings"])
    assert report["inputs"][0]["shape"] == "[?,3,16,16]"


def test_onnx_input_to_ir(tiny_file: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "out.xml"
    code, _, stderr = invoke("insert", str(tiny_file("gap_mlp", False, "onnx13")), "-o",
                             str(out))
    assert code == 0, stderr
    assert out.exists()


def test_target_layer_override(ir: Path, tmp_path: Path) -> None:
    info = xaigraph.api.inspect(ir)
    earlier = next(c for c in info["candidates"] if c["shape"] == "[1,8,16,16]")
    out = tmp_path / "out.xml"
    code, stdout, stderr = invoke("insert", str(ir), "-o", str(out), "--target-layer",
                                  earlier["name"], "--method", "activationmap", "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["target"]["name"] == earlier["name"]
    assert report["target"]["forced"] is True
    assert report["saliency_map"]["shape"] == "[?,16,16]"


def test_second_insert_is_a_no_op(ir: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.xml"
    assert invoke("insert", str(ir), "-o", str(first))[0] == 0
    second = tmp_path / "second.xml"
    code, stdout, _ = invoke("insert", str(first), "-o", str(second))
    assert code == 0
    assert "already augmented" in stdout
    assert not second.exists()


def test_existing_output_needs_force(ir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xml"
    out.write_text("precious")
    code, _, stderr = invoke("insert", str(ir), "-o", str(out))
    assert code == 2
    assert "--force" in stderr
    assert out.read_text() == "precious"
    code, _, _ = invoke("insert", str(ir), "-o", str(out), "--force")
    assert code == 0
    assert ov.Core().read_model(out).outputs[-1].get_names() == {"saliency_map"}


def test_input_is_never_overwritten(ir: Path) -> None:
    before = ir.read_bytes(), ir.with_suffix(".bin").read_bytes()
    code, _, stderr = invoke("insert", str(ir), "-o", str(ir), "--force")
    assert code == 2
    assert "refusing to overwrite the input" in stderr
    assert (ir.read_bytes(), ir.with_suffix(".bin").read_bytes()) == before


class CorruptOutput(Pass):
    """Test-only: scales the first original output by 1.01, which validation must catch."""

    name = "corrupt-output"

    def run(self, model: ov.Model, ctx: PassContext) -> PassResult:
        result = model.get_results()[0]
        source = result.input_value(0)
        names = source.get_names()
        source.get_tensor().set_names(set())
        scaled = ov.opset13.multiply(source, np.float32(1.01))
        scaled.output(0).get_tensor().set_names(names)
        result.input(0).replace_source_output(scaled.output(0))
        return PassResult(model, modified=True)


def test_validation_failure_exits_1_and_writes_nothing(
    ir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def corrupted(method: str, **kwargs: object) -> PassManager:
        passes = build_pipeline(method, **kwargs).passes  # type: ignore[arg-type]
        return PassManager([passes[0], CorruptOutput(), *passes[1:]])

    monkeypatch.setattr(xaigraph.api, "build_pipeline", corrupted)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, stderr = invoke("insert", str(ir), "-o", str(out_dir / "m.xml"))
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("xaigraph: error: validation failed: ")  # the sentence only
    assert list(out_dir.iterdir()) == []
    code, stdout, _ = invoke("insert", str(ir), "-o", str(out_dir / "m.xml"), "--json")
    assert code == 1
    where = json.loads(stdout)["error"]["pass"]  # the pass, and the passes that ran before
    assert where.startswith("validate (after ") and "corrupt-output" in where
    assert list(out_dir.iterdir()) == []


def test_interrupted_save_leaves_nothing(
    ir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = ov.save_model

    def save_then_interrupt(model: ov.Model, path: str, **kwargs: object) -> None:
        real_save(model, path, **kwargs)  # the temporary files exist now
        raise KeyboardInterrupt

    monkeypatch.setattr(ov, "save_model", save_then_interrupt)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, stderr = invoke("insert", str(ir), "-o", str(out_dir / "m.xml"))
    assert code == 130
    assert "interrupted" in stderr
    assert list(out_dir.iterdir()) == []


# -- bad input: one line on stderr, exit 2, no traceback, nothing written ---------------------


def _mlp_ir(folder: Path) -> Path:
    import torch

    model = ov.convert_model(tiny_models.MLP(), example_input=torch.randn(1, 12))
    path = folder / "mlp.xml"
    ov.save_model(model, str(path), compress_to_fp16=False)
    return path


def _bad_inputs(ir: Path, tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (extra CLI args after the model, expected fragment of the message)."""
    cases: dict[str, tuple[list[str], str]] = {}
    cases["missing model"] = ([str(tmp / "nope.xml")], "model file not found")
    pb = tmp / "model.pb"
    pb.write_bytes(b"\x00")
    cases["unsupported suffix"] = ([str(pb)], "unsupported model suffix '.pb'")
    bad_xml = tmp / "bad.xml"
    bad_xml.write_text(ir.read_text()[:300])
    cases["malformed xml"] = ([str(bad_xml)], "not well-formed XML")
    no_bin = tmp / "nobin" / "model.xml"
    no_bin.parent.mkdir()
    shutil.copy(ir, no_bin)
    cases["missing bin"] = ([str(no_bin)], "weights file not found")
    short = tmp / "short" / "model.xml"
    short.parent.mkdir()
    shutil.copy(ir, short)
    data = ir.with_suffix(".bin").read_bytes()
    short.with_suffix(".bin").write_bytes(data[: len(data) // 2])
    cases["truncated bin"] = ([str(short)], "is truncated")
    corrupt = tmp / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage\xff\xff\x01not a protobuf")
    cases["corrupt onnx"] = ([str(corrupt)], "is not a valid ONNX model")
    cases["no spatial map"] = ([str(_mlp_ir(tmp))], "no spatial feature map")
    cases["unknown layer"] = ([str(ir), "--target-layer", "relu_77"], "unknown target layer")
    cases["missing out folder"] = ([str(ir), "-o", str(tmp / "no" / "such" / "m.xml")],
                                   "output folder does not exist")
    return cases


BAD = ["missing model", "unsupported suffix", "malformed xml", "missing bin", "truncated bin",
       "corrupt onnx", "no spatial map", "unknown layer", "missing out folder"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_gives_one_line_and_exit_2(ir: Path, tmp_path: Path, case: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    args, fragment = _bad_inputs(ir, work)[case]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if "-o" not in args:
        args = [*args, "-o", str(out_dir / "m.xml")]
    code, stdout, stderr = invoke("insert", *args)
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("xaigraph: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in stderr
    assert list(out_dir.iterdir()) == []


def test_unknown_layer_lists_near_names(ir: Path, tmp_path: Path) -> None:
    name = xaigraph.api.inspect(ir)["target"]["name"]
    code, _, stderr = invoke("insert", str(ir), "-o", str(tmp_path / "m.xml"),
                             "--target-layer", name + "x")
    assert code == 2
    assert f"near names: {name}" in stderr


def test_real_entry_point_without_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("xaigraph")
    proc = subprocess.run([str(exe), "insert", str(tmp_path / "x.onnx"), "-o",
                           str(tmp_path / "y.xml")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"xaigraph: error: model file not found: {tmp_path / 'x.onnx'}"
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"xaigraph, version {xaigraph.__version__}"


# -- inspect --------------------------------------------------------------------------------


def test_inspect_text_and_json(tiny_file: Callable[..., Path]) -> None:
    path = tiny_file("conv_gap", True, "onnx17")
    code, stdout, _ = invoke("inspect", str(path))
    assert code == 0
    for heading in ("input", "output", "target", "head", "candidates", "methods"):
        assert heading in stdout
    code, stdout, _ = invoke("inspect", str(path), "--json")
    info = json.loads(stdout)
    assert info["target"]["shape"] == "[1,12,8,8]"
    assert info["num_classes"] == tiny_models.CLASSES
    reasons = {c["reason"] for c in info["candidates"]}
    assert "chosen" in reasons
    assert any("already a class-score map" in r for r in reasons)
    assert info["methods"]["reciprocam"]["applies"] is True
    assert info["methods"]["reciprocam"]["form"].startswith("fast exact form: per-location")
    assert info["methods"]["activationmap"]["applies"] is True
    assert info["head"][0] == "Conv"  # an .onnx file is inspected as ONNX


def test_inspect_bad_input() -> None:
    code, _, stderr = invoke("inspect", "missing.onnx")
    assert code == 2
    assert stderr.strip() == "xaigraph: error: model file not found: missing.onnx"


def test_inspect_lines_up_the_method_names(tiny_file: Callable[..., Path]) -> None:
    code, stdout, _ = invoke("inspect", str(tiny_file("gap_fc", False, "onnx17")))
    assert code == 0
    after = stdout.split("methods\n", 1)[1].splitlines()
    lines = after[:next(i for i, line in enumerate(after) if not line.startswith(" "))]
    assert after[len(lines)].startswith("auto        explain --method auto takes reciprocam")
    starts = {len(line) - len(line.lstrip()) for line in lines}
    texts = {line.split()[0]: line for line in lines}
    assert starts == {2}
    assert "detclassprobabilitymap does not apply" in texts["detclassprobabilitymap"]
    assert len({line.index(line.split()[1]) for line in lines}) == 1  # one column

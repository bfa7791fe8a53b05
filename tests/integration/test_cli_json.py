"""`--json` prints exactly one JSON object on stdout on every exit, stderr keeps one line.

The object is `{"ok": bool, "exit_code": int, ...}`; on failure `error` holds a stable
`kind` (from `xaigraph.errors.KINDS`) and the message, the same text as the stderr line.
Models are the hand-built tiny classifier of `tests.fuzz_models` (no torch, no export).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from click.testing import CliRunner
from xaigraph.passes import build_pipeline

import xaigraph.api
from tests import fuzz_models
from tests.integration.test_cli import CorruptOutput
from xaigraph.cli import cli
from xaigraph.errors import KINDS
from xaigraph.pipeline import PassManager

README = Path(__file__).resolve().parents[2] / "README.md"


def run_json(*args: str) -> tuple[int, dict[str, Any], list[str]]:
    """Exit code, the one JSON object on stdout, and the stderr lines."""
    result = CliRunner().invoke(cli, [*args, "--json"])
    obj = json.loads(result.stdout)  # exactly one object: anything else fails to parse
    assert isinstance(obj, dict)
    return result.exit_code, obj, result.stderr.strip().splitlines()


def assert_failure(code: int, obj: dict[str, Any], err: list[str], kind: str,
                   exit_code: int = 2) -> None:
    assert code == exit_code
    assert obj["ok"] is False and obj["exit_code"] == exit_code
    assert obj["error"]["kind"] == kind, obj
    assert kind in KINDS
    assert len(err) == 1 and err[0] == f"xaigraph: error: {obj['error']['message']}"


@pytest.fixture()
def ir(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return fuzz_models.write_ir(folder)


def test_success_has_ok_and_exit_code(ir: Path, tmp_path: Path) -> None:
    code, obj, err = run_json("insert", str(ir), "-o", str(tmp_path / "o.xml"))
    assert code == 0 and err == []
    assert obj["ok"] is True and obj["exit_code"] == 0 and obj["status"] == "inserted"
    code, obj, _ = run_json("inspect", str(ir))
    assert code == 0 and obj["ok"] is True and obj["target"]["name"] == "relu"


def _mlp_ir(folder: Path) -> Path:
    x = ops.parameter([1, 6], np.float32, name="x")
    w = ops.constant(np.ones((6, 3), np.float32))
    model = ov.Model([ops.result(ops.matmul(x, w, False, False))], [x], "mlp")
    path = folder / "mlp.xml"
    ov.save_model(model, str(path), compress_to_fp16=False)
    return path


def test_kinds_of_bad_input(ir: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o.xml")
    corrupt = tmp_path / "c.onnx"
    corrupt.write_bytes(b"\x08\x07garbage\xff\xff")
    cases = {
        "not-found": ["insert", str(tmp_path / "nope.xml"), "-o", out],
        "bad-input": ["insert", str(corrupt), "-o", out],
        "no-target": ["insert", str(_mlp_ir(tmp_path)), "-o", out],
        "unknown-layer": ["insert", str(ir), "-o", out, "--target-layer", "nope"],
        "method-not-applicable": ["insert", str(ir), "-o", out, "-m", "vitreciprocam"],
        "usage": ["insert", str(ir)],
    }
    for kind, args in cases.items():
        assert_failure(*run_json(*args), kind=kind)
    Path(out).write_text("keep")
    assert_failure(*run_json("insert", str(ir), "-o", out), kind="output-exists")
    assert_failure(*run_json("inspect", str(ir), "--target-layer", "nope"), kind="unknown-layer")
    assert_failure(*run_json("inspect", str(tmp_path / "nope.onnx")), kind="not-found")
    assert_failure(*run_json("nosuch"), kind="usage")


def test_validation_failure(ir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def corrupted(method: str, **kwargs: Any) -> PassManager:
        passes = build_pipeline(method, **kwargs).passes
        return PassManager([passes[0], CorruptOutput(), *passes[1:]])

    monkeypatch.setattr(xaigraph.api, "build_pipeline", corrupted)
    run = run_json("insert", str(ir), "-o", str(tmp_path / "o.xml"))
    assert_failure(*run, kind="validation-failed", exit_code=1)


@pytest.mark.parametrize(("raised", "kind", "exit_code"), [
    (KeyboardInterrupt, "interrupted", 130),
    (ZeroDivisionError, "internal", 2),
])
def test_interrupt_and_internal_error(ir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      raised: type[BaseException], kind: str,
                                      exit_code: int) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise raised

    monkeypatch.setattr(xaigraph.api, "insert", fail)
    run = run_json("insert", str(ir), "-o", str(tmp_path / "o.xml"))
    assert_failure(*run, kind=kind, exit_code=exit_code)
    assert list(tmp_path.glob("o*")) == []


def test_debug_shows_the_traceback_and_still_one_object(ir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["insert", str(ir), "-o", str(tmp_path / "o.xml"),
                                      "--target-layer", "nope", "--json", "--debug"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["kind"] == "unknown-layer"
    assert "Traceback" in result.stderr


def test_readme_recipe_writes_the_object_on_failure(tmp_path: Path) -> None:
    """The README's CI step `insert ... --json > xai.json`, with a model that does not
    exist: xai.json holds the error, not nothing (94d8f99 left it empty)."""
    exe = Path(sys.executable).with_name("xaigraph")
    report = tmp_path / "xai.json"
    with report.open("w") as stdout:
        proc = subprocess.run([str(exe), "insert", str(tmp_path / "build" / "model.xml"), "-o",
                               str(tmp_path / "model_xai.xml"), "--json"],
                              stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    obj = json.loads(report.read_text())
    assert obj == {"ok": False, "exit_code": 2, "error": {
        "kind": "not-found", "message": f"model file not found: {tmp_path}/build/model.xml"}}


def test_readme_documents_every_kind() -> None:
    text = README.read_text()
    section = text.split("## In CI", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.M))
    assert documented == set(KINDS)

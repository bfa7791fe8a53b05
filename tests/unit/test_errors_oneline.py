"""Ordinary conditions give one line with the real reason, never "internal error" (item 8).

File-system failures are told by errno, naming the path the user gave; native libraries'
loggers stay off stderr; click's usage errors are one line; a fuzz finding (equal
infinities are no validation difference) stays fixed.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest
from click.testing import CliRunner

from tests import fuzz_models
from xaigraph.cli import cli
from xaigraph.errors import file_error
from xaigraph.logs import console
from xaigraph.validate import TOLERANCES, _diff


def invoke(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stderr.strip().splitlines()


@pytest.mark.parametrize(("code", "kind", "words"), [
    (errno.ENOENT, "not-found", "no such file or folder"),
    (errno.EACCES, "permission-denied", "permission denied"),
    (errno.EPERM, "permission-denied", "not permitted"),
    (errno.EROFS, "permission-denied", "read-only"),
    (errno.ENOSPC, "no-space", "no space left"),
    (errno.EISDIR, "file-error", "is a folder"),
    (errno.ENOTDIR, "file-error", "not a folder"),
    (errno.ENAMETOOLONG, "file-error", "too long"),
])
def test_file_error_words(code: int, kind: str, words: str) -> None:
    err = file_error(OSError(code, os.strerror(code), "/tmp/.o.xml.x1.tmp/o.xml"),
                     Path("out/o.xml"), "cannot write")
    assert err.kind == kind
    assert str(err) == f"cannot write out/o.xml: {str(err).split(': ', 1)[1]}"
    assert words in str(err) and "Errno" not in str(err)


@pytest.fixture()
def ir(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return fuzz_models.write_ir(folder)


@pytest.mark.parametrize(("raised", "reason"), [
    (PermissionError(errno.EACCES, "Permission denied", "x/.o.bin.tmp"), "permission denied"),
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device"),
])
def test_save_failure_names_out_and_reason(ir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          raised: OSError, reason: str) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(ov, "save_model", fail)
    out = tmp_path / "out" / "o.xml"
    out.parent.mkdir()
    code, lines = invoke("insert", str(ir), "-o", str(out))
    assert code == 2
    assert lines == [f"xaigraph: error: cannot write {out}: {reason}"]
    assert list(out.parent.iterdir()) == []


def test_openvino_write_error_on_a_full_disk_says_so(ir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenVINO's own error for a full disk is "basic_ios::clear: iostream error"."""
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Exception from src/core/src/pass/serialize.cpp:1:\n"
                           "basic_ios::clear: iostream error")

    monkeypatch.setattr(ov, "save_model", fail)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 0))
    code, lines = invoke("insert", str(ir), "-o", str(tmp_path / "o.xml"))
    assert code == 2
    assert lines == [f"xaigraph: error: cannot write {tmp_path / 'o.xml'}: no space left on "
                     "the device"]


@pytest.mark.skipif(shutil.which("chattr") is None or os.geteuid() != 0,
                    reason="needs root and chattr")
def test_immutable_folder_is_permission_denied(ir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("the file system does not support chattr +i")
    try:
        code, lines = invoke("insert", str(ir), "-o", str(folder / "o.xml"))
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"xaigraph: error: cannot write {folder / 'o.xml'}: ")
    assert "internal error" not in lines[0] and "not permitted" in lines[0]


def test_usage_errors_are_one_line() -> None:
    code, lines = invoke("insert", "m.xml")
    assert code == 2
    assert lines == ["xaigraph: error: missing option '-o' / '--output'; see "
                     "'xaigraph insert --help'"]
    code, lines = invoke("insert", "m.xml", "-o", "o.xml", "--bogus")
    assert code == 2 and len(lines) == 1 and "no such option '--bogus'" in lines[0]
    code, lines = invoke("nosuch")
    assert code == 2 and lines == ["xaigraph: error: no such command 'nosuch'; see "
                                   "'xaigraph --help'"]


def test_native_loggers_stay_off_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """ONNX Runtime's C++ logger at verbose level writes to fd 2; inside a command's
    console() that goes nowhere, while xaigraph's own lines still reach stderr."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 0
    blob = fuzz_models.onnx_classifier().SerializeToString()
    with console(debug=False):
        ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        os.write(2, b"a native library's line\n")
        print("xaigraph: error: the one line", file=sys.stderr)
    err = capfd.readouterr().err
    assert err.strip().splitlines() == ["xaigraph: error: the one line"]


def test_python_warnings_from_libraries_are_dropped(capfd: pytest.CaptureFixture[str]) -> None:
    import warnings

    with console(debug=False):
        warnings.warn("a library's RuntimeWarning", RuntimeWarning, stacklevel=1)
    assert capfd.readouterr().err == ""


def test_equal_infinities_are_no_difference() -> None:
    """Found by the fuzz: a model whose weights hold inf gives inf logits in both models;
    94d8f99 failed validation with "differs by nan" (and a numpy warning line)."""
    ref = np.array([[np.inf, -np.inf, np.nan, 1.0]], np.float32)
    assert _diff("logits", ref, ref.copy(), TOLERANCES["f32"]).ok
    other = np.array([[np.inf, np.inf, np.nan, 1.0]], np.float32)
    assert not _diff("logits", ref, other, TOLERANCES["f32"]).ok


def test_onnx_checker_is_unchanged_by_console() -> None:
    with console(debug=False):
        onnx.checker.check_model(fuzz_models.onnx_classifier())


@pytest.mark.parametrize("suffix", [".xml", ".onnx"])
def test_zero_sized_input_is_refused(tmp_path: Path, suffix: str) -> None:
    """Found by the fuzz: an ONNX input shaped [0, 3, 8, 8] written as IR aborted the
    process (OpenVINO's CPU plugin corrupts its heap running the empty batch: SIGABRT)."""
    proto = fuzz_models.onnx_classifier()
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 0
    proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "n"  # passes the checker
    path = tmp_path / "zero.onnx"
    onnx.save_model(proto, str(path))
    out = tmp_path / "out"
    out.mkdir()
    code, lines = invoke("insert", str(path), "-o", str(out / f"o{suffix}"))
    assert code == 2
    assert lines == ["xaigraph: error: input 'x' has shape [0,3,8,8]: a zero-sized dimension, "
                     "so the model takes no data"]
    assert list(out.iterdir()) == []

"""Messages (issue 21): every failure is exactly one stderr line, whatever the environment."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from tests.explain.run_models import classifier, cli


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs /sys: a HOME no one can write")
def test_an_unwritable_home_adds_no_line_to_an_error(tmp_path: Path) -> None:
    """`import openvino` starts OpenVINO's telemetry, which logs three warnings when it
    cannot make its folder in HOME; a failing run still prints its one line."""
    model = tmp_path / "m.onnx"
    onnx.save(classifier(size=16), model)
    done = cli("explain", model, tmp_path / "missing.png", "-o", tmp_path / "out",
               "--runtime", "openvino", prelude="import os; os.environ['HOME'] = '/sys'\n")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"xaigraph: error: input not found: "
                                        f"{tmp_path / 'missing.png'}"], done.stderr

"""Messages (issue 21): every failure is exactly one stderr line, whatever the environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
from click.testing import CliRunner

import xaigraph
from tests.explain.run_models import classifier, cli
from xaigraph.cli import cli as cli_group


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


def _flat_classifier(path: Path) -> Path:
    """Flatten > MatMul > Softmax: no spatial feature map at all."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((3 * 16 * 16, 5)).astype(np.float32) * 0.01
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1),
         helper.make_node("MatMul", ["f", "w"], ["l"]),
         helper.make_node("Softmax", ["l"], ["y"], axis=1)], "flat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _inspect(*args: str | Path) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(cli_group, ["inspect", *map(str, args), "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}, result.stderr


def test_inspect_reads_a_model_without_a_feature_map(tmp_path: Path) -> None:
    """It lists every method, black-box ones too, and what explain's auto mode takes."""
    code, info, err = _inspect(_flat_classifier(tmp_path / "flat.onnx"))
    assert code == 0, err
    assert info["target"] is None and "no spatial feature map" in info["target_problem"]
    assert "--target-layer" not in info["target_problem"]  # no 4-D tensor to name
    assert info["num_classes"] == 5
    assert not info["methods"]["reciprocam"]["applies"]
    assert info["methods"]["rise"]["applies"] and info["methods"]["aise"]["applies"]
    assert info["auto"]["method"] == "rise"
    text = CliRunner().invoke(cli_group, ["inspect", str(tmp_path / "flat.onnx")])
    assert text.exit_code == 0 and "auto        explain --method auto takes rise" in text.stdout


def test_inspect_says_what_auto_takes(cnn_file: Callable[..., Path], tmp_path: Path) -> None:
    plain = cnn_file("gap_fc", False, "onnx17")
    code, info, err = _inspect(plain)
    assert code == 0, err
    assert info["target"]["kind"] == "map"
    assert info["auto"] == {"method": "reciprocam", "why": "auto: a CNN (target relu2)"}
    assert info["methods"]["rise"]["applies"]
    augmented = tmp_path / "aug.onnx"
    xaigraph.save(xaigraph.insert(plain, "eigencam", output_format="onnx"), augmented)
    code, info, err = _inspect(augmented)
    assert code == 0, err
    assert info["auto"] == {"method": "eigencam", "why": "the model's stamp"}


def test_explain_auto_is_what_inspect_said(tmp_path: Path) -> None:
    """The model inspect reads without a target is explained by the method it named."""
    from xaigraph.explain.plan import prepare

    model = _flat_classifier(tmp_path / "flat.onnx")
    _, info, _ = _inspect(model)
    spec = prepare(model)
    assert spec.method == info["auto"]["method"] and spec.method_reason == info["auto"]["why"]


def test_another_runs_out_dir_is_refused_naming_what_differs(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(classifier(size=16), model)
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (20, 16), (120, 40, 200)).save(photo)
    run = CliRunner()
    first = run.invoke(cli_group, ["explain", str(model), str(photo), "-o", str(tmp_path / "o")])
    assert first.exit_code == 0, first.stderr
    again = run.invoke(cli_group, ["explain", str(model), str(photo), "-o", str(tmp_path / "o"),
                                   "--targets", "topk:2", "--colormap", "gray"])
    assert again.exit_code == 2
    (line,) = again.stderr.splitlines()
    assert "options.targets topk:1 there, topk:2 here" in line, line
    assert "options.colormap jet there, gray here" in line, line
    assert line.index("options.") < line.index("pipeline"), line  # the choices first

"""`prepare` reads and analyses a plain model once: the augmentation goes on from the analysis
(`api.analyse` -> `api.insert(analysed, ...)`) instead of analysing the model again, and gives
the model `api.insert` gives from the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from xaigraph.passes import analysis_pipeline
from xaigraph.passes.detect_target import DetectTargetPass

import xaigraph
from xaigraph import api, model_io
from xaigraph.explain.plan import model_of, prepare
from xaigraph.pipeline import PassContext
from xaigraph.session import Session


@pytest.fixture()
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times detect-target and `load_model` ran."""
    calls = {"detect-target": 0, "load": 0}
    run, load = DetectTargetPass.run, model_io.load_model

    def counting_run(self: DetectTargetPass, model: Any, ctx: PassContext) -> Any:
        calls["detect-target"] += 1
        return run(self, model, ctx)

    def counting_load(*args: Any, **kwargs: Any) -> Any:
        calls["load"] += 1
        return load(*args, **kwargs)

    monkeypatch.setattr(DetectTargetPass, "run", counting_run)
    monkeypatch.setattr(model_io, "load_model", counting_load)
    return calls


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("targets", ["predicted", "all"])
def test_a_white_box_plan_reads_and_analyses_once(cnn_file: Callable[..., Path],
                                                  counted: dict[str, int], runtime: str,
                                                  targets: str) -> None:
    spec = prepare(cnn_file("gap_fc", False, "onnx17"), runtime=runtime, targets=targets)
    assert spec.method == "reciprocam" and spec.payload and spec.payload[0] == "model"
    assert counted == {"detect-target": 1, "load": 1}


@pytest.mark.parametrize("route", ["onnx17", "ov_dynbatch"])
def test_insert_of_an_analysed_model_is_insert_of_the_file(cnn_file: Callable[..., Path],
                                                           route: str) -> None:
    path = cnn_file("gap_fc", True, route)
    fmt = "onnx" if path.suffix == ".onnx" else "ir"
    direct = xaigraph.insert(path, "reciprocam", targets="topk:2", output_format=fmt)
    analysed = api.analyse(path, output_format=fmt)
    resumed = xaigraph.insert(analysed, "reciprocam", targets="topk:2")
    assert resumed.report["pipeline"] == direct.report["pipeline"]
    assert resumed.report["target"] == direct.report["target"]
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 16, 16)).astype(np.float32)
    one, other = Session.open(direct.model, "openvino"), Session.open(resumed.model, "openvino")
    assert one.output_names == other.output_names
    for a, b in zip(one.run([x]), other.run([x]), strict=True):
        np.testing.assert_array_equal(a, b)
    # the analysis' input stays as read: ctx.original is what validate compares against
    assert len(analysed.ctx.original.outputs if fmt == "ir" else
               analysed.ctx.original.graph.output) == 1


def test_resume_refuses_a_pipeline_that_does_not_start_with_the_analysis(
        cnn_file: Callable[..., Path]) -> None:
    analysed = api.analyse(cnn_file("gap_fc", False, "onnx17"), output_format="onnx",
                           class_output="scores")
    with pytest.raises(ValueError, match="does not start with"):
        xaigraph.insert(analysed, "reciprocam")  # detect-target without output=scores
    assert analysis_pipeline(class_output="scores").passes == analysed.manager.passes


def test_the_in_memory_model_is_the_one_run(cnn_file: Callable[..., Path]) -> None:
    """What the plan augmented is what the run compiles (`model_of`), not the file."""
    spec = prepare(cnn_file("gap_fc", False, "onnx17"), runtime="openvino")
    assert model_of(spec) is spec.payload[1]
    outputs = [o.get_any_name() for o in spec.payload[1].outputs]
    assert "saliency_map" in outputs

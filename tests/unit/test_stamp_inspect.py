"""Item 12 of issue 11: `inspect` on an augmented model shows its stamp as text and analyses
the original part (a stripped clone), not xaigraph's own ops."""

from __future__ import annotations

import json

import pytest

import xaigraph
from tests.unit.stamp_graphs import make
from xaigraph.sanity import describe


@pytest.mark.parametrize("backend", ["ir", "onnx"])
@pytest.mark.parametrize(("graph", "method"), [("cnn_softmax", "reciprocam"),
                                               ("channels_last", "activationmap")])
def test_inspect_analyses_the_original_part(backend: str, graph: str, method: str) -> None:
    plain = xaigraph.inspect(make(graph, backend))
    augmented = xaigraph.insert(make(graph, backend), method, output_format=backend).model
    info = xaigraph.inspect(augmented)
    assert info["outputs"][-1]["name"] == "saliency_map"  # what the model has
    for key in ("class_scores", "target", "head", "candidates", "methods", "num_classes"):
        assert info[key] == plain[key], key
    if graph == "cnn_softmax":  # (a channels-last map is explained through our transposes)
        assert "xai/" not in repr([info["class_scores"], info["target"], info["head"],
                                   info["candidates"]])
    assert info["stamp"]["method"] == method and "undo" not in info["stamp"]
    first, pipeline, sanity, note = info["stamp_text"]
    assert first.startswith(f"augmented by xaigraph {xaigraph.__version__}: method {method}, "
                            "target ")
    assert pipeline == f"pipeline {info['stamp']['pipeline']}"
    assert sanity == "sanity " + describe(info["stamp"]["sanity"])  # the stamped figures
    assert json.loads(info["stamp"]["sanity"])["level"] == "on"
    assert "without it" in note


def test_inspect_says_why_xai_metadata_is_not_a_stamp() -> None:
    model = make("cnn_softmax", "onnx")
    model.metadata_props.add(key="xai.method", value="reciprocam")
    info = xaigraph.inspect(model)
    assert info["stamp"] is None
    assert info["stamp_problem"].startswith("partial xaigraph stamp (no version")

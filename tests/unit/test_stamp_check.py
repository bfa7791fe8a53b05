"""Item 10 of issue 11: the stamp is recognised wherever OpenVINO keeps it, and only when it
is whole. An ONNX model's stamp (`metadata_props` `xai.*`) read by OpenVINO sits in
`rt_info` `framework`; a model with a stray or spoofed `xai.method`, or a stamp whose outputs
are gone, is not augmented (a warning says why)."""

from __future__ import annotations

import logging

import onnx
import pytest
from onnx import helper

import xaigraph
from tests.unit.stamp_graphs import make
from xaigraph import model_io
from xaigraph import stamp as stamp_mod
from xaigraph.backends import get_backend
from xaigraph.errors import XaiGraphError


def _augmented_onnx(**options: object) -> onnx.ModelProto:
    return xaigraph.insert(make("cnn_softmax", "onnx"), "reciprocam", output_format="onnx",
                           **options).model  # type: ignore[arg-type]


def test_onnx_stamp_read_by_openvino_is_recognised() -> None:
    proto = _augmented_onnx()
    ov_model = model_io.ov_from_onnx(proto)
    assert not ov_model.has_rt_info(["xai"])  # where OpenVINO puts it: framework / xai.*
    stamp = stamp_mod.read(get_backend("ir"), ov_model)
    assert stamp is not None and stamp.method == "reciprocam"
    again = xaigraph.insert(proto, "reciprocam", output_format="ir")
    assert again.report["status"] == "already-augmented" and not again.changed


def test_a_spoofed_method_key_is_not_a_stamp(caplog: pytest.LogCaptureFixture) -> None:
    model = make("cnn_softmax", "onnx")
    helper.set_model_props(model, {"xai.method": "reciprocam", "author": "someone"})
    with caplog.at_level(logging.WARNING):
        result = xaigraph.insert(model, "activationmap", output_format="onnx")
    assert result.report["status"] == "inserted"
    assert "partial xaigraph stamp (no version, target_layer" in caplog.text
    props = {p.key: p.value for p in result.model.metadata_props}
    assert props["xai.method"] == "activationmap" and props["author"] == "someone"
    assert stamp_mod.read(get_backend("onnx"), result.model) is not None


@pytest.mark.parametrize("backend", ["ir", "onnx"])
def test_a_spoofed_stamp_without_our_outputs_is_not_augmented(backend: str) -> None:
    model = make("cnn_softmax", backend)
    be = get_backend(backend)
    fields = stamp_mod.stamp_fields(method="reciprocam", target_layer="relu",
                                    pipeline="detect-target,insert-saliency{method=reciprocam},"
                                    "stamp", scaling="none")
    be.write_stamp(model, fields)
    assert stamp_mod.read(be, model) is None
    assert "last outputs are saliency_map" in (stamp_mod.problem(be, model) or "")
    result = xaigraph.insert(model, "reciprocam", output_format=backend, validate=False)
    assert result.report["status"] == "inserted"


GOOD = {"version": "0.1.0", "method": "reciprocam", "target_layer": "relu",
        "pipeline": "detect-target,insert-saliency{method=reciprocam},embed-scaling,stamp",
        "output": "saliency_map", "scaling": "minmax-u8"}
OUTS = [["scores"], ["saliency_map"]]


@pytest.mark.parametrize(("change", "outputs", "message"), [
    ({"version": ""}, OUTS, "partial xaigraph stamp (no version)"),
    ({"version": "new"}, OUTS, "stamp version 'new' is not a version"),
    ({"method": "gradcam"}, OUTS, "stamp method 'gradcam' is not an xaigraph method"),
    ({"scaling": "log"}, OUTS, "scaling or output is not one xaigraph writes"),
    ({"pipeline": "detect-target,bogus"}, OUTS, "stamp pipeline 'detect-target,bogus': "
                                                "unknown pass 'bogus'"),
    ({"pipeline": "detect-target,insert-saliency{method=cam}"}, OUTS,
     "does not insert the stamp's method"),
    ({}, [["scores"], ["saliency_map"], ["extra"]], "they are extra"),
    ({}, [["saliency_map"]], "they are missing"),
    ({"pipeline": "detect-target,select-classes{targets=topk:2},"
                  "insert-saliency{method=reciprocam}"}, OUTS,
     "last outputs are saliency_classes, saliency_map"),
])
def test_what_a_whole_stamp_needs(change: dict[str, str], outputs: list[list[str]],
                                  message: str) -> None:
    with pytest.raises(XaiGraphError) as info:
        stamp_mod.check({**GOOD, **change}, outputs)
    assert message in str(info.value)


def test_a_whole_stamp_names_the_outputs_it_added() -> None:
    stamp = stamp_mod.check(GOOD, [["a", "scores"], ["saliency_map"]])
    assert stamp.outputs == ("saliency_map",)
    chosen = stamp_mod.check(
        {**GOOD, "pipeline": "detect-target,select-classes{targets=topk:2},"
                             "insert-saliency{method=reciprocam},stamp"},
        [["scores"], ["saliency_classes"], ["saliency_map"]])
    assert chosen.outputs == ("saliency_classes", "saliency_map")
    assert "method reciprocam, target relu, scaling minmax-u8" in chosen.describe()

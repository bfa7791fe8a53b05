"""`insert --feature-vector`: a `feature_vector` output `[N, C]`, the pooled embedding the
classifier reads, checked against an independent reference; the original outputs and the
saliency map unchanged; the stamp, `strip` and re-runs aware of it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import helper, numpy_helper
from xaigraph.passes import feature_vector as fv_pass

import xaigraph
from tests import tiny_onnx
from tests.conftest import image
from xaigraph.cli import cli
from xaigraph.errors import MethodError, ValidationError
from xaigraph.session import Session


def pooled_reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The target map `relu2` of the tiny CNN, from ONNX Runtime running the model cut
    there, averaged over H and W in numpy."""
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    for dim, name in zip(cut.graph.input[0].type.tensor_type.shape.dim[2:], "hw", strict=True):
        dim.dim_param = name  # any spatial size
    del cut.graph.output[:]
    cut.graph.output.append(helper.make_tensor_value_info("relu2", onnx.TensorProto.FLOAT,
                                                          None))
    session = ort.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["relu2"], {"image": x})[0].astype(np.float64).mean(axis=(2, 3))


def outputs(model: object, x: np.ndarray) -> dict[str, np.ndarray]:
    session = Session.open(model)
    return dict(zip(session.output_names, session.run([x]), strict=True))


@pytest.mark.parametrize("head", tiny_onnx.HEADS)
@pytest.mark.parametrize(("route", "fmt"), [("onnx17", "onnx"), ("onnx17", "ir"),
                                            ("ov_dynbatch", "ir"), ("ov_static", "ir"),
                                            ("ov_dynamic", "ir")])
def test_feature_vector_is_the_pooled_target(cnn_file, head: str, route: str,  # type: ignore[no-untyped-def]
                                             fmt: str) -> None:
    path = cnn_file(head, False, route)
    plain = xaigraph.insert(path, output_format=fmt)
    result = xaigraph.insert(path, output_format=fmt, feature_vector=True)
    names = [o["name"].split(", ")[0] for o in result.report["outputs"]]
    assert names == ["scores", "feature_vector", "saliency_map"]
    report = result.report["feature_vector"]
    assert report["type"] == "f32" and report["shape"].endswith(",12]")
    assert report["pool"] == "gap" and report["passed"]
    assert "feature-vector" in result.report["pipeline"]
    batch = 1 if route == "ov_static" else 2
    x = image(batch, seed=5)
    got, before = outputs(result.model, x), outputs(plain.model, x)
    ref = pooled_reference(tiny_onnx.cnn(head), x)
    assert got["feature_vector"].shape == (batch, 12)
    np.testing.assert_allclose(got["feature_vector"], ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got["saliency_map"], before["saliency_map"])
    np.testing.assert_allclose(got["scores"], before["scores"], rtol=1e-5, atol=1e-6)
    if route == "ov_dynamic":  # another spatial size than the one analysed
        big = image(1, size=24, seed=6)
        np.testing.assert_allclose(outputs(result.model, big)["feature_vector"],
                                   pooled_reference(tiny_onnx.cnn(head), big), rtol=1e-5,
                                   atol=1e-6)
    if head == "gap_fc":  # the classifier reads it: its Gemm on the vector gives the scores
        weights = {t.name: numpy_helper.to_array(t) for t in tiny_onnx.cnn(head).graph.initializer}
        scores = ref @ weights["fc.weight"].T.astype(np.float64) + weights["fc.bias"]
        np.testing.assert_allclose(got["scores"], scores, rtol=1e-4, atol=1e-5)


def test_stamp_strip_and_rerun_know_the_output(cnn_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = cnn_file("gap_mlp", False, "onnx17")
    out = tmp_path / "fv.xml"
    xaigraph.save(xaigraph.insert(path, feature_vector=True, targets="topk:2"), out)
    again = xaigraph.insert(out, feature_vector=True, targets="topk:2")
    assert again.report["status"] == "already-augmented"
    with pytest.raises(xaigraph.BadInputError, match="--replace"):
        xaigraph.insert(out, targets="topk:2")  # made with the feature vector: another pipeline
    names = [o["name"].split(", ")[0] for o in again.report["outputs"]]
    assert names == ["scores", "feature_vector", "saliency_classes", "saliency_map"]
    stripped = xaigraph.strip(out)
    assert stripped.report["removed_outputs"] == ["feature_vector", "saliency_classes",
                                                  "saliency_map"]
    assert [o["name"] for o in stripped.report["outputs"]] == ["scores"]


def test_cli_prints_and_reports_it(cnn_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = cnn_file("gap_fc", False, "onnx17")
    result = CliRunner().invoke(cli, ["insert", str(path), "-o", str(tmp_path / "a.onnx"),
                                      "--feature-vector"])
    assert result.exit_code == 0, result.output
    assert "feature     output 'feature_vector' f32 [batch,12] (pooling gap; checked" \
        in result.stdout
    result = CliRunner().invoke(cli, ["insert", str(path), "-o", str(tmp_path / "b.xml"),
                                      "--feature-vector", "--json"])
    report = json.loads(result.stdout)
    assert [r["label"] for r in report["feature_vector"]["runs"]] == ["random batch 1",
                                                                     "random batch 2"]


def test_a_detector_is_refused_in_one_line(detector_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "d.xml"
    result = CliRunner().invoke(cli, ["insert", str(detector_file(3, "onnx17")), "-o", str(out),
                                      "-m", "detclassprobabilitymap", "--feature-vector"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "feature-vector is for classifiers" in lines[0]
    assert "Traceback" not in result.output and not out.exists()


def test_the_check_catches_a_wrong_vector(cnn_file, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Reading the wrong tensor (the 1x1 conv after the pooling) fails the check."""
    def after_pool(view, head):  # type: ignore[no-untyped-def]
        return next(o for o in head.ops if view.ops[o].name == "conv_head")

    monkeypatch.setattr(fv_pass, "pooling", after_pool)
    with pytest.raises(ValidationError, match=r"feature_vector (is|differs)"):
        xaigraph.insert(cnn_file("gap_mlp", False, "onnx17"), feature_vector=True)


def test_a_head_without_pooling_is_refused(tmp_path: Path) -> None:
    """A Flatten + Gemm head (no global pooling): no embedding to read."""
    g = tiny_onnx._Graph(0, 17)
    t = g.op("Relu", [g.conv("image", "conv1", 3, 4, stride=4)], "relu1")  # [N, 4, 4, 4]
    g.linear(g.op("Flatten", [t], "flatten", axis=1), "fc", 64, tiny_onnx.CLASSES)
    g.nodes[-1].output[0] = "scores"
    path = tmp_path / "flat.onnx"
    onnx.save_model(g.model({"scores": ["batch", tiny_onnx.CLASSES]}), str(path))
    with pytest.raises(MethodError, match="no global average pooling"):
        xaigraph.insert(path, "activationmap", feature_vector=True)

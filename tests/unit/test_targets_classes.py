"""--targets on hand-built classifiers: K declared in the output shapes, a class listed twice
refused, class names from the model's labels (or ImageNet's for 1000 classes).

    image [N,3,5,7] -> conv 3x3 -> relu [N,6,5,7] -> mean over H, W [N,6] -> matmul -> logits

(the mean without keepdims feeds the MatMul directly: the head is its last linear layer, so
reciprocam builds only the chosen classes' rows, a per-image gather.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest
from click.testing import CliRunner

import xaigraph
from tests.unit.deploy_graphs import Net, brute_reciprocam, conv_relu, outputs, rand
from xaigraph.cli import cli
from xaigraph.model_io import ov_from_onnx

W, B = rand(6, 3, 3, 3, seed=1), rand(6, seed=2)
LABELS = "cat dog tiger_cat tabby fox"  # model metadata: space-separated, `_` for a space


def classifier(k: int, labels: str | None = None) -> tuple[onnx.ModelProto, np.ndarray]:
    """(model, classifier weight [6, k])."""
    fc = rand(6, k, seed=3)
    net = Net()
    pool = net.op("ReduceMean", [net.conv_relu("image", W, B)], "pool", axes=[2, 3],
                  keepdims=0)
    net.op("MatMul", [pool, net.const("fc.w", fc)], "logits")
    return net.model({"logits": k}, labels), fc


def _insert(model: onnx.ModelProto, fmt: str, targets: str) -> xaigraph.InsertResult:
    return xaigraph.insert(model, "reciprocam", scaling=False, output_format=fmt,
                           targets=targets)


def _cli(tmp_path: Path, model: onnx.ModelProto, targets: str, *flags: str
         ) -> tuple[int, str]:
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    result = CliRunner().invoke(cli, ["insert", str(path), "-o", str(tmp_path / "o.xml"),
                                      "--targets", targets, *flags])
    assert not (tmp_path / "o.xml").exists()
    return result.exit_code, result.stderr + result.stdout


@pytest.mark.parametrize("fmt", ["ir", "onnx"])
@pytest.mark.parametrize("targets", ["topk:3", "4,0,2"])
def test_k_is_declared(fmt: str, targets: str) -> None:
    result = _insert(classifier(5)[0], fmt, targets)
    shapes = {o["name"]: o["shape"] for o in result.report["outputs"]}
    batch = "?" if fmt == "ir" else "N"
    assert shapes["saliency_classes"] == f"[{batch},3]"
    assert shapes["saliency_map"] == f"[{batch},3,5,7]"
    got = outputs(result, rand(2, 3, 5, 7, seed=4))
    assert got["saliency_map"].shape == (2, 3, 5, 7)


@pytest.mark.parametrize("fmt", ["ir", "onnx"])
def test_chosen_maps_equal_brute_force(fmt: str) -> None:
    model, fc = classifier(5)
    x = rand(2, 3, 5, 7, seed=5)
    got = outputs(_insert(model, fmt, "4,0,2"), x)
    full = brute_reciprocam(conv_relu(x, W, B), lambda f: f.mean(axis=(2, 3)) @ fc)
    np.testing.assert_array_equal(got["saliency_classes"], [[4, 0, 2]] * 2)
    np.testing.assert_allclose(got["saliency_map"], full[:, [4, 0, 2]], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", ["3,3", "1, 3,1"])
def test_a_class_listed_twice_is_refused(tmp_path: Path, spec: str) -> None:
    code, stderr = _cli(tmp_path, classifier(5)[0], spec)
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "is listed twice" in stderr and "list each class once" in stderr


def test_a_name_and_its_index_are_the_same_class(tmp_path: Path) -> None:
    code, stderr = _cli(tmp_path, classifier(5, LABELS)[0], "tiger cat,2")
    assert code == 2 and "class 2 is listed twice" in stderr


def _labelled_ir(tmp_path: Path) -> Path:
    """The classifier as IR, its labels in rt_info model_info/labels."""
    model = ov_from_onnx(classifier(5)[0])
    model.set_rt_info(LABELS, ["model_info", "labels"])
    path = tmp_path / "labelled.xml"
    ov.save_model(model, path)
    return path


@pytest.mark.parametrize("route", ["onnx>onnx", "onnx>ir", "ir>ir"])
def test_names_from_the_model_labels(tmp_path: Path, route: str) -> None:
    model: onnx.ModelProto | Path = classifier(5, LABELS)[0]
    if route == "ir>ir":
        model = _labelled_ir(tmp_path)
    fmt = route.split(">")[1]
    x = rand(1, 3, 5, 7, seed=6)
    named = xaigraph.insert(model, "reciprocam", output_format=fmt, targets="Tiger Cat,dog")
    by_index = xaigraph.insert(classifier(5)[0], "reciprocam", output_format=fmt,
                               targets="2,1")
    got, want = outputs(named, x), outputs(by_index, x)
    np.testing.assert_array_equal(got["saliency_classes"], [[2, 1]])
    np.testing.assert_array_equal(got["saliency_map"], want["saliency_map"])
    assert "select-classes{targets=2 1}" in named.report["pipeline"]  # stamped as indices


def test_imagenet_names_for_a_1000_class_model() -> None:
    result = _insert(classifier(1000)[0], "onnx", "tiger cat,tabby")
    got = outputs(result, rand(1, 3, 5, 7))
    np.testing.assert_array_equal(got["saliency_classes"], [[282, 281]])


def test_an_unknown_name_suggests_the_closest(tmp_path: Path) -> None:
    """The sentence that matters, the user's text as typed, the pass only with --debug."""
    code, stderr = _cli(tmp_path, classifier(1000)[0], "tigr cat")
    assert code == 2
    assert stderr == ("xaigraph: error: --targets: unknown class name 'tigr cat'; did you "
                      "mean 'tiger cat' (282)?\n")
    code, stderr = _cli(tmp_path, classifier(1000)[0], "cat")
    assert stderr.endswith("did you mean 'tiger cat' (282), 'Persian cat' (283) or "
                           "'Siamese cat' (284)?\n")
    code, stderr = _cli(tmp_path, classifier(1000)[0], "tigr cat", "--debug")
    assert code == 2
    assert stderr.splitlines()[-1].startswith(
        "xaigraph: error: select-classes{targets=tigr_cat} (after detect-target): --targets:")


def test_json_names_the_pass(tmp_path: Path) -> None:
    code, out = _cli(tmp_path, classifier(1000)[0], "zzzqqq", "--json")
    line, text = out.split("\n", 1)
    error = json.loads(text)["error"]
    assert code == 2 and error["kind"] == "bad-input"
    assert error["pass"] == "select-classes{targets=zzzqqq} (after detect-target)"
    assert error["message"] == ("--targets: unknown class name 'zzzqqq'; no class name is "
                                "close (xaigraph inspect MODEL lists them)")
    assert line == f"xaigraph: error: {error['message']}"


def test_names_need_labels(tmp_path: Path) -> None:
    code, stderr = _cli(tmp_path, classifier(5)[0], "cat")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "carries no class names" in stderr and "give topk:K" in stderr

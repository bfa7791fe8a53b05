"""Models with several outputs: `--class-output NAME` picks the class scores; by default the
output computed from the others (logits from embeddings) is taken.

    image [N,3,5,7] -> conv -> relu [N,6,5,7] -> mean over H,W -> matmul -> embeddings [N,16]
                                                                      -> matmul -> logits [N,10]

Outputs in that order: embeddings first, logits second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import xaigraph
from tests.unit.deploy_graphs import Net, brute_reciprocam, conv_relu, outputs, rand
from xaigraph.cli import cli
from xaigraph.errors import TargetError

CONV_W, CONV_B = rand(6, 3, 3, 3, seed=1), rand(6, seed=2)
EMBED, FC = rand(6, 16, seed=3), rand(16, 10, seed=4)


def two_outputs() -> onnx.ModelProto:
    net = Net()
    pool = net.op("ReduceMean", [net.conv_relu("image", CONV_W, CONV_B)], "pool", axes=[2, 3],
                  keepdims=0)
    embeddings = net.op("MatMul", [pool, net.const("embed.w", EMBED)], "embeddings")
    net.op("MatMul", [embeddings, net.const("fc.w", FC)], "logits")
    return net.model({"embeddings": 16, "logits": 10})


def _embeddings(f: np.ndarray) -> np.ndarray:
    return f.mean(axis=(2, 3)) @ EMBED


def _logits(f: np.ndarray) -> np.ndarray:
    return _embeddings(f) @ FC


@pytest.mark.parametrize("fmt", ["ir", "onnx"])
@pytest.mark.parametrize(("chosen", "name"), [(None, "logits"), ("logits", "logits"),
                                              ("embeddings", "embeddings")])
def test_maps_are_those_of_the_chosen_output(fmt: str, chosen: str | None, name: str) -> None:
    x = rand(2, 3, 5, 7, seed=5)
    result = xaigraph.insert(two_outputs(), "reciprocam", scaling=False, output_format=fmt,
                             class_output=chosen)
    got = outputs(result, x)
    head = _logits if name == "logits" else _embeddings
    want = brute_reciprocam(conv_relu(x, CONV_W, CONV_B), head)
    np.testing.assert_allclose(got["saliency_map"], want, rtol=1e-4, atol=1e-4)
    assert list(got)[:2] == ["embeddings", "logits"]  # the original outputs stay first
    assert result.report["validation"]["passed"]


def test_inspect_and_topk_follow_the_chosen_output() -> None:
    assert xaigraph.inspect(two_outputs())["num_classes"] == 10
    assert xaigraph.inspect(two_outputs(), class_output="embeddings")["num_classes"] == 16
    result = xaigraph.insert(two_outputs(), "reciprocam", output_format="onnx",
                             targets="topk:2", class_output="logits")
    x = rand(1, 3, 5, 7, seed=6)
    got = outputs(result, x)
    np.testing.assert_array_equal(got["saliency_classes"][0],
                                  np.argsort(-got["logits"][0])[:2])
    assert "detect-target{output=logits}" in result.report["pipeline"]


@pytest.mark.parametrize("suffix", [".xml", ".onnx"])
def test_cli_unknown_output_lists_the_outputs(tmp_path: Path, suffix: str) -> None:
    model = tmp_path / "two.onnx"
    onnx.save(two_outputs(), model)
    out = tmp_path / f"o{suffix}"
    result = CliRunner().invoke(cli, ["insert", str(model), "-o", str(out),
                                      "--class-output", "logit"])
    assert result.exit_code == 2 and not out.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "unknown output 'logit'" in lines[0]
    assert "outputs: embeddings [?,16], logits [?,10]" in lines[0]


def test_cli_class_output(tmp_path: Path) -> None:
    model = tmp_path / "two.onnx"
    onnx.save(two_outputs(), model)
    result = CliRunner().invoke(cli, ["insert", str(model), "-o", str(tmp_path / "o.xml"),
                                      "--class-output", "embeddings"])
    assert result.exit_code == 0, result.stderr
    assert "saliency    output 'saliency_map' u8 [?,16,5,7]" in result.stdout


def test_an_output_without_class_scores_is_refused() -> None:
    net = Net()
    relu = net.conv_relu("image", CONV_W, CONV_B)
    net.op("ReduceMean", [relu], "pool", axes=[2, 3], keepdims=1)
    model = net.model({"pool": ["N", 6, 1, 1], "relu": ["N", 6, 5, 7]})
    with pytest.raises(TargetError, match=r"output 'relu' \[1,6,5,7\] does not hold class"):
        xaigraph.insert(model, class_output="relu")

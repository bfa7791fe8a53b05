"""NHWC models, as TensorFlow / TFLite exports give them: the input is `[N, H, W, 3]` and the
convolutions run channels-first between transposes. Built by hand (ONNX), inserted by both
routes, the maps checked against a numpy brute force.

    nhwc:     image [N,5,7,3] -> T(0,3,1,2) -> conv -> relu -> T(0,2,3,1) -> mean over H,W
              (axes 1, 2) -> matmul -> logits
    nchw:     image [N,5,7,3] -> T(0,3,1,2) -> conv -> relu -> mean over H,W (axes 2, 3)
              -> matmul -> logits                  (channels-first after the first transpose)
    tf:       image [N,5,7,3] -> T(0,3,1,2) -> conv -> T(0,2,3,1) -> relu -> mean over H,W
              (axes 1, 2) -> matmul -> logits      (tf2onnx: the activation runs channels-last)
    flatten:  image [N,5,7,3] -> T(0,3,1,2) -> conv -> T(0,2,3,1) -> relu -> reshape [N, H*W*C]
              -> matmul -> logits                  (a Keras Flatten + Dense head)

In `flatten` only the transposes tell the layout: the map `[N,5,7,6]` read as `[N,C,H,W]`
would give maps of the wrong size and meaning.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest

import xaigraph
from tests.unit.deploy_graphs import SIZE, Net, brute_reciprocam, conv_relu, outputs, rand

C, K = 6, 4
H, W = SIZE
CONV_W, CONV_B = rand(C, 3, 3, 3, seed=1), rand(C, seed=2)
FC_POOLED, FC_FLAT = rand(C, K, seed=3), rand(H * W * C, K, seed=4)
TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _pooled(f: np.ndarray) -> np.ndarray:
    return f.mean(axis=(2, 3)) @ FC_POOLED


def _flattened(f: np.ndarray) -> np.ndarray:
    return f.transpose(0, 2, 3, 1).reshape(len(f), -1) @ FC_FLAT


HEADS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "nhwc": _pooled, "nchw": _pooled, "tf": _pooled, "flatten": _flattened,
}


def nhwc_model(variant: str) -> onnx.ModelProto:
    net = Net(channels_last_input=True)
    x = net.op("Transpose", ["image"], "to_nchw", perm=TO_NCHW)
    if variant in ("nhwc", "nchw"):
        f = net.conv_relu(x, CONV_W, CONV_B)
        if variant == "nhwc":
            f = net.op("Transpose", [f], "to_nhwc", perm=TO_NHWC)
    else:
        conv = net.op("Conv", [x, net.const("conv.w", CONV_W), net.const("conv.b", CONV_B)],
                      "conv", pads=[1, 1, 1, 1])
        f = net.op("Relu", [net.op("Transpose", [conv], "to_nhwc", perm=TO_NHWC)], "relu")
    if variant == "flatten":
        flat = net.op("Reshape", [f, net.const("flat", np.array([-1, H * W * C]))], "flatten")
        net.op("MatMul", [flat, net.const("fc.w", FC_FLAT)], "logits")
    else:
        axes = [2, 3] if variant == "nchw" else [1, 2]
        pool = net.op("ReduceMean", [f], "pool", axes=axes, keepdims=0)
        net.op("MatMul", [pool, net.const("fc.w", FC_POOLED)], "logits")
    return net.model({"logits": K})


@pytest.mark.parametrize("fmt", ["ir", "onnx"])
@pytest.mark.parametrize("variant", list(HEADS))
def test_reciprocam_equals_brute_force(variant: str, fmt: str) -> None:
    x = rand(2, H, W, 3, seed=5)
    result = xaigraph.insert(nhwc_model(variant), "reciprocam", scaling=False,
                             output_format=fmt)
    got = outputs(result, x)
    features = conv_relu(x.transpose(0, 3, 1, 2), CONV_W, CONV_B)
    head = HEADS[variant]
    np.testing.assert_allclose(got["logits"], head(features), rtol=1e-4, atol=1e-4)
    assert got["saliency_map"].shape == (2, K, H, W)
    np.testing.assert_allclose(got["saliency_map"], brute_reciprocam(features, head),
                               rtol=1e-4, atol=1e-4)
    assert result.report["validation"]["passed"]


@pytest.mark.parametrize("fmt", ["ir", "onnx"])
@pytest.mark.parametrize("variant", list(HEADS))
def test_activationmap_is_the_channel_mean(variant: str, fmt: str) -> None:
    x = rand(2, H, W, 3, seed=6)
    result = xaigraph.insert(nhwc_model(variant), "activationmap", scaling=False,
                             output_format=fmt)
    features = conv_relu(x.transpose(0, 3, 1, 2), CONV_W, CONV_B)
    np.testing.assert_allclose(outputs(result, x)["saliency_map"], features.mean(axis=1),
                               rtol=1e-5, atol=1e-5)


def test_inspect_says_why_the_map_is_channels_last() -> None:
    info = xaigraph.inspect(nhwc_model("flatten"))
    assert "Transpose [0, 2, 3, 1] made it" in info["channels_last"]
    assert info["target"]["shape"] == f"[1,{C},{H},{W}]"

"""CAM and Eigen-CAM against numpy references, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import xaigraph
from tests.conftest import image, run
from tests.integration import tiny_models
from tests.integration.test_onnx import ort_run

BACKENDS = ["ir", "onnx"]


def _maps(path: Path, method: str, fmt: str, x: np.ndarray) -> np.ndarray:
    result = xaigraph.insert(path, method, scaling=False, output_format=fmt)
    return run(result.model, x)[-1] if fmt == "ir" else ort_run(result.model, x)[-1]


@pytest.mark.parametrize("fmt", BACKENDS)
@pytest.mark.parametrize(("head", "softmax"), [("gap_fc", False), ("gap_fc", True),
                                               ("gap_view", False)])
def test_cam_is_the_classifier_weights_on_the_map(
    tiny_file: Callable[..., Path], fmt: str, head: str, softmax: bool
) -> None:
    model = tiny_models.Tiny(head, softmax)
    x = image(2, seed=6)
    got = _maps(tiny_file(head, softmax, "onnx17"), "cam", fmt, x)
    weights = model.fc.weight.detach().double().numpy()  # [K, C]
    ref = np.einsum("kc,nchw->nkhw", weights, tiny_models.target_map(model, x))
    assert got.shape == ref.shape
    assert np.max(np.abs(got - ref)) <= 1e-4 * float(ref.max() - ref.min())


@pytest.mark.parametrize("fmt", BACKENDS)
def test_cam_after_scaling_equals_reciprocam_for_a_linear_head(
    tiny_file: Callable[..., Path], fmt: str
) -> None:
    """For GAP -> linear, ReciproCAM is CAM / (H*W) + bias: per class the same map once scaled."""
    path = tiny_file("gap_fc", False, "onnx13")
    x = image(2, seed=3)
    outs = []
    for method in ("cam", "reciprocam"):
        result = xaigraph.insert(path, method, output_format=fmt)
        outs.append(run(result.model, x)[-1] if fmt == "ir" else ort_run(result.model, x)[-1])
    assert np.max(np.abs(outs[0].astype(int) - outs[1].astype(int))) <= 1


@pytest.mark.parametrize(("head", "reason"), [
    ("gap_mlp", "not linear"),
    ("conv_gap", "between the target and the pooling"),
    ("maxpool_fc", "does not start with global average pooling"),
])
def test_cam_refuses_other_heads_naming_them(tiny_file: Callable[..., Path], head: str,
                                             reason: str) -> None:
    info = xaigraph.inspect(tiny_file(head, False, "onnx17"))
    cam = info["methods"]["cam"]
    assert cam["applies"] is False and reason in cam["reason"]
    with pytest.raises(xaigraph.MethodError, match=reason):
        xaigraph.insert(tiny_file(head, False, "onnx17"), "cam")


def _eigen_reference(features: np.ndarray) -> np.ndarray:
    """Per image: the centred location vectors projected on their first right singular
    vector, signed to correlate positively with the channel mean."""
    n, c, h, w = features.shape
    out = np.zeros((n, h, w))
    for i in range(n):
        x = features[i].reshape(c, h * w).T  # [HW, C]
        centred = x - x.mean(axis=0, keepdims=True)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        projection = centred @ vt[0]
        if projection @ features[i].mean(axis=0).reshape(-1) < 0:
            projection = -projection
        out[i] = projection.reshape(h, w)
    return out


@pytest.mark.parametrize("fmt", BACKENDS)
@pytest.mark.parametrize("head", ["gap_fc", "maxpool_fc", "conv_gap"])
def test_eigencam_matches_numpy_svd(tiny_file: Callable[..., Path], fmt: str,
                                   head: str) -> None:
    model = tiny_models.Tiny(head, False)
    x = image(3, seed=12)
    got = _maps(tiny_file(head, False, "onnx17"), "eigencam", fmt, x)
    ref = _eigen_reference(tiny_models.target_map(model, x))
    assert got.shape == ref.shape
    for i in range(x.shape[0]):
        corr = np.corrcoef(got[i].reshape(-1), ref[i].reshape(-1))[0, 1]
        assert corr >= 0.999, (i, corr)


def test_eigencam_on_a_structured_map() -> None:
    """A map built from one strong pattern plus noise: the pattern comes back, signed."""
    import openvino as ov

    rng = np.random.default_rng(0)
    pattern = np.outer(np.hanning(6), np.hanning(6)).reshape(-1)  # the principal direction
    param = ov.opset13.parameter([1, 8, 6, 6], ov.Type.f32, name="x")
    features = ov.opset13.relu(param)
    pooled = ov.opset13.reduce_mean(features, np.array([2, 3]), keep_dims=False)
    scores = ov.opset13.matmul(pooled, rng.standard_normal((8, 3)).astype(np.float32), False,
                               False)
    model = ov.Model([scores], [param])
    result = xaigraph.insert(model, "eigencam", scaling=False, validate=False)
    loadings = np.abs(rng.standard_normal(8)) + 1
    x = (loadings[:, None] * pattern[None, :]).reshape(1, 8, 6, 6) * 10
    x = (x + 0.01 * rng.standard_normal(x.shape)).astype(np.float32)
    got = run(result.model, x)[-1].reshape(-1)
    assert np.corrcoef(got, pattern - pattern.mean())[0, 1] >= 0.999


def test_eigencam_refuses_huge_maps(tiny_file: Callable[..., Path]) -> None:
    """Fully dynamic input: probed at 224, the 112x112 map is too large to square."""
    info = xaigraph.inspect(tiny_file("gap_fc", False, "ov_dynamic"))
    assert info["methods"]["eigencam"]["applies"] is False
    assert "locations" in info["methods"]["eigencam"]["reason"]


def test_torch_reference_model_is_in_eval_mode() -> None:
    assert not tiny_models.Tiny("gap_fc").training
    assert torch.is_grad_enabled()  # the reference helpers switch grad off themselves

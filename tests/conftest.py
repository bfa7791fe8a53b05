"""Shared fixtures without torch: the tiny CNNs and detector of `tests.tiny_onnx` written once
per session by route, helpers to run IR models. The fixtures that export torch models
(`exported`, `tiny_file`) live in tests/integration/conftest.py, the one tier that needs torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest

from tests import tiny_onnx

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
LIGHT_MODELS = sorted(LIGHT_DIR.glob("light_*.onnx"))


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`written(name, build, route)`: `build(opset)` (an ONNX model) written by `route` as
    `name` (`tests.tiny_onnx.write`), once per session."""
    folder = tmp_path_factory.mktemp("onnx_models")
    cache: dict[tuple[str, str], Path] = {}

    def get(name: str, build: Callable[[int], onnx.ModelProto], route: str) -> Path:
        if (name, route) not in cache:
            cache[name, route] = tiny_onnx.write(build, route, folder, name)
        return cache[name, route]

    return get


@pytest.fixture(scope="session")
def cnn_file(written: Callable[..., Path]) -> Callable[..., Path]:
    """`cnn_file(head, softmax, route)`: the tiny CNN classifier of `tests.tiny_onnx` (the
    structure of `tiny_models.Tiny`, no torch) written by `route`."""

    def get(head: str, softmax: bool, route: str) -> Path:
        name = f"{head}{'_sm' if softmax else ''}"
        return written(name, lambda opset: tiny_onnx.cnn(head, softmax, opset=opset), route)

    return get


@pytest.fixture(scope="session")
def detector_file(written: Callable[..., Path]) -> Callable[..., Path]:
    """`detector_file(anchors, route)`: the tiny two-level detector of `tests.tiny_onnx` (the
    structure of `tiny_models.TinyDetector`, no torch) written by `route`."""

    def get(anchors: int, route: str) -> Path:
        return written(f"det{anchors}", lambda opset: tiny_onnx.detector(anchors, opset=opset),
                       route)

    return get


def run(model: ov.Model, *inputs: np.ndarray) -> list[np.ndarray]:
    """Outputs of `model` on OpenVINO CPU, f32 precision, in output order."""
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(list(inputs))
    return [np.asarray(result[i]) for i in range(len(model.outputs))]


def image(batch: int, size: int = tiny_onnx.SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)

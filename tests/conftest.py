"""Shared fixtures: tiny models exported once per session, helpers to run IR models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from tests import tiny_models

LIGHT_DIR = Path(__import__("onnx").__file__).parent / "backend" / "test" / "data" / "light"
LIGHT_MODELS = sorted(LIGHT_DIR.glob("light_*.onnx"))


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`exported(name, build, route)`: `build()` exported by `route` as `name`, once per
    session."""
    folder = tmp_path_factory.mktemp("models")
    cache: dict[tuple[str, str], Path] = {}

    def get(name: str, build: Callable[[], torch.nn.Module], route: str) -> Path:
        if (name, route) not in cache:
            cache[name, route] = tiny_models.export(build(), route, folder, name)
        return cache[name, route]

    return get


@pytest.fixture(scope="session")
def tiny_file(exported: Callable[..., Path]) -> Callable[..., Path]:
    """`tiny_file(head, softmax, route)`: a tiny CNN's exported file."""

    def get(head: str, softmax: bool, route: str) -> Path:
        name = f"{head}{'_sm' if softmax else ''}"
        return exported(name, lambda: tiny_models.Tiny(head, softmax), route)

    return get


def run(model: ov.Model, *inputs: np.ndarray) -> list[np.ndarray]:
    """Outputs of `model` on OpenVINO CPU, f32 precision, in output order."""
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(list(inputs))
    return [np.asarray(result[i]) for i in range(len(model.outputs))]


def image(batch: int, size: int = tiny_models.SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)

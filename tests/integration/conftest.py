"""The torch tier's fixtures: tiny models built with PyTorch (`tests.integration.tiny_models`)
and exported once per session, by OpenVINO's conversion or `torch.onnx.export`. Only the
tests under tests/integration load this file, so the unit and explain tiers run without
torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.integration import tiny_models


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

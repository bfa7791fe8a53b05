"""Channels-last maps: a head that works on the last axis marks a map NHWC, which is then
explained through a transpose to [N, C, H, W]; channels-last steps inside a channels-first
network are not mistaken for it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import xaigraph
from tests.conftest import image, run
from tests.integration import tiny_models
from tests.integration.test_onnx import ort_run
from tests.integration.test_reciprocam import assert_close_to_reference


class SwinLike(nn.Module):
    """Conv stem, then channels-last: [N, H, W, C] -> residual MLP -> LayerNorm -> mean over
    H, W -> Linear (as timm's Swin ends)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.mlp = nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 32), nn.GELU(),
                                 nn.Linear(32, 16))
        self.norm = nn.LayerNorm(16)
        self.fc = nn.Linear(16, tiny_models.CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.stem(x).permute(0, 2, 3, 1)  # [N, H, W, C]
        t = t + self.mlp(t)
        return self.fc(self.norm(t).mean(dim=(1, 2)))


class ConvNeXtLike(nn.Module):
    """Channels-first blocks that go channels-last inside (permute, LayerNorm, Linear,
    permute back), then global average pooling and a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)  # the same weights every time it is built
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.norm = nn.LayerNorm(16)
        self.pw = nn.Linear(16, 16)
        self.fc = nn.Linear(16, tiny_models.CLASSES)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        t = self.stem(x)
        u = self.pw(self.norm(self.dw(t).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        return t + u

    def tail(self, t: torch.Tensor) -> torch.Tensor:
        return self.fc(t.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(x))


@pytest.mark.parametrize(("route", "fmt"), [("ov_dynbatch", "ir"), ("onnx17", "ir"),
                                           ("onnx17", "onnx")])
def test_a_channels_last_map_is_explained_through_a_transpose(
        exported: Callable[..., Path], route: str, fmt: str) -> None:
    path = exported("swinlike", SwinLike, route)
    info = xaigraph.inspect(path)
    assert "[1,4,4,16] is channels-last (NHWC" in info["channels_last"]
    assert info["target"]["shape"] == "[1,16,4,4]" and info["methods"]["reciprocam"]["applies"]
    result = xaigraph.insert(path, "reciprocam", scaling=False, output_format=fmt)
    assert result.report["validation"]["passed"] is True
    assert result.report["target"]["shape"] == "[1,16,4,4]"
    x = image(2, seed=6)
    outs = run(result.model, x) if fmt == "ir" else ort_run(result.model, x)
    model = SwinLike().eval()
    with torch.no_grad():
        t = torch.from_numpy(x)
        t = model.stem(t).permute(0, 2, 3, 1)
        t = model.norm(t + model.mlp(t))  # the last map, [N, H, W, C]
        ref = torch.zeros(2, tiny_models.CLASSES, 4, 4, dtype=torch.float64)
        for i in range(4):
            for j in range(4):
                mosaic = torch.zeros_like(t)
                mosaic[:, i, j, :] = t[:, i, j, :]
                ref[:, :, i, j] = model.fc(mosaic.mean(dim=(1, 2))).double()
        np.testing.assert_allclose(outs[0], model(torch.from_numpy(x)).numpy(), rtol=1e-4,
                                   atol=1e-5)
    assert_close_to_reference(outs[-1], ref.numpy())


@pytest.mark.parametrize("route", ["ov_dynbatch", "onnx17"])
def test_channels_last_steps_inside_a_channels_first_net(exported: Callable[..., Path],
                                                        route: str) -> None:
    path = exported("convnextlike", ConvNeXtLike, route)
    result = xaigraph.insert(path, "reciprocam", scaling=False, output_format="ir")
    assert result.report["target"]["shape"] == "[1,16,4,4]"
    x = image(2, seed=4)
    model = ConvNeXtLike().eval()
    maps = run(result.model, x)[-1]
    with torch.no_grad():
        t = model.body(torch.from_numpy(x))
        ref = torch.zeros(2, tiny_models.CLASSES, 4, 4, dtype=torch.float64)
        for i in range(4):
            for j in range(4):
                mosaic = torch.zeros_like(t)
                mosaic[:, :, i, j] = t[:, :, i, j]
                ref[:, :, i, j] = model.tail(mosaic).double()
    assert_close_to_reference(maps, ref.numpy())


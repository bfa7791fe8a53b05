"""Tiny classifiers built in code with PyTorch, and the routes that turn them into files.

Each model splits at the tensor xaigraph should choose as its target: `body(x)` computes it
and `tail(t)` the class scores (logits, before any final softmax), so a test can compute a
brute-force ReciproCAM in torch, independently of the graph being tested.

Heads (drawn from the target T to the scores):

    gap_fc      T -> mean(H, W) -> Linear                                 (ResNet-like)
    gap_mlp     T -> mean(H, W) -> 1x1 Conv -> Hardswish -> Linear        (MobileNetV3-like)
    conv_gap    T -> 1x1 Conv (K) -> ReLU -> mean(H, W)                   (SqueezeNet-like)
    maxpool_fc  T = MaxPool(features);  T -> Flatten -> Linear -> ReLU -> Linear  (VGG-like)
    gap_view    like gap_fc, flattened by `t.view(image.size(0), -1)`
    maxpool_view  like maxpool_fc, flattened by `t.view(image.size(0), -1)`

The `view` variants take the batch size from the *image's* shape (as ONNX exports of
`x.view(x.size(0), -1)` often end up doing), so the head reads a shape computation that
starts outside it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

HEADS = ("gap_fc", "gap_mlp", "conv_gap", "maxpool_fc", "gap_view", "maxpool_view")
MOSAIC_HEADS = ("maxpool_fc", "maxpool_view")  # no global average pooling: mosaic form
SIZE = 16  # input height and width
CLASSES = 5


class Tiny(nn.Module):
    def __init__(self, head: str, softmax: bool = False, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.head, self.softmax = head, softmax
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 12, 3, stride=2, padding=1),
            nn.BatchNorm2d(12),
            nn.ReLU(),
        )
        if head in ("gap_fc", "gap_view"):
            self.fc = nn.Linear(12, CLASSES)
        elif head == "gap_mlp":
            self.conv_head = nn.Conv2d(12, 20, 1)
            self.fc = nn.Linear(20, CLASSES)
        elif head == "conv_gap":
            self.classifier = nn.Conv2d(12, CLASSES, 1)
        elif head in ("maxpool_fc", "maxpool_view"):
            self.fc1 = nn.Linear(12 * (SIZE // 4) ** 2, 16)
            self.fc2 = nn.Linear(16, CLASSES)
        else:
            raise ValueError(head)
        with torch.no_grad():  # non-trivial batch-norm statistics
            bn = self.features[3]
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
        self.eval()

    def body(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return nn.functional.max_pool2d(f, 2) if self.head in MOSAIC_HEADS else f

    def tail(self, t: torch.Tensor, batch: int | None = None) -> torch.Tensor:
        n = t.size(0) if batch is None else batch
        if self.head == "gap_fc":
            return self.fc(t.mean((2, 3)))
        if self.head == "gap_mlp":
            g = t.mean((2, 3), keepdim=True)
            return self.fc(torch.flatten(nn.functional.hardswish(self.conv_head(g)), 1))
        if self.head == "conv_gap":
            return torch.flatten(torch.relu(self.classifier(t)).mean((2, 3), keepdim=True), 1)
        if self.head == "gap_view":
            return self.fc(t.mean((2, 3), keepdim=True).view(n, -1))
        if self.head == "maxpool_view":
            return self.fc2(torch.relu(self.fc1(t.view(n, -1))))
        return self.fc2(torch.relu(self.fc1(torch.flatten(t, 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tail(self.body(x), x.size(0))
        return torch.softmax(y, 1) if self.softmax else y


class MLP(nn.Module):
    """No spatial feature map at all."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, CLASSES))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def brute_force_reciprocam(model: Tiny, x: np.ndarray) -> np.ndarray:
    """`S[n, k, i, j] = tail(T_n masked to location (i, j))[k]`, one tail run per location."""
    with torch.no_grad():
        t = model.body(torch.from_numpy(x))
        n, _, h, w = t.shape
        out = np.zeros((n, CLASSES, h, w), dtype=np.float64)
        for i in range(h):
            for j in range(w):
                mosaic = torch.zeros_like(t)
                mosaic[:, :, i, j] = t[:, :, i, j]
                out[:, :, i, j] = model.tail(mosaic).double().numpy()
    return out


def target_map(model: Tiny, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.body(torch.from_numpy(x)).double().numpy()


# -- routes -----------------------------------------------------------------------------------

ROUTES = ("ov_static", "ov_dynbatch", "ov_dynamic", "onnx11", "onnx13", "onnx17", "onnx18")


def export(model: nn.Module, route: str, folder: Path, name: str,
           example: torch.Tensor | None = None) -> Path:
    """Write `model` by `route`: OpenVINO conversion (static batch 1, dynamic batch, fully
    dynamic input) saved as IR, or `torch.onnx.export` at an opset (dynamic batch)."""
    import openvino as ov

    if example is None:
        example = torch.randn(1, 3, SIZE, SIZE)
    shape = list(example.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if route.startswith("ov_"):
            if route == "ov_static":
                inp = shape
            elif route == "ov_dynbatch":
                inp = [-1, *shape[1:]]
            else:
                inp = [-1] * len(shape)
            ov_model = ov.convert_model(model, example_input=example, input=[inp])
            if route == "ov_dynamic":
                ov_model.reshape({0: ov.PartialShape.dynamic(len(shape))})
            path = folder / f"{name}_{route}.xml"
            ov.save_model(ov_model, str(path), compress_to_fp16=False)
            return path
        opset = int(route.removeprefix("onnx"))
        path = folder / f"{name}_{route}.onnx"
        torch.onnx.export(
            model, (example,), str(path), opset_version=opset, dynamo=False,
            input_names=["image"], output_names=["scores"],
            dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}},
        )
        return path

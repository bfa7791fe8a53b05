"""Tiny classifiers built in code with PyTorch, and the routes that turn them into files.

Each model splits at the tensor xaigraph should choose as its target: `body(x)` computes it
and `tail(t)` the class scores (logits, before any final softmax), so a test can compute a
brute-force ReciproCAM in torch, independently of the graph being tested. (The sizes are
shared with `tests.tiny_onnx`, which builds `gap_fc`, `gap_mlp` and the detector without
torch.)

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

from tests.tiny_onnx import CLASSES, DET_CLASSES, SIZE

HEADS = ("gap_fc", "gap_mlp", "conv_gap", "maxpool_fc", "gap_view", "maxpool_view")
MOSAIC_HEADS = ("maxpool_fc", "maxpool_view")  # no global average pooling: mosaic form


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


# -- a tiny vision transformer -----------------------------------------------------------------

VIT_DIM, VIT_HEADS, VIT_PATCH = 32, 2, 4
VIT_GRID = SIZE // VIT_PATCH  # 4x4 tokens


class Block(nn.Module):
    def __init__(self, fused: bool) -> None:
        super().__init__()
        self.fused = fused
        self.norm1 = nn.LayerNorm(VIT_DIM)
        self.qkv = nn.Linear(VIT_DIM, 3 * VIT_DIM)
        self.proj = nn.Linear(VIT_DIM, VIT_DIM)
        self.norm2 = nn.LayerNorm(VIT_DIM)
        self.fc1 = nn.Linear(VIT_DIM, 2 * VIT_DIM)
        self.fc2 = nn.Linear(2 * VIT_DIM, VIT_DIM)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, VIT_HEADS, d // VIT_HEADS).permute(2, 0, 3, 1, 4)
        if self.fused:
            y = nn.functional.scaled_dot_product_attention(q, k, v)
        else:
            weights = (q @ k.transpose(-2, -1)) * (d // VIT_HEADS) ** -0.5
            y = weights.softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, n, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    """Patch embedding, `prefix` CLS-like tokens (0: mean-pooled), 3 blocks, norm, head."""

    def __init__(self, prefix: int = 1, fused: bool = True, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.prefix = prefix
        self.patch_embed = nn.Conv2d(3, VIT_DIM, VIT_PATCH, stride=VIT_PATCH)
        self.tokens = nn.Parameter(torch.randn(1, prefix, VIT_DIM) * 0.5)
        self.pos = nn.Parameter(torch.randn(1, prefix + VIT_GRID**2, VIT_DIM) * 0.5)
        self.blocks = nn.ModuleList(Block(fused) for _ in range(3))
        self.norm = nn.LayerNorm(VIT_DIM)
        self.head = nn.Linear(VIT_DIM, CLASSES)
        with torch.no_grad():  # non-trivial norm parameters
            for m in self.modules():
                if isinstance(m, nn.LayerNorm):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
        self.eval()

    def body(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        if self.prefix:  # (a zero-size concat crashes OpenVINO's converter)
            t = torch.cat([self.tokens.expand(t.shape[0], -1, -1), t], dim=1)
        t = t + self.pos
        for block in self.blocks[:-1]:
            t = block(t)
        return t

    def tail(self, t: torch.Tensor) -> torch.Tensor:
        t = self.norm(self.blocks[-1](t))
        return self.head(t[:, 0] if self.prefix else t.mean(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(x))


def vit_masks(prefix: int, grid: int = VIT_GRID) -> np.ndarray:
    """The mosaics' token weights, written out from ViT-ReciproCAM's definition: prefix tokens
    kept, grid tokens (`grid x grid`) weighted by the 3x3 kernel [.5, 1, .5] x [.5, 1, .5] at
    each location."""
    g = grid
    kernel = np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5])
    masks = np.zeros((g * g, prefix + g * g))
    masks[:, :prefix] = 1
    for i in range(g):
        for j in range(g):
            for a in range(g):
                for b in range(g):
                    if abs(a - i) <= 1 and abs(b - j) <= 1:
                        masks[i * g + j, prefix + a * g + b] = kernel[a - i + 1, b - j + 1]
    return masks


def brute_force_vitreciprocam(model: TinyViT, x: np.ndarray) -> np.ndarray:
    """`S[n, k, i, j]`: the last block, norm and head run once per masked token map."""
    masks = torch.from_numpy(vit_masks(model.prefix)).float()
    with torch.no_grad():
        t = model.body(torch.from_numpy(x))
        out = np.zeros((t.shape[0], CLASSES, VIT_GRID, VIT_GRID))
        for m in range(VIT_GRID**2):
            scores = model.tail(t * masks[m][None, :, None]).double().numpy()
            out[:, :, m // VIT_GRID, m % VIT_GRID] = scores
    return out


# -- a tiny single-stage detector ----------------------------------------------------------------

class TinyDetector(nn.Module):
    """Two feature levels (8x8 and 4x4 for a 16x16 input); on each, a shared class conv
    (A*K channels, anchor-major) and box conv (A*4), joined like torchvision's RetinaNet head
    into class logits `[N, M, K]` and boxes `[N, M, 4]`."""

    def __init__(self, anchors: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.anchors = anchors
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.cls = nn.Conv2d(8, anchors * DET_CLASSES, 3, padding=1)
        self.box = nn.Conv2d(8, anchors * 4, 3, padding=1)
        self.eval()

    def levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        p3 = self.stem(x)
        return [p3, self.down(p3)]

    def class_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.cls(f) for f in self.levels(x)]

    def _join(self, maps: list[torch.Tensor], depth: int) -> torch.Tensor:
        rows = []
        for t in maps:
            n, _, h, w = t.shape
            rows.append(t.view(n, self.anchors, depth, h, w).permute(0, 3, 4, 1, 2)
                        .reshape(n, -1, depth))
        return torch.cat(rows, dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.levels(x)
        return (self._join([self.cls(f) for f in feats], DET_CLASSES),
                self._join([self.box(f) for f in feats], 4))


def reference_detclassprob(model: TinyDetector, x: np.ndarray) -> np.ndarray:
    """Per level: max over anchors; repeat to the first level's size; mean; softmax."""
    with torch.no_grad():
        maps = [m.double().numpy() for m in model.class_maps(torch.from_numpy(x))]
    size = maps[0].shape[2]
    total = np.zeros((x.shape[0], DET_CLASSES, size, size))
    for m in maps:
        n, _, h, w = m.shape
        best = m.reshape(n, model.anchors, DET_CLASSES, h, w).max(axis=1)
        total += best.repeat(size // h, axis=2).repeat(size // w, axis=3)
    mean = total / len(maps)
    e = np.exp(mean - mean.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)

"""ReciproCAM equals a brute-force reference that re-runs the head once per location."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import xaigraph
from tests.conftest import image, run
from tests.integration import tiny_models

CASES = [(head, softmax) for head in tiny_models.HEADS for softmax in (False, True)]


def _route_cases() -> list[tuple[str, bool, str]]:
    out = []
    for head, softmax in CASES:
        for route in tiny_models.ROUTES:
            # A flatten->linear head only runs at the trained size; a fully dynamic input of
            # such a model makes no sense (and its shapes cannot be probed at another size).
            if head in tiny_models.MOSAIC_HEADS and route == "ov_dynamic":
                continue
            out.append((head, softmax, route))
    return out


def assert_close_to_reference(got: np.ndarray, ref: np.ndarray) -> None:
    assert got.shape == ref.shape
    span = float(ref.max() - ref.min())
    assert span > 0
    err = float(np.max(np.abs(got.astype(np.float64) - ref)))
    worst = np.unravel_index(np.argmax(np.abs(got - ref)), ref.shape)
    assert err <= 1e-4 * span, f"max diff {err:.3g} at {worst} (map range {span:.3g})"


@pytest.mark.parametrize(("head", "softmax", "route"), _route_cases())
def test_reciprocam_matches_brute_force(
    tiny_file: Callable[..., Path], head: str, softmax: bool, route: str
) -> None:
    path = tiny_file(head, softmax, route)
    result = xaigraph.insert(path, "reciprocam", scaling=False)
    expected_form = "mosaic" if head in tiny_models.MOSAIC_HEADS else "fast"
    assert result.report["form"].startswith(expected_form)

    batch = 1 if route == "ov_static" else 2
    x = image(batch)
    outputs = run(result.model, x)
    model = tiny_models.Tiny(head, softmax)
    assert_close_to_reference(outputs[-1], tiny_models.brute_force_reciprocam(model, x))


@pytest.mark.parametrize("head", ["gap_fc", "gap_mlp", "conv_gap"])
def test_fully_dynamic_model_at_two_sizes(tiny_file: Callable[..., Path], head: str) -> None:
    result = xaigraph.insert(tiny_file(head, False, "ov_dynamic"), "reciprocam", scaling=False)
    model = tiny_models.Tiny(head, False)
    for size, batch in ((16, 2), (24, 3)):
        x = image(batch, size, seed=size)
        saliency = run(result.model, x)[-1]
        assert saliency.shape == (batch, tiny_models.CLASSES, size // 2, size // 2)
        assert_close_to_reference(saliency, tiny_models.brute_force_reciprocam(model, x))


@pytest.mark.parametrize("head", ["gap_view", "maxpool_view"])
def test_view_flatten_reads_the_image_shape(tiny_file: Callable[..., Path], head: str) -> None:
    """The ONNX export of `x.view(x.size(0), -1)` takes the batch size from the image: the
    head reads a shape computation from outside; the copy recomputes it for its own batch."""
    import onnx

    path = tiny_file(head, False, "onnx17")
    graph = onnx.load(str(path)).graph
    assert any(n.op_type == "Shape" and n.input[0] == "image" for n in graph.node)
    info = xaigraph.inspect(path)
    assert info["target"]["shape"] == ("[1,12,8,8]" if head == "gap_view" else "[1,12,4,4]")
    assert info["methods"]["reciprocam"]["applies"] is True


@pytest.mark.parametrize("share", [True, False])
def test_shared_head_reads_the_weights_once(tiny_file: Callable[..., Path], share: bool) -> None:
    """With learned layers after the pooling, the model's own pooled vector joins the batch of
    location vectors, so each weight matrix is used by one op; the original outputs still
    match the original model (validation) and the maps the brute force."""
    from xaigraph.methods import METHODS
    from xaigraph.methods.reciprocam import ReciproCAM

    path = tiny_file("gap_mlp", True, "ov_dynbatch")
    saved = METHODS["reciprocam"]
    METHODS["reciprocam"] = ReciproCAM(share_head=share)
    try:
        result = xaigraph.insert(path, "reciprocam", scaling=False)
    finally:
        METHODS["reciprocam"] = saved
    assert result.report["validation"]["passed"] is True
    assert ("joins that batch" in result.report["form"]) == share
    types = [op.get_type_name() for op in result.model.get_ordered_ops()]
    assert types.count("MatMul") == (1 if share else 2)
    assert types.count("Convolution") == 2 + (1 if share else 2)  # 2 in the features
    x = image(2, seed=5)
    outputs = run(result.model, x)
    model = tiny_models.Tiny("gap_mlp", True)
    assert_close_to_reference(outputs[-1], tiny_models.brute_force_reciprocam(model, x))


class FoldedShape(torch.nn.Module):
    """The head reshapes with a size read from a tensor before the target whose dim 0 is
    not the batch (as attention that folds its heads into the batch does): `x.shape[2]` of a
    map the model fixes is the same for any batch, so the head can still be copied."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fold = torch.nn.Conv2d(4, 4, 1)
        self.fc = torch.nn.Linear(8, tiny_models.CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.conv1(x)
        t = self.conv2(torch.relu(pre))
        folded = self.fold(pre.reshape(-1, 4, 8, 8))  # [2N, 4, 8, 8]
        return self.tail(t, folded.shape[2])

    def tail(self, t: torch.Tensor, s: int | torch.Tensor) -> torch.Tensor:
        f = torch.relu(t.flatten(2).reshape(-1, 8, s * s))  # 3-D: t stays the target
        return self.fc(f.mean(dim=2))


def test_head_reading_a_fixed_size_from_a_folded_batch(exported: Callable[..., Path]) -> None:
    path = exported("folded", FoldedShape, "onnx17")
    result = xaigraph.insert(path, "reciprocam", scaling=False)
    model = FoldedShape().eval()
    x = image(2, seed=12)
    with torch.no_grad():
        t = model.conv2(torch.relu(model.conv1(torch.from_numpy(x))))
        ref = np.zeros((2, tiny_models.CLASSES, 8, 8))
        for i in range(8):
            for j in range(8):
                mosaic = torch.zeros_like(t)
                mosaic[:, :, i, j] = t[:, :, i, j]
                ref[:, :, i, j] = model.tail(mosaic, 8).double().numpy()
    assert_close_to_reference(run(result.model, x)[-1], ref)

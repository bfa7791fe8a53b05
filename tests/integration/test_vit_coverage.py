"""ViT-ReciproCAM on class-attention transformers (CaiT, XCiT, VOLO) and LeViT: tiny timm
configurations built in code (random weights), by OpenVINO's own conversion
(`openvino.convert_model` to IR) and by both ONNX routes (`torch.onnx.export`, then ONNX→ONNX
and ONNX→IR). The maps are compared with a brute-force reference in torch:
the target token map is masked by each location's kernel (a hook on the module that makes or
takes it) and the whole model re-runs once per location.

The class-attention models' target is the token map entering the class-attention stage
(found from the attention ops' query and key lengths, not from names): the old rule stopped
at the last self-attention block (CaiT) or found no target at all (VOLO, whose last
self-attention blocks work on a channels-last 4-D map).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.extras import require

torch = require("torch")
timm = require("timm")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import openvino as ov  # noqa: E402

from xaigraph.api import insert  # noqa: E402
from xaigraph.methods.vitreciprocam import token_masks  # noqa: E402
from xaigraph.tokens import TokenGrid  # noqa: E402


def _cait() -> Any:
    from timm.models.cait import Cait

    return Cait(img_size=32, patch_size=8, num_classes=5, embed_dim=32, depth=2, num_heads=2,
                depth_token_only=2)


def _xcit() -> Any:
    from timm.models.xcit import Xcit

    return Xcit(img_size=32, patch_size=8, num_classes=5, embed_dim=32, depth=2, num_heads=2,
                cls_attn_layers=2)


def _volo() -> Any:
    from timm.models.volo import VOLO

    return VOLO(layers=[1, 1, 1, 1], img_size=64, num_classes=5, stem_hidden_dim=16,
                embed_dims=[16, 32, 32, 32], num_heads=[1, 2, 2, 2])


def _levit() -> Any:
    from timm.models.levit import Levit

    return Levit(img_size=192, num_classes=5, embed_dim=(32, 48, 64), key_dim=8,
                 depth=(1, 1, 1), num_heads=(2, 2, 2))


# name: (builder, input size, token grid at the target, where the target is in torch:
# (module, "output" of it or "input" to it))
MODELS: dict[str, tuple[Callable[[], Any], int, TokenGrid, Callable[[Any], tuple[Any, str]]]] = {
    "cait": (_cait, 32, TokenGrid(0, 4, 4, "torch"), lambda m: (m.blocks[-1], "output")),
    "xcit": (_xcit, 32, TokenGrid(1, 4, 4, "torch"), lambda m: (m.cls_attn_blocks[0], "input")),
    "volo": (_volo, 64, TokenGrid(1, 4, 4, "torch"), lambda m: (m.post_network[0], "input")),
    "levit": (_levit, 192, TokenGrid(0, 3, 3, "torch"),
              lambda m: (m.stages[-1].blocks[-1], "input")),
}


def _build(name: str) -> Any:
    torch.manual_seed(0)
    model = MODELS[name][0]().eval()
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "gamma" in key:  # layer scales start at 1e-4: make every block count
                p.uniform_(0.5, 1.5)
    return model


def _export(model: Any, name: str, route: str, folder: Path, example_batch: int = 2) -> Any:
    """`route`: "ov" (OpenVINO's own conversion), "onnx" (an ONNX model, kept ONNX) or
    "onnx-ir" (the same ONNX model, written as IR). The dynamo exporter fixes the batch when
    the example's is 1 (as `make zoo` exports): every Reshape then has a constant shape whose
    first entry is that batch, with `allowzero=1`."""
    size = MODELS[name][1]
    x = torch.randn(example_batch, 3, size, size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if route == "ov":
            return ov.convert_model(model, example_input=x, input=[(-1, 3, size, size)])
        path = folder / f"{name}.onnx"
        names: dict[str, Any] = {"input_names": ["image"], "output_names": ["logits"]}
        if name == "volo":  # its col2im exports only by the dynamo exporter (opset 18)
            batch = torch.export.Dim("batch", min=1, max=64)
            torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=False,
                              dynamic_shapes=({0: batch},), **names)
        else:
            torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False,
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                              **names)
        return onnx.load(str(path))


def _reference(model: Any, name: str, x: np.ndarray) -> np.ndarray:
    """`[N, K, H, W]`: the logits with the target's tokens masked for each location."""
    grid = MODELS[name][2]
    module, where = MODELS[name][3](model)
    masks = torch.from_numpy(token_masks(grid))
    mask: list[Any] = [None]

    def on_output(_m: Any, _args: Any, out: Any) -> Any:
        return out * mask[0][None, :, None]

    def on_input(_m: Any, args: Any) -> Any:
        return (args[0] * mask[0][None, :, None], *args[1:])

    hook = (module.register_forward_hook(on_output) if where == "output"
            else module.register_forward_pre_hook(on_input))
    maps = []
    try:
        with torch.no_grad():
            for m in range(grid.locations):
                mask[0] = masks[m]
                maps.append(model(torch.from_numpy(x)).double().numpy())
    finally:
        hook.remove()
    return np.stack(maps, axis=-1).reshape(x.shape[0], -1, grid.height, grid.width)


def _run(result: Any, x: np.ndarray) -> np.ndarray:
    if isinstance(result.model, onnx.ModelProto):
        session = ort.InferenceSession(result.model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[-1])
    compiled = ov.Core().compile_model(result.model, "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    return np.asarray(compiled(x)[compiled.outputs[-1]])


ROUTES = ("ov", "onnx", "onnx-ir")


def _insert(model: Any, route: str) -> Any:
    fmt = {"ov": "ir", "onnx": "onnx", "onnx-ir": "ir"}[route]
    return insert(model, "vitreciprocam", scaling=False, output_format=fmt)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", list(MODELS))
def test_vitreciprocam_matches_the_brute_force(name: str, route: str, tmp_path: Path
                                               ) -> None:
    model = _build(name)
    result = _insert(_export(model, name, route, tmp_path), route)
    grid = MODELS[name][2]
    assert result.report["validation"]["passed"]
    tokens = result.report["target"]["shape"].strip("[]").split(",")[1]
    assert int(tokens) == grid.prefix + grid.locations
    size = MODELS[name][1]
    x = np.random.default_rng(1).standard_normal((2, 3, size, size)).astype(np.float32)
    got, ref = _run(result, x), _reference(model, name, x)
    assert got.shape == ref.shape == (2, 5, grid.height, grid.width)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


@pytest.mark.parametrize("route", ("onnx", "onnx-ir"))
def test_a_batch_fixed_dynamo_export(route: str, tmp_path: Path) -> None:
    """VOLO exported by the dynamo exporter from a batch-1 example: its Reshapes fix the
    batch in constant shapes, with `allowzero=1`. The head copy relaxes them to accept the
    batch of mosaics (a 0 that copies the input's dim, `allowzero` dropped: the same op,
    since the shape has no 0)."""
    model = _build("volo")
    exported = _export(model, "volo", route, tmp_path, example_batch=1)
    assert exported.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    reshapes = [n for n in exported.graph.node if n.op_type == "Reshape"]
    assert any(a.name == "allowzero" and a.i == 1 for n in reshapes for a in n.attribute)
    result = _insert(exported, route)
    assert result.report["validation"]["passed"]
    x = np.random.default_rng(2).standard_normal((1, 3, 64, 64)).astype(np.float32)
    got, ref = _run(result, x), _reference(model, "volo", x)
    assert got.shape == ref.shape == (1, 5, 4, 4)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


def _crossvit() -> Any:
    """Two branches: a 60-pixel image in 12-pixel patches (5x5) and, resized to 48 pixels,
    in 16-pixel patches (3x3); 2 multi-scale blocks (1 and 2 self-attention blocks, then the
    cross-attention between the class tokens and the other branch's patches)."""
    from timm.models.crossvit import CrossVit

    torch.manual_seed(0)
    return CrossVit(img_size=60, img_scale=(1.0, 0.8), patch_size=(12, 16), embed_dim=(16, 32),
                    depth=((1, 2, 0), (1, 2, 0)), num_heads=(2, 2), mlp_ratio=(2, 2, 1),
                    num_classes=5).eval()


def _crossvit_reference(model: Any, x: np.ndarray) -> np.ndarray:
    """`[N, K, 5, 5]`: per branch, the logits with the input of its last self-attention block
    masked for each location (the other branch untouched), resized to 5x5 by torch's
    bilinear interpolation (align_corners=False), then the mean of the two."""
    import torch.nn.functional as F

    last = model.blocks[-1].blocks  # the last multi-scale block's per-branch blocks
    maps = []
    mask: list[Any] = [None]

    def on_input(_m: Any, args: Any) -> Any:
        return (args[0] * mask[0][None, :, None], *args[1:])

    for branch, grid in enumerate((TokenGrid(1, 5, 5, "torch"), TokenGrid(1, 3, 3, "torch"))):
        masks = torch.from_numpy(token_masks(grid))
        hook = last[branch][-1].register_forward_pre_hook(on_input)
        scores = []
        try:
            with torch.no_grad():
                for m in range(grid.locations):
                    mask[0] = masks[m]
                    scores.append(model(torch.from_numpy(x)))
        finally:
            hook.remove()
        per = torch.stack(scores, dim=-1).reshape(x.shape[0], -1, grid.height, grid.width)
        maps.append(F.interpolate(per, size=(5, 5), mode="bilinear", align_corners=False))
    return ((maps[0] + maps[1]) / 2).double().numpy()


@pytest.mark.parametrize("route", ROUTES)
def test_crossvit_matches_the_brute_force(route: str, tmp_path: Path) -> None:
    """Found structurally: one token map per branch (the input of its last self-attention
    block), the two together cutting every path to the scores."""
    model = _crossvit()
    size = 60
    x = torch.randn(2, 3, size, size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if route == "ov":
            exported = ov.convert_model(model, example_input=x, input=[(-1, 3, size, size)])
        else:
            path = tmp_path / "crossvit.onnx"
            torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False,
                              input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
            exported = onnx.load(str(path))
    result = _insert(exported, route)
    assert result.report["validation"]["passed"]
    branches = result.report["target"]["branches"]
    assert [b["grid"] for b in branches] == ["5x5", "3x3"]
    images = np.random.default_rng(3).standard_normal((2, 3, size, size)).astype(np.float32)
    got, ref = _run(result, images), _crossvit_reference(model, images)
    assert got.shape == ref.shape == (2, 5, 5, 5)
    assert np.ptp(ref, axis=(2, 3)).min() > 1e-3 * np.abs(ref).max()  # the maps do vary
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())

"""ViT-ReciproCAM on two real timm architectures (random weights): CaiT (`cait_xxs24_224`,
class attention) and LeViT (`levit_128s`, a conv stem, then attention stages down to a 4x4
token map), from static-batch exports, where every shape was a constant.

OpenVINO's conversion with a static input (`input=[1, 3, 224, 224]`) folds CaiT's
`cls_token.expand(B, -1, -1)` into a constant `[1, 1, D]` that the class-attention blocks
concatenate with the token map, and writes LeViT's `x.flatten(0, 1)` / `reshape_as(x)`
(around each BatchNorm1d) as Reshapes to `[16, C]` and `[1, 16, C]`. The head copy runs on
one sequence per mosaic: it broadcasts such a constant to the mosaics' batch and makes dim 0
of such a Reshape -1. ONNX (`torch.onnx.export`, opset 17) with a static batch and with a
dynamic one, augmented as ONNX.

The maps are compared with a brute force in torch on the same module: the target token map
(a hook on the module that makes it or takes it) is replaced by its kernel-masked copies,
one per location (`vit_masks`), stacked on the batch, and the rest of the network runs
on them.
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

from tests.integration.tiny_models import vit_masks  # noqa: E402
from xaigraph.api import insert  # noqa: E402
from xaigraph.tokens import TokenGrid  # noqa: E402

SIZE = 224

# name: (the token grid at the target, where the target is in torch: (module, "output" of
# it or "input" to it), the target op's name in the OpenVINO conversion)
MODELS: dict[str, tuple[TokenGrid, Callable[[Any], tuple[Any, str]], str]] = {
    "cait_xxs24_224": (TokenGrid(0, 14, 14, "torch"), lambda m: (m.blocks, "output"),
                       "__module.blocks.23/aten::add/Add_1"),
    "levit_128s": (TokenGrid(0, 4, 4, "torch"), lambda m: (m.stages[-1].blocks[-1], "input"),
                   "__module.stages.2.blocks.2/aten::add/Add_1"),
}


def _randomized(name: str) -> Any:
    """`name` with random weights (seeded), its residual branches all counting: CaiT's
    class-attention layer scales (1e-5 at init) and LeViT's zero-initialised BatchNorm
    weights (every branch's last) drawn from [0.5, 1.5]; the BatchNorms' statistics set on
    16 random images, so that LeViT's activations are not all near 0 (where Hardswish is
    linear)."""
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for key, p in model.named_parameters():
            if (key.startswith("blocks_token_only") and "gamma" in key) or \
                    (key.endswith("bn.weight") and not p.any()):
                p.uniform_(0.5, 1.5)
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a plain average over the batches
        if norms:
            model.train()(torch.randn(16, 3, SIZE, SIZE))
    return model.eval()


@pytest.fixture(scope="module")
def built() -> Callable[[str], Any]:
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            cache[name] = _randomized(name)
        return cache[name]

    return get


def _export(model: Any, route: str, folder: Path) -> Any:
    x = torch.randn(1, 3, SIZE, SIZE)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if route == "ov":
            return ov.convert_model(model, example_input=x, input=[1, 3, SIZE, SIZE])
        path = folder / "model.onnx"
        dynamic = {"image": {0: "batch"}, "logits": {0: "batch"}} if route == "onnx" else None
        torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes=dynamic)
        return onnx.load(str(path))


def _reference(model: Any, name: str, x: np.ndarray) -> np.ndarray:
    """`[N, K, H, W]`: the class scores with the target token map replaced by its masked
    copies (location-major per image), the rest of the network run on them in torch."""
    grid = MODELS[name][0]
    module, where = MODELS[name][1](model)
    masks = torch.from_numpy(vit_masks(grid.prefix, grid.height)).float()  # [HW, L]

    def masked(tokens: Any) -> Any:
        length, dim = tokens.shape[1:]
        return (tokens[:, None] * masks[None, :, :, None]).reshape(-1, length, dim)

    hook = (module.register_forward_hook(lambda _m, _a, out: masked(out)) if where == "output"
            else module.register_forward_pre_hook(lambda _m, a: (masked(a[0]), *a[1:])))
    try:
        with torch.no_grad():
            scores = model(torch.from_numpy(x)).double()  # [N*HW, K]
    finally:
        hook.remove()
    n = x.shape[0]
    return scores.reshape(n, grid.locations, -1).permute(0, 2, 1).reshape(
        n, -1, grid.height, grid.width).numpy()


def _run(model: Any, x: np.ndarray) -> list[np.ndarray]:
    if isinstance(model, onnx.ModelProto):
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        return [np.asarray(o) for o in session.run(None, {"image": x})]
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    out = compiled(x)
    return [np.asarray(out[o]) for o in compiled.outputs]


CASES = [("levit_128s", "ov"), ("levit_128s", "onnx_static"), ("levit_128s", "onnx"),
         pytest.param("cait_xxs24_224", "ov", marks=pytest.mark.slow),
         ("cait_xxs24_224", "onnx_static"), ("cait_xxs24_224", "onnx")]


@pytest.mark.parametrize(("name", "route"), CASES)
def test_vitreciprocam_matches_a_torch_brute_force(built: Callable[[str], Any], name: str,
                                                   route: str, tmp_path: Path) -> None:
    model = built(name)
    grid = MODELS[name][0]
    result = insert(_export(model, route, tmp_path), "vitreciprocam", scaling=False,
                    output_format="ir" if route == "ov" else "onnx")
    assert result.report["validation"]["passed"]
    why = "the class tokens join" if name.startswith("cait") else "the head averages all tokens"
    assert result.report["form"].startswith("plain form") and why in result.report["form"]
    target = result.report["target"]
    assert target["shape"].startswith(f"[1,{grid.prefix + grid.locations},")
    if route == "ov":
        assert target["name"] == MODELS[name][2]
    x = np.random.default_rng(1).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    logits, got = _run(result.model, x)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    ref = _reference(model, name, x)
    assert got.shape == ref.shape == (1, 1000, grid.height, grid.width)
    assert np.ptp(ref, axis=(2, 3)).min() > 1e-4 * np.abs(ref).max()  # the maps do vary
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())

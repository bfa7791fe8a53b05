"""ViT-ReciproCAM on real timm transformers (random weights), by every export route.

For each model: `openvino.convert_model` with static and with dynamic batch (IR), and
`torch.onnx.export` at opset 14 and 17 (written as IR and as ONNX). Each is inserted with
`vitreciprocam` (validation and the fast form's self-check on), and the maps of one image are
compared with a brute-force reference computed in torch (the last block, the final norm and
the head run once per masked token map). Needs the `zoo` extra; models are cached under
~/.cache/xaigraph/vit.

    python tools/vit_check.py [--models deit_tiny_patch16_224,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import torch

import xaigraph
from xaigraph.methods.vitreciprocam import token_masks
from xaigraph.session import Session
from xaigraph.tokens import TokenGrid

CACHE = Path(os.environ.get("XAIGRAPH_CACHE", Path.home() / ".cache" / "xaigraph")) / "vit"
MODELS = ("deit_tiny_patch16_224", "deit_small_patch16_224", "vit_small_patch16_224",
          "vit_base_patch16_224")
ROUTES = ("ov_static", "ov_dynbatch", "onnx14", "onnx17")


def build(name: str) -> Any:
    import timm

    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False).eval()


def export(model: Any, name: str, route: str) -> Path:
    x = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if route.startswith("ov_"):
            path = CACHE / f"{name}_{route}.xml"
            if not path.exists():
                shape = [1, 3, 224, 224] if route == "ov_static" else [-1, 3, 224, 224]
                ov.save_model(ov.convert_model(model, example_input=x, input=[shape]), str(path),
                              compress_to_fp16=False)
            return path
        path = CACHE / f"{name}_{route}.onnx"
        if not path.exists():
            torch.onnx.export(model, (x,), str(path), opset_version=int(route[4:]),
                              dynamo=False, input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        return path


def reference(model: Any, x: np.ndarray) -> np.ndarray:
    """Brute force in torch: tokens before the last block, then one tail run per mosaic."""
    grid = TokenGrid(model.num_prefix_tokens, 14, 14, "timm")
    masks = torch.from_numpy(token_masks(grid))
    with torch.no_grad():
        t = model.patch_embed(torch.from_numpy(x))
        t = model._pos_embed(t)
        t = model.norm_pre(t)
        for block in model.blocks[:-1]:
            t = block(t)
        out = []
        for m in range(grid.locations):
            y = model.norm(model.blocks[-1](t * masks[m][None, :, None]))
            out.append(model.forward_head(y).double().numpy())
    return np.stack(out, axis=-1).reshape(x.shape[0], -1, 14, 14)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    failures = 0
    for name in args.models.split(","):
        model = build(name)
        ref = reference(model, x)
        span = float(ref.max() - ref.min())
        for route in ROUTES:
            path = export(model, name, route)
            for fmt in (("ir", "onnx") if route.startswith("onnx") else ("ir",)):
                start = time.perf_counter()
                try:
                    result = xaigraph.insert(path, "vitreciprocam", scaling=False,
                                             output_format=fmt)
                except xaigraph.XaiGraphError as exc:
                    print(f"{name:24} {route:12} {fmt:5} FAILED: {exc}", flush=True)
                    failures += 1
                    continue
                seconds = time.perf_counter() - start
                (got,) = Session.open(result.model).run([x], outputs=["saliency_map"])
                err = float(np.max(np.abs(got - ref)))
                ok = err <= 1e-4 * span
                failures += not ok
                form = result.report["form"].split(":")[0]
                check = result.report.get("self_check", {})
                print(f"{name:24} {route:12} {fmt:5} {form:16} self-check "
                      f"{'passed' if check.get('passed') else check.get('passed')} "
                      f"max diff {err:.2g} (range {span:.3g}) {'ok' if ok else 'WRONG'} "
                      f"insert {seconds:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

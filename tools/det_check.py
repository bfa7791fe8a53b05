"""detclassprobabilitymap on torchvision's single-stage detectors (random weights).

RetinaNet, FCOS and SSDlite are exported without their post-processing (what a serving stack
runs: backbone, FPN and head, raw class logits and box regressions), by
`openvino.convert_model` (IR) and `torch.onnx.export` opset 17 (IR and ONNX out). The maps are
compared with a reference computed in torch from the per-level class logits. Needs the `zoo`
extra.

    python tools/det_check.py
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import torch
from torch import nn

import xaigraph
from xaigraph.session import Session

SIZE = 320


class Raw(nn.Module):
    """A detector without post-processing: image -> (class logits, boxes), both `[N, M, *]`.
    (RetinaNet, FCOS and SSD heads all take the backbone's levels and return both.)"""

    def __init__(self, detector: Any) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.detector.head(list(self.detector.backbone(x).values()))
        return out["cls_logits"], out["bbox_regression"]


def _class_maps(name: str, det: Any, x: torch.Tensor) -> list[torch.Tensor]:
    """Per-level class logits `[N, A*K, h, w]`, computed the way each head does."""
    feats = list(det.backbone(x).values())
    head = det.head.classification_head
    maps = []
    for i, f in enumerate(feats):
        if name == "ssdlite":
            maps.append(head.module_list[i](f))
        else:
            maps.append(head.cls_logits(head.conv(f)))
    return maps


def reference(name: str, det: Any, x: np.ndarray, k: int) -> np.ndarray:
    with torch.no_grad():
        maps = [m.double().numpy() for m in _class_maps(name, det, torch.from_numpy(x))]
    maps.sort(key=lambda m: -m.shape[2] * m.shape[3])
    h0, w0 = maps[0].shape[2:]
    total = np.zeros((x.shape[0], k, h0, w0))
    for m in maps:
        n, c, h, w = m.shape
        best = m.reshape(n, c // k, k, h, w).max(axis=1)
        rows = (np.arange(h0) * h // h0)
        cols = (np.arange(w0) * w // w0)
        total += best[:, :, rows][:, :, :, cols]
    mean = total / len(maps)
    e = np.exp(mean - mean.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def build(name: str) -> tuple[Any, nn.Module]:
    from torchvision.models import detection as d

    torch.manual_seed(0)
    builders = {"retinanet": d.retinanet_resnet50_fpn, "fcos": d.fcos_resnet50_fpn,
                "ssdlite": d.ssdlite320_mobilenet_v3_large}
    det = builders[name](weights=None, weights_backbone=None).eval()
    return det, Raw(det).eval()


def main() -> int:
    x = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("retinanet", "fcos", "ssdlite"):
            det, raw = build(name)
            with torch.no_grad():
                k = raw(torch.from_numpy(x))[0].shape[-1]
            ref = reference(name, det, x, k)
            example = torch.from_numpy(x)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ir = Path(tmp) / f"{name}.xml"
                ov.save_model(ov.convert_model(raw, example_input=example), str(ir),
                              compress_to_fp16=False)
                onnx_path = Path(tmp) / f"{name}.onnx"
                torch.onnx.export(raw, (example,), str(onnx_path), opset_version=17,
                                  dynamo=False, input_names=["image"],
                                  output_names=["cls_logits", "bbox_regression"])
            for route, path, fmt in (("convert_model", ir, "ir"), ("onnx17", onnx_path, "ir"),
                                     ("onnx17", onnx_path, "onnx")):
                try:
                    result = xaigraph.insert(path, "detclassprobabilitymap", scaling=False,
                                             output_format=fmt)
                except xaigraph.XaiGraphError as exc:
                    print(f"{name:10} {route:14} {fmt:5} FAILED: {exc}", flush=True)
                    failures += 1
                    continue
                got = Session.open(result.model).run([x], outputs=["saliency_map"])[0]
                err = float(np.max(np.abs(got - ref)))
                ok = got.shape == ref.shape and err <= 1e-4
                failures += not ok
                print(f"{name:10} {route:14} {fmt:5} {result.report['form']}: map "
                      f"{list(got.shape)}, max diff {err:.2g} {'ok' if ok else 'WRONG'}",
                      flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Latency of augmented models over their originals: `make bench`.

For each model and method: insert (timed), compile the original and the augmented model on
OpenVINO CPU in this process with the same settings, then run interleaved rounds (original,
augmented, original, ...) at batch 1 and report the median of the per-round latency ratios.

Models: timm ResNet-50 and MobileNetV3-Large (random weights, converted by
`openvino.convert_model`; needs the `zoo` extra, cached under ~/.cache/xaigraph/bench) and the
bundled EfficientNet-Lite0 (ONNX, read by OpenVINO).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import openvino as ov

import xaigraph
from xaigraph.methods import METHODS
from xaigraph.methods.reciprocam import ReciproCAM
from xaigraph.model_io import core

CACHE = Path(os.environ.get("XAIGRAPH_CACHE", Path.home() / ".cache" / "xaigraph")) / "bench"
TARGETS = {
    ("resnet50", "reciprocam"): 1.10,
    ("efficientnet_lite0", "reciprocam"): 1.25,
    ("mobilenetv3_large_100", "reciprocam"): 1.30,
}
ACTIVATIONMAP_TARGET = 1.02


def timm_ir(name: str) -> Path:
    """timm `name` with random weights as IR, batch 1, 224x224 (built once, then cached)."""
    path = CACHE / f"{name}.xml"
    if path.exists():
        return path
    import timm
    import torch

    CACHE.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ov_model = ov.convert_model(model, example_input=torch.randn(1, 3, 224, 224),
                                    input=[(1, 3, 224, 224)])
    ov.save_model(ov_model, str(path), compress_to_fp16=False)
    return path


def bundled_model() -> Path:
    from importlib.resources import files

    return Path(str(files("xaigraph.data") / "efficientnet_lite0.onnx"))


def latency_ratio(original: ov.Model, augmented: ov.Model, rounds: int,
                  iters: int) -> tuple[float, float, float]:
    """(median ratio, median original ms, median augmented ms) over interleaved rounds.

    Each round times `iters` single inferences of each model, alternating one by one (A B A B
    in even rounds, B A B A in odd ones), and takes the ratio of the two medians; the result
    is the median of the round ratios. Alternating single inferences keeps both models under
    the same machine load, which on a shared machine drifts by tens of percent."""
    config = {"PERFORMANCE_HINT": "LATENCY"}
    reqs = [core().compile_model(m, "CPU", config).create_infer_request()
            for m in (original, augmented)]
    shape = [1 if d.is_dynamic else d.get_length() for d in original.inputs[0].get_partial_shape()]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for req in reqs:  # warm-up
        for _ in range(5):
            req.infer([x])
    medians: list[list[float]] = [[], []]
    ratios = []
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        samples: list[list[float]] = [[], []]
        for _ in range(iters):
            for i in order:
                start = time.perf_counter()
                reqs[i].infer([x])
                samples[i].append((time.perf_counter() - start) * 1e3)
        for i in (0, 1):
            medians[i].append(statistics.median(samples[i]))
        ratios.append(medians[1][-1] / medians[0][-1])
    return statistics.median(ratios), statistics.median(medians[0]), statistics.median(medians[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--models", default="resnet50,efficientnet_lite0,mobilenetv3_large_100")
    parser.add_argument("--methods", default="reciprocam,activationmap")
    parser.add_argument("--no-mosaic", dest="mosaic", action="store_false",
                        help="skip the comparison row with ReciproCAM's mosaic (tiled) form")
    args = parser.parse_args()

    rows = []
    methods = args.methods.split(",")
    if args.mosaic and "reciprocam" in methods:
        methods.append("reciprocam-mosaic")
    for name in args.models.split(","):
        path = bundled_model() if name == "efficientnet_lite0" else timm_ir(name)
        for method in methods:
            original = core().read_model(str(path))
            start = time.perf_counter()
            if method == "reciprocam-mosaic":  # the naive tiled form, for comparison
                METHODS["reciprocam"] = ReciproCAM(force_mosaic=True)
                try:
                    result = xaigraph.insert(path, "reciprocam")
                finally:
                    METHODS["reciprocam"] = ReciproCAM()
            else:
                result = xaigraph.insert(path, method)
            insert_s = time.perf_counter() - start
            ratio, base_ms, aug_ms = latency_ratio(original, result.model, args.rounds,
                                                   args.iters)
            target = TARGETS.get((name, method),
                                 ACTIVATIONMAP_TARGET if method == "activationmap" else None)
            verdict = "" if target is None else ("ok" if ratio <= target else "MISSED")
            rows.append((name, method, base_ms, aug_ms, ratio, target, verdict, insert_s))
            print(f"{name:24} {method:14} {base_ms:7.2f} ms {aug_ms:7.2f} ms  x{ratio:.3f}"
                  f"  target {'-' if target is None else f'<= {target:.2f}'} {verdict}"
                  f"  insert {insert_s:.1f} s", flush=True)

    print()
    print(f"OpenVINO {ov.get_version().split('-')[0]}, CPU, batch 1, {args.rounds} rounds x "
          f"{args.iters} alternating inferences per model, medians")
    print()
    print("| model | method | original | augmented | ratio | target | insert |")
    print("|---|---|---|---|---|---|---|")
    for name, method, base, aug, ratio, target, verdict, ins in rows:
        tgt = "-" if target is None else f"<= {target:.2f}x {verdict}"
        print(f"| {name} | {method} | {base:.2f} ms | {aug:.2f} ms | {ratio:.3f}x | {tgt} "
              f"| {ins:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

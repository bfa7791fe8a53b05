"""Latency of augmented models over their originals: `make bench`.

For each runtime, model and method: insert (timed), load the original and the augmented model
in this process with the same settings, then alternate single inferences of the two at batch
1 and report the median latency ratio.

Runtimes: OpenVINO CPU (IR output) and ONNX Runtime CPU (ONNX output, default graph
optimisations). Models: timm ResNet-50, MobileNetV3-Large and DeiT-Tiny (random weights;
converted by `openvino.convert_model` for OpenVINO and exported by `torch.onnx.export` for
ONNX Runtime; needs the `zoo` extra; cached under ~/.cache/xaigraph/bench) and the bundled
EfficientNet-Lite0 (ONNX; read by OpenVINO for the IR rows). CNNs get ReciproCAM and the
activation map, DeiT-Tiny ViT-ReciproCAM; the naive forms are measured alongside.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import openvino as ov

import xaigraph
from xaigraph.session import Session

CACHE = Path(os.environ.get("XAIGRAPH_CACHE", Path.home() / ".cache" / "xaigraph")) / "bench"
TARGETS = {  # (runtime, model, method) -> the largest acceptable ratio
    ("openvino", "resnet50", "reciprocam"): 1.10,
    ("openvino", "efficientnet_lite0", "reciprocam"): 1.25,
    ("openvino", "mobilenetv3_large_100", "reciprocam"): 1.30,
    ("onnxruntime", "resnet50", "reciprocam"): 1.10,
    ("onnxruntime", "efficientnet_lite0", "reciprocam"): 1.25,
    ("openvino", "deit_tiny_patch16_224", "vitreciprocam"): 1.5,
    ("openvino", "resnet50", "reciprocam-topk5"): 1.03,
    ("onnxruntime", "deit_tiny_patch16_224", "vitreciprocam"): 1.5,
}
TRANSFORMERS = {"deit_tiny_patch16_224"}
ACTIVATIONMAP_TARGET = 1.02
Runner = Callable[[np.ndarray], Any]


def _timm(name: str) -> Any:
    import timm
    import torch

    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False).eval()


def timm_file(name: str, runtime: str) -> Path:
    """timm `name`, batch 1, 224x224: IR for OpenVINO, ONNX for ONNX Runtime (cached)."""
    path = CACHE / (f"{name}.xml" if runtime == "openvino" else f"{name}.onnx")
    if path.exists():
        return path
    import torch

    CACHE.mkdir(parents=True, exist_ok=True)
    example = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if runtime == "openvino":
            model = ov.convert_model(_timm(name), example_input=example, input=[(1, 3, 224, 224)])
            ov.save_model(model, str(path), compress_to_fp16=False)
        else:
            torch.onnx.export(_timm(name), (example,), str(path), opset_version=17,
                              dynamo=False, input_names=["image"], output_names=["logits"])
    return path


def bundled_model() -> Path:
    from importlib.resources import files

    return Path(str(files("xaigraph.data") / "efficientnet_lite0.onnx"))


def ov_runner(model: ov.Model | Path) -> Runner:
    session = Session.open(model, "openvino", precision=None,
                           config={"PERFORMANCE_HINT": "LATENCY"})
    return lambda x: session.run([x])


def ort_runner(model: Any) -> Runner:
    # Two sessions alternate here: with spinning worker threads (the default) the idle one's
    # threads would keep spinning and slow the other one down.
    session = Session.open(model, "onnxruntime", optimize=True,
                           config={"session.intra_op.allow_spinning": "0"})
    return lambda x: session.run([x])


def latency_ratio(runs: tuple[Runner, Runner], x: np.ndarray, rounds: int,
                  iters: int) -> tuple[float, float, float]:
    """(median ratio, median original ms, median augmented ms).

    Each round times `iters` single inferences of each model, alternating one by one (A B A B
    in even rounds, B A B A in odd ones), and takes the ratio of the two medians; the result
    is the median of the round ratios. Alternating single inferences keeps both models under
    the same machine load, which on a shared machine drifts by tens of percent."""
    for run in runs:  # warm-up
        for _ in range(5):
            run(x)
    medians: list[list[float]] = [[], []]
    ratios = []
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        samples: list[list[float]] = [[], []]
        for _ in range(iters):
            for i in order:
                start = time.perf_counter()
                runs[i](x)
                samples[i].append((time.perf_counter() - start) * 1e3)
        for i in (0, 1):
            medians[i].append(statistics.median(samples[i]))
        ratios.append(medians[1][-1] / medians[0][-1])
    return statistics.median(ratios), statistics.median(medians[0]), statistics.median(medians[1])


def insert(path: Path, method: str, output_format: str) -> tuple[Any, float]:
    start = time.perf_counter()
    variants = {  # the naive forms, for comparison
        "reciprocam-mosaic": ("reciprocam", "mosaic"),
        "vitreciprocam-plain": ("vitreciprocam", "plain"),
    }
    if method in variants:
        name, form = variants[method]
        result = xaigraph.insert(path, name, form=form, output_format=output_format)
    elif method.endswith("-topk5"):
        result = xaigraph.insert(path, method.removesuffix("-topk5"), targets="topk:5",
                                 output_format=output_format)
    else:
        result = xaigraph.insert(path, method, output_format=output_format)
    return result.model, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--runtimes", default="openvino,onnxruntime")
    parser.add_argument("--models", default="resnet50,efficientnet_lite0,mobilenetv3_large_100,"
                        "deit_tiny_patch16_224")
    parser.add_argument("--methods", default="reciprocam,activationmap")
    parser.add_argument("--no-mosaic", dest="mosaic", action="store_false",
                        help="skip the comparison row with ReciproCAM's mosaic (tiled) form")
    args = parser.parse_args()

    cnn_methods = args.methods.split(",")
    if args.mosaic and "reciprocam" in cnn_methods:
        cnn_methods.append("reciprocam-mosaic")
    vit_methods = ["vitreciprocam", *(["vitreciprocam-plain"] if args.mosaic else [])]
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    rows = []
    for runtime in args.runtimes.split(","):
        for name in args.models.split(","):
            path = bundled_model() if name == "efficientnet_lite0" else timm_file(name, runtime)
            fmt = "ir" if runtime == "openvino" else "onnx"
            methods = vit_methods if name in TRANSFORMERS else cnn_methods
            if name == "resnet50" and "reciprocam" in methods:
                methods = [*methods, "reciprocam-topk5"]
            for method in methods:
                augmented, insert_s = insert(path, method, fmt)
                if runtime == "openvino":
                    runs = (ov_runner(path), ov_runner(augmented))
                else:
                    runs = (ort_runner(path), ort_runner(augmented))
                ratio, base_ms, aug_ms = latency_ratio(runs, x, args.rounds, args.iters)
                target = TARGETS.get((runtime, name, method),
                                     ACTIVATIONMAP_TARGET if method == "activationmap" else None)
                verdict = "" if target is None else ("ok" if ratio <= target else "MISSED")
                rows.append((runtime, name, method, base_ms, aug_ms, ratio, target, verdict,
                             insert_s))
                print(f"{runtime:12} {name:22} {method:18} {base_ms:7.2f} ms {aug_ms:7.2f} ms"
                      f"  x{ratio:.3f}  target {'-' if target is None else f'<= {target:.2f}'}"
                      f" {verdict}  insert {insert_s:.1f} s", flush=True)

    print()
    print(f"OpenVINO {ov.get_version().split('-')[0]} and ONNX Runtime {ort.__version__}, CPU, "
          f"batch 1, {args.rounds} rounds x {args.iters} alternating inferences per model, "
          "medians")
    print()
    print("| runtime | model | method | original | augmented | ratio | target | insert |")
    print("|---|---|---|---|---|---|---|---|")
    for runtime, name, method, base, aug, ratio, target, verdict, ins in rows:
        tgt = "-" if target is None else f"<= {target:.2f}x {verdict}"
        print(f"| {runtime} | {name} | {method} | {base:.2f} ms | {aug:.2f} ms | {ratio:.3f}x "
              f"| {tgt} | {ins:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the black-box methods (issue 13), against OpenVINO XAI 1.1.0's RISE.

    .venv/bin/python tools/bench_blackbox.py [--rounds 3] [--quick] --peer .venv-peer/bin/python

(`make bench-runtime` runs it with the peer's venv that `make .venv-peer` builds.)

- Images: the bundled cat photo (its centre crop, scaled to 96x96) pasted at known positions
  on a plain grey 224x224 background; the known box is where it was pasted. Input: the
  EfficientNet-Lite0 normalisation `(rgb - 127) / 128`, stretch (no crop). Target: top-1.
- Engine: OpenVINO CPU, f32 inference precision for both sides (the peer's compile is given
  `INFERENCE_PRECISION_HINT=f32`; this CPU has avx512_bf16, on which OpenVINO's default
  would be bf16). Both sides mask with baseline 0 (`mask * x`, the peer's convention) and use
  8 x 8 cells, p = 0.5.
- Ours: `rise` with the masks made inside the model (`explain.masked`, what `xaigraph
  explain --method rise` runs on OpenVINO).
- Floor: N plain inferences of the unmasked input, the fastest of several batch sizes and
  numbers of asynchronous requests (THROUGHPUT hint).
- Rounds are interleaved (ours, floor, peer, in turn); the median is reported.
- Quality: pointing game (the map's peak inside the box) and mass in box (the share of the
  min-max scaled map inside the box), averaged over the images; the peer's RISE at 5000 masks
  is the reference; ours at increasing mask counts until both are within 0.02 (or better).
- Memory: peak RSS of RISE at N = 8000 on a 1024x1024 input with a numpy "model" (a
  subprocess of its own).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xaigraph.explain.blackbox import class_predict  # noqa: E402
from xaigraph.explain.masked import MaskedModel  # noqa: E402
from xaigraph.explain.rise import rise  # noqa: E402
from xaigraph.model_io import core  # noqa: E402
from xaigraph.session import Session  # noqa: E402

MODEL = ROOT / "xaigraph" / "data" / "efficientnet_lite0.onnx"
SIZE = 224
CAT = 96
POSITIONS = [(10, 12), (118, 110), (20, 120), (112, 16)]  # (top, left) of the pasted cat
CELLS, PROB = 8, 0.5
F32 = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "THROUGHPUT"}


def images() -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    with resources.as_file(resources.files("xaigraph.data") / "chelsea.png") as p:
        photo = Image.open(p).convert("RGB")
    w, h = photo.size
    side = min(w, h)
    cat = photo.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
    cat = cat.resize((CAT, CAT), Image.Resampling.BICUBIC)
    xs, boxes = [], []
    for top, left in POSITIONS:
        canvas = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
        canvas.paste(cat, (left, top))
        a = (np.asarray(canvas, np.float32) - 127.0) / 128.0
        xs.append(a.transpose(2, 0, 1)[None])
        boxes.append((left, top, left + CAT, top + CAT))
    return np.concatenate(xs), boxes


def quality(maps: list[np.ndarray], boxes: list[tuple[int, int, int, int]]) -> tuple[float, float]:
    pg, mib = [], []
    for m, (x1, y1, x2, y2) in zip(maps, boxes, strict=True):
        y, x = np.unravel_index(int(np.argmax(m)), m.shape)
        pg.append(float(x1 <= x < x2 and y1 <= y < y2))
        s = (m - m.min()) / max(float(m.max() - m.min()), 1e-12)
        mib.append(float(s[y1:y2, x1:x2].sum() / max(float(s.sum()), 1e-12)))
    return float(np.mean(pg)), float(np.mean(mib))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def best_config(session: Session, x: np.ndarray) -> tuple[int, int, float]:
    """(batch, requests, seconds per inference) of the fastest way to run plain inferences."""
    best = (1, 1, float("inf"))
    for batch in (1, 4, 8, 16, 32):
        for requests in (1, 2, 4):
            n = max(128 // batch, 2 * requests)
            feeds = [[np.repeat(x, batch, axis=0)]] * n
            session.run_many(feeds[:requests], requests=requests)  # warm up
            t = time.perf_counter()
            session.run_many(feeds, requests=requests)
            per = (time.perf_counter() - t) / (n * batch)
            if per < best[2]:
                best = (batch, requests, per)
    return best


def floor(session: Session, x: np.ndarray, n: int, batch: int, requests: int) -> float:
    feeds = [[np.repeat(x, batch, axis=0)]] * (-(-n // batch))
    t = time.perf_counter()
    session.run_many(feeds, requests=requests)
    return time.perf_counter() - t


PEER = textwrap.dedent('''
    import json, sys, time
    import numpy as np
    import openvino as ov
    spec = json.loads(sys.argv[1])
    _compile = ov.Core.compile_model
    def compile_f32(self, model, device_name="CPU", config=None):
        config = dict(config or {})
        config.setdefault("INFERENCE_PRECISION_HINT", "f32")
        return _compile(self, model, device_name, config)
    ov.Core.compile_model = compile_f32
    import openvino_xai as xai
    from openvino_xai.explainer import ExplainMode
    def softmax(out):
        z = np.asarray(out[0], np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    model = ov.Core().read_model(spec["model"])
    explainer = xai.Explainer(model=model, task=xai.Task.CLASSIFICATION, postprocess_fn=softmax,
                              explain_mode=ExplainMode.BLACKBOX,
                              explain_method=xai.Method.RISE)
    xs = np.load(spec["inputs"])
    result = {"seconds": [], "maps": spec["maps"], "version": ov.__version__}
    maps = []
    for x, target in zip(xs, spec["targets"]):
        t = time.perf_counter()
        e = explainer(x[None], targets=[target], num_masks=spec["num_masks"],
                      num_cells=spec["cells"], prob=spec["prob"], seed=0, resize=False,
                      colormap=False, scaling=False)
        result["seconds"].append(time.perf_counter() - t)
        maps.append(np.asarray(e.saliency_map[target], np.float64))
    np.save(spec["maps"], np.stack(maps))
    print(json.dumps(result))
''')


def run_peer(python: str, xs: np.ndarray, targets: list[int], n: int, folder: Path
             ) -> tuple[list[float], np.ndarray, str]:
    inputs, maps = folder / "inputs.npy", folder / f"peer_{n}.npy"
    np.save(inputs, xs)
    spec = {"model": str(MODEL), "inputs": str(inputs), "targets": targets, "num_masks": n,
            "cells": CELLS, "prob": PROB, "maps": str(maps)}
    out = subprocess.run([python, "-c", PEER, json.dumps(spec)], capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"], np.load(maps), result["version"]


MEMORY = textwrap.dedent('''
    import resource, sys, time
    import numpy as np
    from xaigraph.explain.rise import rise
    x = np.random.default_rng(0).normal(size=(1, 3, 1024, 1024)).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    m = rise(x, lambda b: b.mean(axis=(1, 2, 3))[:, None] + 0.5, targets=[0],
             num_masks=int(sys.argv[1]), cells=8, prob=0.5, seed=0)
    print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)
''')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer", required=True, help="the python of a venv with openvino-xai")
    parser.add_argument("--quick", action="store_true",
                        help="1 round, 1 image for speed, 2000 masks at most in memory")
    parser.add_argument("--speed-images", type=int, default=2)
    parser.add_argument("--quality-masks", default="250,500,1000,1500,2000,3000")
    parser.add_argument("--memory-masks", type=int, default=8000)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.speed_images, args.memory_masks = 1, 1, min(args.memory_masks, 2000)

    xs, boxes = images()
    session = Session.open(MODEL, "openvino", precision="f32", config=F32)
    probs = class_predict(session)(xs)
    targets = [int(t) for t in probs.argmax(axis=1)]
    batch, requests, per = best_config(session, xs[:1])
    print(f"floor config: batch {batch}, {requests} requests, {per * 1e3:.2f} ms/inference")
    predict = class_predict(session, batch_size=batch, requests=requests)
    masked = MaskedModel(core().read_model(str(MODEL)), layout="NCHW",
                         baseline=np.zeros_like(xs[:1]), output=0, post=softmax)
    masked.session(CELLS, (SIZE, SIZE))  # compiled once, as explain does per run

    def ours(x: np.ndarray, target: int, n: int) -> tuple[float, np.ndarray]:
        t = time.perf_counter()
        m = rise(x[None], predict, targets=[target], num_masks=n, cells=CELLS, prob=PROB,
                 seed=0, runner=masked.runner(x[None]))
        return time.perf_counter() - t, m[0]

    folder = Path(tempfile.mkdtemp(prefix="bench_blackbox_"))
    speed: dict[str, list[float]] = {}
    version = "?"
    k = args.speed_images
    for _ in range(args.rounds):
        for n in (1000, 4000):
            speed.setdefault(f"ours {n}", []).append(
                statistics.mean(ours(xs[i], targets[i], n)[0] for i in range(k)))
            speed.setdefault(f"floor {n}", []).append(floor(session, xs[:1], n, batch, requests))
            seconds, _, version = run_peer(args.peer, xs[:k], targets[:k], n, folder)
            speed.setdefault(f"peer {n}", []).append(statistics.mean(seconds))
    med = {key: statistics.median(v) for key, v in speed.items()}

    # quality: the peer's RISE at 5000 masks is the reference
    peer_seconds, peer_maps, version = run_peer(args.peer, xs, targets, 5000, folder)
    peer_q = quality(list(peer_maps), boxes)
    sweep = []
    for n in [int(s) for s in args.quality_masks.split(",")]:
        runs = [ours(xs[i], targets[i], n) for i in range(len(xs))]
        q = quality([m for _, m in runs], boxes)
        sweep.append((n, statistics.mean(t for t, _ in runs), q))
        if q[0] >= peer_q[0] - 0.02 and q[1] >= peer_q[1] - 0.02:
            break

    # AISE
    from xaigraph.explain.aise import aise
    from xaigraph.explain.blackbox import PRESETS
    aise_rows = []
    for name, p in PRESETS.items():
        times, counts, maps = [], [], []
        for i in range(len(xs)):
            t = time.perf_counter()
            m, count = aise(xs[i:i + 1], lambda b, i=i: predict(b)[:, [targets[i]]], targets=1,
                            widths=p.widths, evals=p.evals)
            times.append(time.perf_counter() - t)
            counts.append(count)
            maps.append(m[0])
        aise_rows.append((name, statistics.mean(times), statistics.mean(counts),
                          quality(maps, boxes)))

    mem = None
    if args.memory_masks:
        out = subprocess.run([sys.executable, "-c", MEMORY, str(args.memory_masks)],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        before, after, seconds = out.stdout.split()
        mem = (int(before) / 1024, int(after) / 1024, float(seconds))

    print(f"\nEfficientNet-Lite0 224x224, OpenVINO CPU f32 (ours {session_version()}, peer "
          f"OpenVINO {version}), {args.rounds} interleaved rounds, median; {k} images for "
          f"speed, {len(xs)} for quality")
    print("\n| RISE | ours s/image | floor s | ours / floor | OpenVINO XAI 1.1.0 s/image | "
          "peer / ours |")
    print("|---|---|---|---|---|---|")
    for n in (1000, 4000):
        o, f, p = med[f"ours {n}"], med[f"floor {n}"], med[f"peer {n}"]
        print(f"| {n} masks | {o:.2f} | {f:.2f} | {o / f:.3f}x | {p:.2f} | {p / o:.2f}x |")
    print(f"\nquality reference: OpenVINO XAI RISE 5000 masks: pointing game {peer_q[0]:.2f}, "
          f"mass in box {peer_q[1]:.3f}, {statistics.mean(peer_seconds):.2f} s/image")
    print("\n| ours, masks | s/image | pointing game | mass in box |")
    print("|---|---|---|---|")
    for n, t, q in sweep:
        print(f"| {n} | {t:.2f} | {q[0]:.2f} | {q[1]:.3f} |")
    n, t, q = sweep[-1]
    reached = q[0] >= peer_q[0] - 0.02 and q[1] >= peer_q[1] - 0.02
    print(f"\ntime to equal quality: ours {t:.2f} s ({n} masks) vs peer "
          f"{statistics.mean(peer_seconds):.2f} s: {statistics.mean(peer_seconds) / t:.2f}x less"
          + ("" if reached else " (NOT reached within the sweep)"))
    print("\n| AISE preset | s/image | inferences/image | pointing game | mass in box |")
    print("|---|---|---|---|---|")
    for name, t, c, q in aise_rows:
        print(f"| {name} | {t:.2f} | {c:.0f} | {q[0]:.2f} | {q[1]:.3f} |")
    if mem:
        print(f"\nmemory: RISE {args.memory_masks} masks on 1024x1024 (numpy model): peak RSS "
              f"{mem[1]:.0f} MB (before: {mem[0]:.0f} MB), {mem[2]:.1f} s")


def session_version() -> str:
    import openvino as ov
    return f"OpenVINO {ov.__version__.split('-')[0]}"


if __name__ == "__main__":
    main()

"""Benchmark of the black-box methods (issue 13), against OpenVINO XAI 1.1.0's RISE.

    .venv/bin/python tools/bench_blackbox.py [--rounds 3] [--quick] --peer .venv-peer/bin/python

(`make bench-runtime` runs it with the peer's venv that `make .venv-peer` builds.)

- Images: the bundled cat photo (its centre crop, scaled to 96x96) pasted at known positions
  on a plain grey 224x224 background; the known box is where it was pasted. Input: the
  EfficientNet-Lite0 normalisation `(rgb - 127) / 128`, stretch (no crop). Target: top-1.
- Engine: OpenVINO CPU, the same inference precision on both sides, once per precision of
  `--precisions` (default f32 and bf16; the peer's compile is given the same
  `INFERENCE_PRECISION_HINT`; on a CPU with bf16, bf16 is OpenVINO's default, so it is what
  both tools run out of the box; a CPU without it skips bf16). Both sides mask with baseline
  0 (`mask * x`, the peer's convention) and use 8 x 8 cells, p = 0.5.
- Ours: `rise` with the masks made inside the model (`explain.masked`, what `xaigraph
  explain --method rise` runs on OpenVINO).
- Floor: N plain inferences of the unmasked input through the plain model reshaped to a
  static batch, the fastest of batch 1..32 x 1, 2, 4 or OpenVINO's optimal number of
  asynchronous requests (THROUGHPUT hint) on a probe of 256 inferences. Printed beside it:
  the same inferences one synchronous image at a time, as the peer runs its masks.
- Rounds are interleaved (ours, floor, peer, in turn, for each precision); the median is
  reported.
- Quality (f32): pointing game (the map's peak inside the box) and mass in box (the share of the
  min-max scaled map inside the box), averaged over the images; the peer's RISE at 5000 masks
  is the reference; ours at increasing mask counts until both are within 0.02 (or better).
- Memory: peak RSS (VmHWM) of RISE at N = 8000 on a 1024x1024 input with a numpy "model"
  (a subprocess of its own), and what N masks of that size would take at once.
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
THROUGHPUT = {"PERFORMANCE_HINT": "THROUGHPUT"}


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


def static_session(precision: str, batch: int, hint: str = "THROUGHPUT") -> Session:
    """The plain model reshaped to a fixed batch (OpenVINO compiles a static shape better
    than the dynamic one; the masked model is static too)."""
    model = core().read_model(str(MODEL))
    model.reshape([batch, 3, SIZE, SIZE])
    return Session.open(model, "openvino", precision=precision,
                        config={"PERFORMANCE_HINT": hint})


def best_config(precision: str, x: np.ndarray) -> tuple[Session, int, int, float]:
    """(session, batch, requests, seconds per inference) of the fastest way found to run
    plain inferences: static batches 1..32, 1, 2, 4 or OpenVINO's optimal number (0) of
    asynchronous requests."""
    best: tuple[Session | None, int, int, float] = (None, 1, 1, float("inf"))
    for batch in (1, 4, 8, 16, 32):
        session = static_session(precision, batch)
        for requests in (1, 2, 4, 0):
            n = max(256 // batch, 8)
            feeds = [[np.repeat(x, batch, axis=0)]] * n
            session.run_many(feeds[:4], requests=requests)  # warm up
            t = time.perf_counter()
            session.run_many(feeds, requests=requests)
            per = (time.perf_counter() - t) / (n * batch)
            if per < best[3]:
                best = (session, batch, requests, per)
    assert best[0] is not None
    return best[0], best[1], best[2], best[3]


def one_at_a_time(precision: str, x: np.ndarray, n: int = 256) -> float:
    """Seconds per plain inference run as the peer runs its masks: batch 1, synchronous,
    compiled for latency (OpenVINO's default hint, which the peer keeps)."""
    session = static_session(precision, 1, "LATENCY")
    for _ in range(8):
        session.run([x])
    t = time.perf_counter()
    for _ in range(n):
        session.run([x])
    return (time.perf_counter() - t) / n


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
    compiled = []
    def compile_at(self, model, device_name="CPU", config=None):
        config = dict(config or {})
        config.setdefault("INFERENCE_PRECISION_HINT", spec["precision"])
        compiled.append(_compile(self, model, device_name, config))
        return compiled[-1]
    ov.Core.compile_model = compile_at
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
    result["precision"] = sorted({c.get_property("INFERENCE_PRECISION_HINT").get_type_name()
                                  for c in compiled})
    print(json.dumps(result))
''')


def run_peer(python: str, xs: np.ndarray, targets: list[int], n: int, folder: Path,
             precision: str = "f32") -> tuple[list[float], np.ndarray, str]:
    inputs, maps = folder / "inputs.npy", folder / f"peer_{n}.npy"
    np.save(inputs, xs)
    spec = {"model": str(MODEL), "inputs": str(inputs), "targets": targets, "num_masks": n,
            "cells": CELLS, "prob": PROB, "maps": str(maps), "precision": precision}
    out = subprocess.run([python, "-c", PEER, json.dumps(spec)], capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    version = f"{result['version'].split('-')[0]}, ran {'/'.join(result['precision'])}"
    return result["seconds"], np.load(maps), version


# The peak is this process's VmHWM: ru_maxrss would keep the bench's own peak across the
# fork and exec that start it (Linux carries it over), hiding the child's.
MEMORY = textwrap.dedent('''
    import sys, time
    import numpy as np
    from xaigraph.explain.rise import rise
    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    x = np.random.default_rng(0).normal(size=(1, 3, 1024, 1024)).astype(np.float32)
    before = peak()
    t = time.perf_counter()
    m = rise(x, lambda b: b.mean(axis=(1, 2, 3))[:, None] + 0.5, targets=[0],
             num_masks=int(sys.argv[1]), cells=8, prob=0.5, seed=0)
    print(before, peak(), time.perf_counter() - t)
''')


def has_bf16() -> bool:
    import openvino as ov
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class Ours:
    """xaigraph's RISE at one precision: the masked model (masks in the graph) for the masked
    inferences, a session for the unmasked one, both compiled once, as explain does."""

    def __init__(self, precision: str, x: np.ndarray) -> None:
        self.session = Session.open(MODEL, "openvino", precision=precision, config=THROUGHPUT)
        self.fastest, self.batch, self.requests, self.per = best_config(precision, x[:1])
        self.sync = one_at_a_time(precision, x[:1])
        self.predict = class_predict(self.session, batch_size=self.batch,
                                     requests=self.requests)
        self.masked = MaskedModel(core().read_model(str(MODEL)), layout="NCHW",
                                  baseline=np.zeros_like(x[:1]), output=0, post=softmax,
                                  precision=precision)
        self.masked.session(CELLS, (SIZE, SIZE))
        self.precision = self.session.precision

    def __call__(self, x: np.ndarray, target: int, n: int) -> tuple[float, np.ndarray]:
        t = time.perf_counter()
        m = rise(x[None], self.predict, targets=[target], num_masks=n, cells=CELLS, prob=PROB,
                 seed=0, runner=self.masked.runner(x[None]))
        return time.perf_counter() - t, m[0]

    def floor(self, x: np.ndarray, n: int) -> float:
        return floor(self.fastest, x[:1], n, self.batch, self.requests)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer", required=True, help="the python of a venv with openvino-xai")
    parser.add_argument("--quick", action="store_true",
                        help="1 round, 1 image for speed, 2000 masks at most in memory")
    parser.add_argument("--speed-images", type=int, default=2)
    parser.add_argument("--precisions", default="f32,bf16",
                        help="inference precisions of the speed table (bf16 only where the "
                             "CPU has it)")
    parser.add_argument("--quality-masks", default="250,500,1000,1500,2000,3000")
    parser.add_argument("--memory-masks", type=int, default=8000)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.speed_images, args.memory_masks = 1, 1, min(args.memory_masks, 2000)

    xs, boxes = images()
    precisions = [p for p in args.precisions.split(",") if p != "bf16" or has_bf16()]
    if len(precisions) < len(args.precisions.split(",")):
        print("this CPU has no bf16: the bf16 rows are skipped")
    ours = {p: Ours(p, xs) for p in precisions}
    f32 = ours.get("f32") or Ours("f32", xs)
    probs = class_predict(f32.session)(xs)
    targets = [int(t) for t in probs.argmax(axis=1)]
    for p, o in ours.items():
        reqs = f"{o.requests} requests" if o.requests else "OpenVINO's optimal requests"
        print(f"{p}: floor config static batch {o.batch}, {reqs}, "
              f"{o.per * 1e3:.2f} ms/inference (ran {o.precision}); one synchronous image "
              f"at a time: {o.sync * 1e3:.2f} ms/inference ({o.sync / o.per:.2f}x)")

    folder = Path(tempfile.mkdtemp(prefix="bench_blackbox_"))
    speed: dict[tuple[str, str, int], list[float]] = {}
    peer_ran: dict[str, str] = {}
    k = args.speed_images
    for _ in range(args.rounds):
        for p, o in ours.items():
            for n in (1000, 4000):
                speed.setdefault((p, "ours", n), []).append(
                    statistics.mean(o(xs[i], targets[i], n)[0] for i in range(k)))
                speed.setdefault((p, "floor", n), []).append(o.floor(xs, n))
                seconds, _, peer_ran[p] = run_peer(args.peer, xs[:k], targets[:k], n, folder,
                                                   p)
                speed.setdefault((p, "peer", n), []).append(statistics.mean(seconds))
    med = {key: statistics.median(v) for key, v in speed.items()}

    # quality (f32): the peer's RISE at 5000 masks is the reference
    peer_seconds, peer_maps, _ = run_peer(args.peer, xs, targets, 5000, folder)
    peer_q = quality(list(peer_maps), boxes)
    sweep = []
    for n in [int(s) for s in args.quality_masks.split(",")]:
        runs = [f32(xs[i], targets[i], n) for i in range(len(xs))]
        q = quality([m for _, m in runs], boxes)
        sweep.append((n, statistics.mean(t for t, _ in runs), q))
        if q[0] >= peer_q[0] - 0.02 and q[1] >= peer_q[1] - 0.02:
            break

    # AISE (f32)
    from xaigraph.explain.aise import aise
    from xaigraph.explain.blackbox import PRESETS
    aise_rows = []
    for name, preset in PRESETS.items():
        times, counts, maps = [], [], []
        for i in range(len(xs)):
            t = time.perf_counter()
            m, count = aise(xs[i:i + 1], lambda b, i=i: f32.predict(b)[:, [targets[i]]],
                            targets=1, widths=preset.widths, evals=preset.evals)
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

    print(f"\nEfficientNet-Lite0 224x224, OpenVINO CPU (ours {session_version()}), "
          f"{args.rounds} interleaved rounds, median; {k} images for speed, {len(xs)} for "
          f"quality")
    print("\n| precision (ours / peer ran) | RISE | ours s/image | floor s | ours / floor | "
          "OpenVINO XAI 1.1.0 s/image | peer / ours |")
    print("|---|---|---|---|---|---|---|")
    for p, o in ours.items():
        for n in (1000, 4000):
            a, f, b = med[(p, "ours", n)], med[(p, "floor", n)], med[(p, "peer", n)]
            print(f"| {p} ({o.precision} / OpenVINO {peer_ran[p]}) | {n} masks | {a:.2f} | "
                  f"{f:.2f} | {a / f:.3f}x | {b:.2f} | {b / a:.2f}x |")
    print(f"\nquality reference (f32): OpenVINO XAI RISE 5000 masks: pointing game "
          f"{peer_q[0]:.2f}, mass in box {peer_q[1]:.3f}, {statistics.mean(peer_seconds):.2f} "
          f"s/image")
    print("\n| ours (f32), masks | s/image | pointing game | mass in box |")
    print("|---|---|---|---|")
    for n, t, q in sweep:
        print(f"| {n} | {t:.2f} | {q[0]:.2f} | {q[1]:.3f} |")
    n, t, q = sweep[-1]
    reached = q[0] >= peer_q[0] - 0.02 and q[1] >= peer_q[1] - 0.02
    print(f"\ntime to equal quality: ours {t:.2f} s ({n} masks) vs peer "
          f"{statistics.mean(peer_seconds):.2f} s: {statistics.mean(peer_seconds) / t:.2f}x less"
          + ("" if reached else " (NOT reached within the sweep)"))
    print("\n| AISE preset (f32) | s/image | inferences/image | pointing game | mass in box |")
    print("|---|---|---|---|---|")
    for name, t, c, q in aise_rows:
        print(f"| {name} | {t:.2f} | {c:.0f} | {q[0]:.2f} | {q[1]:.3f} |")
    if mem:
        at_once = args.memory_masks * 1024 * 1024 * 4 / 2**20
        print(f"\nmemory: RISE {args.memory_masks} masks on 1024x1024 (numpy model): peak RSS "
              f"{mem[1]:.0f} MiB (before RISE: {mem[0]:.0f} MiB; the masks at once would be "
              f"{at_once:.0f} MiB), {mem[2]:.1f} s")


def session_version() -> str:
    import openvino as ov
    return f"OpenVINO {ov.__version__.split('-')[0]}"


if __name__ == "__main__":
    main()

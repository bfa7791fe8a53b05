"""Throughput of `xaigraph explain` against a plain loop over OpenVINO (not in `make bench`).

On the bundled EfficientNet-Lite0 (augmented with ReciproCAM and saved as IR once) over
generated 640x480 JPEGs, OpenVINO CPU:

- floor: a plain loop that reads each file, decodes and preprocesses it exactly as explain
  does (`images.load`, the model's `Preprocess`), and runs it through an `AsyncInferQueue`
  (OpenVINO's optimal number of requests, batch 1), copying the outputs in the callback;
- explain: the local engine as `xaigraph explain` runs it (decode and write threads, batched
  inference, results.jsonl), with `--no-overlay` and with overlays.

The pipelines are timed from the compiled model to the last file written, in interleaved
rounds (each round runs the four one after the other); the rates are medians over the
rounds. The floor runs on the augmented model and on the original, so both the pipeline's
overhead and the total cost of explaining are printed.

Peak RSS: `xaigraph explain --no-overlay` in a child process over 1 000 and over 10 000 small
generated JPEGs (160x120, so that the run stays short): the child's own peak (VmHWM, which
the child reads at exit; the ru_maxrss of wait4 would begin at this process's size).

    python tools/bench_explain.py [--images N] [--rounds R] [--quick] [--no-rss]

prints the load average (the machine may be shared) and a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from PIL import Image

if __name__ == "__main__":  # this checkout's xaigraph, not an installed one
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import xaigraph
from xaigraph.explain import images, runloop
from xaigraph.explain.explainer import Explainer
from xaigraph.explain.io import rundir
from xaigraph.explain.plan import prepare

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XAIGRAPH_CACHE", Path.home() / ".cache" / "xaigraph")) / "bench"
TARGET_NO_OVERLAY = 0.90
TARGET_OVERLAY = 0.60
TARGET_RSS = 1.10


def bundled() -> Path:
    from importlib.resources import files

    return Path(str(files("xaigraph.data").joinpath("efficientnet_lite0.onnx")))


def photos(count: int, size: tuple[int, int], folder: Path) -> list[Path]:
    """`count` JPEGs of `size`: the bundled cat photo scaled and shifted over a noisy
    background, so that each file differs and decodes like a photo."""
    folder.mkdir(parents=True, exist_ok=True)
    made = sorted(folder.glob("*.jpg"))
    if len(made) >= count:
        return made[:count]
    from importlib.resources import files

    cat = Image.open(str(files("xaigraph.data").joinpath("chelsea.png"))).convert("RGB")
    rng = np.random.default_rng(0)
    width, height = size
    for i in range(len(made), count):
        background = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        canvas = Image.fromarray(background).resize(size, Image.Resampling.BILINEAR)
        scale = rng.uniform(0.4, 0.9)
        piece = cat.resize((max(1, int(width * scale)), max(1, int(height * scale))))
        canvas.paste(piece, (int(rng.integers(0, width - piece.width + 1)),
                             int(rng.integers(0, height - piece.height + 1))))
        canvas.save(folder / f"img{i:05d}.jpg", quality=90)
    return sorted(folder.glob("*.jpg"))[:count]


def augmented_model(folder: Path) -> Path:
    out = folder / "efficientnet_lite0_xai.xml"
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        xaigraph.save(xaigraph.insert(bundled(), "reciprocam"), out, force=True)
    return out


def floor_loop(model: Any, preprocess: Any, files: list[Path]) -> Callable[[], float]:
    """The plain AsyncInferQueue loop over `files`; returns a function that runs it once and
    gives its seconds."""
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                      "PERFORMANCE_HINT": "THROUGHPUT"})
    queue = ov.AsyncInferQueue(compiled, 0)
    kept: list[Any] = []

    def done(request: Any, _: Any) -> None:
        kept.append([request.get_output_tensor(i).data.copy()
                     for i in range(len(compiled.outputs))])

    queue.set_callback(done)

    def run() -> float:
        kept.clear()
        start = time.perf_counter()
        for path in files:
            queue.start_async([preprocess.apply(images.load(path))])
        queue.wait_all()
        assert len(kept) == len(files)
        return time.perf_counter() - start

    return run


def explain_loop(model: Path, files: list[Path], out: Path, overlay: bool
                 ) -> Callable[[], float]:
    """The local engine as the explain command runs it, from the compiled model on."""
    from xaigraph.explain.inputs import collect

    spec = prepare(model, runtime="openvino", overlay=overlay)
    explainer = Explainer(spec)
    card = spec.card()
    card["digest"] = rundir.digest(card)

    def once() -> float:
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        dataset = collect([str(p) for p in files])
        folder = rundir.RunDir(out, card, force=False)
        folder.check()
        counts = runloop.run(spec, dataset.items, folder, explainer=explainer)
        assert counts == {"ok": len(files), "error": 0}, counts
        return time.perf_counter() - start

    return once


# The child reports its own peak (VmHWM, read at exit): the ru_maxrss that wait4 returns
# would start from this process's size, which Linux carries over the fork and exec.
CHILD = """
import atexit, os, sys
def peak():
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open(os.environ["XAIGRAPH_BENCH_PEAK"], "w") as out:
        out.write(str(kib * 1024))
atexit.register(peak)
from xaigraph.__main__ import main
main()
"""


def peak_rss(model: Path, folder: Path, out: Path) -> int:
    """The peak resident set (bytes) of one `xaigraph explain --no-overlay` child (this
    checkout's code: the child runs from the repository's root)."""
    shutil.rmtree(out, ignore_errors=True)
    report = out.with_suffix(".peak")
    command = [sys.executable, "-c", CHILD, "explain", str(model), str(folder), "-o", str(out),
               "--no-overlay", "--runtime", "openvino", "--json"]
    child = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           cwd=ROOT, env={**os.environ, "XAIGRAPH_BENCH_PEAK": str(report)})
    if child.returncode != 0:
        raise SystemExit(f"explain failed: {child.stderr.decode()}")
    return int(report.read_text())


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} cores)"


def small_pngs(count: int, folder: Path) -> list[Path]:
    """`count` generated 224x224 PNGs (smooth noise): inputs the model's own size, where
    decoding is cheap and the pipeline's own cost per image shows."""
    folder.mkdir(parents=True, exist_ok=True)
    made = sorted(folder.glob("*.png"))
    rng = np.random.default_rng(1)
    for i in range(len(made), count):
        cells = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
        Image.fromarray(cells).resize((224, 224), Image.Resampling.BILINEAR).save(
            folder / f"img{i:05d}.png")
    return sorted(folder.glob("*.png"))[:count]


def throughput(model: Path, files: list[Path], label: str, rounds: int) -> None:
    """The four pipelines over `files` in interleaved rounds; a Markdown table of their
    rates."""
    from xaigraph.explain.render import DEFLATE

    print(f"load average before: {load()}")
    spec = prepare(model, runtime="openvino")
    preprocess = spec.preprocess
    original = ov.Core().read_model(str(bundled()))
    augmented = ov.Core().read_model(str(model))
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "floor: augmented model": floor_loop(augmented, preprocess, files),
            "floor: original model": floor_loop(original, preprocess, files),
            "explain --no-overlay": explain_loop(model, files, Path(tmp) / "a", False),
            "explain (overlays)": explain_loop(model, files, Path(tmp) / "b", True),
        }
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for run in runs.values():  # warm-up round
            run()
        for _ in range(rounds):
            for name, run in runs.items():
                seconds[name].append(run())
    rate = {name: len(files) / statistics.median(s) for name, s in seconds.items()}
    aug, orig = rate["floor: augmented model"], rate["floor: original model"]
    print(f"explain throughput: bundled EfficientNet-Lite0 + reciprocam, OpenVINO CPU, "
          f"{len(files)} {label}, median of {rounds} interleaved rounds, "
          f"PNG deflate: {DEFLATE}")
    print(f"load average after: {load()}")
    print()
    print("| run | images/s | / floor (augmented) | / floor (original) | target |")
    print("|---|---:|---:|---:|---|")
    targets = {"explain --no-overlay": TARGET_NO_OVERLAY, "explain (overlays)": TARGET_OVERLAY}
    for name, r in rate.items():
        target = targets.get(name)
        verdict = "" if target is None else (
            f">= {target:.2f} vs augmented: {'met' if r / aug >= target else 'MISSED'}")
        print(f"| {name} | {r:.1f} | {r / aug:.3f} | {r / orig:.3f} | {verdict} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500,
                        help="640x480 JPEGs, and 224x224 PNGs (default 500 each)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--rss", type=int, nargs=2, default=(1000, 10000), metavar=("A", "B"),
                        help="image counts of the two peak-RSS runs (default 1000 10000)")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS runs")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 60 images, 1 round, RSS of 200 vs 1000 images")
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds, args.rss = min(args.images, 60), 1, (200, 1000)


    print(f"xaigraph from {Path(xaigraph.__file__).parent}")
    model = augmented_model(CACHE / "explain_model")
    for label, files in (
            ("JPEGs 640x480", photos(args.images, (640, 480), CACHE / "explain_640x480")),
            ("PNGs 224x224", small_pngs(args.images, CACHE / "explain_224_png"))):
        throughput(model, files, label, args.rounds)
    if args.no_rss:
        return
    small, large = args.rss
    folder = CACHE / "explain_160x120"
    photos(large, (160, 120), folder)
    with tempfile.TemporaryDirectory() as tmp:
        measured = {}
        for count in (small, large):
            subset = Path(tmp) / f"in{count}"
            subset.mkdir()
            for path in sorted(folder.glob("*.jpg"))[:count]:
                os.symlink(path, subset / path.name)
            measured[count] = peak_rss(model, subset, Path(tmp) / f"out{count}")
    ratio = measured[large] / measured[small]
    print()
    print(f"| peak RSS, explain --no-overlay, 160x120 JPEGs, one child each | {small} images | "
          f"{large} images | ratio | target |")
    print("|---|---:|---:|---:|---|")
    print(f"| MiB | {measured[small] / 2**20:.0f} | {measured[large] / 2**20:.0f} | {ratio:.3f} | "
          f"<= {TARGET_RSS:.2f}: {'met' if ratio <= TARGET_RSS else 'MISSED'} |")
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()

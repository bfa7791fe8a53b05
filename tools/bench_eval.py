"""eval's costs on the bundled EfficientNet-Lite0 (`make bench`): insertion / deletion against
plain inferences, a black-box method in eval against the same method through explain, and
eval's peak RSS against explain's.

Insertion / deletion: seconds per image and the ratio to the floor, 60 plain inferences in
one batch.

With 30 steps, `metrics.insertion_deletion` runs 2 + 2 * 29 = 60 images per map through the
model (the original, the blurred start, 29 inner images of each curve; the all-black image's
scores are computed once per run and passed as `baseline_scores`), so the floor is one batch
of 60 plain inferences. Rounds alternate the two (after a warm-up) and the median of each is
reported; ONNX Runtime CPU with its default graph optimisations, the demo's preprocessing on
the bundled photo, a ReciproCAM-like map (a smooth random 7x7 map, resized to 224x224).

eval against explain (each a child process, `python -m xaigraph`, this checkout's code):

- a black-box method: `xaigraph eval --methods rise --metrics pointing_game` (the maps of
  its made folder, and the cheapest metric: no model call) against `xaigraph explain -m rise
  --raw` over the same images (a `classes:` folder of generated photos, one ground-truth
  class each, so both explain one class per image), OpenVINO, the same in-graph masks;
  medians of interleaved rounds, whole processes timed (start-up is the same on both sides);
- peak RSS (VmHWM, read by the child at exit, as in tools/bench_explain.py): `xaigraph eval`
  of four methods (all metrics) over the images, against the largest peak of `xaigraph
  explain --raw` of each of the four methods over the same images.

eval's sanity checks (`--metrics sanity`, `xaigraph.explain.trust`): the cascading MPRT of
each in-graph method over the images, its seconds against those of the method's own maps
(the augmented model compiled and run over the same images), beside the bound
(cascade steps + 1) x the maps' cost; OpenVINO, in this process.
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
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from xaigraph import demo
from xaigraph.explain import metrics
from xaigraph.session import Session

TARGET = 1.2
TARGET_BLACKBOX = 1.05  # eval's black-box method over explain's
TARGET_RSS_MIB = 200  # eval's peak over explain's, MiB
ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20



def insertion_deletion(args: argparse.Namespace) -> None:
    data = resources.files("xaigraph.data")
    with resources.as_file(data.joinpath(demo.MODEL_FILE)) as path:
        session = Session.open(path, optimize=True)
    with resources.as_file(data.joinpath(demo.PHOTO_FILE)) as photo_path, \
            Image.open(photo_path) as photo:
        x = demo.preprocess(photo.convert("RGB"))
    black = demo.preprocess(Image.new("RGB", (224, 224)))

    def predict(batch: np.ndarray) -> np.ndarray:
        z = session.run([np.ascontiguousarray(batch, np.float32)])[0].astype(np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    target = int(np.argmax(predict(x)[0]))
    coarse = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    saliency = metrics.resize_map(coarse, (224, 224))[None]
    black_scores = predict(black)[0]
    floor_batch = np.repeat(x, 2 * args.steps, axis=0)

    def floor() -> None:
        predict(floor_batch)

    def measured() -> None:
        metrics.insertion_deletion(x, saliency, [target], predict, steps=args.steps,
                                   baseline=black, baseline_scores=black_scores)

    floor()
    measured()  # warm-up
    times: dict[str, list[float]] = {"floor": [], "insertion_deletion": []}
    for _ in range(args.rounds):
        for name, run in (("floor", floor), ("insertion_deletion", measured)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    f = statistics.median(times["floor"])
    m = statistics.median(times["insertion_deletion"])
    print(f"EfficientNet-Lite0, ONNX Runtime CPU, {args.steps} steps, {args.rounds} rounds"
          + (" (--quick: a smoke run, not a measurement)" if args.quick else ""))
    print(f"  floor ({2 * args.steps} plain inferences, one batch)  {f:.3f} s")
    print(f"  insertion + deletion of one map         {m:.3f} s per image")
    print(f"  ratio                                   {m / f:.3f}x (target <= {TARGET}x)")


def labelled_photos(count: int, folder: Path) -> str:
    """A `classes:` folder of `count` generated 320x240 photos (the bundled cat over noise,
    as tools/bench_explain.py makes them) in the ImageNet class `tiger cat`."""
    sys.path.insert(0, str(ROOT / "tools"))
    from bench_explain import photos

    photos(count, (320, 240), folder / "tiger cat")
    return f"classes:{folder}"


def child(args: list[str], peak: Path) -> float:
    """One `xaigraph ARGS` child process (bench_explain's CHILD, which writes its own peak
    RSS to `peak` at exit): its seconds."""
    sys.path.insert(0, str(ROOT / "tools"))
    from bench_explain import CHILD

    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, cwd=ROOT,
                          env={**os.environ, "XAIGRAPH_BENCH_PEAK": str(peak)})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"xaigraph {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
    return seconds


def eval_args(data: str, out: Path, methods: str, masks: int, metrics: str) -> list[str]:
    return ["eval", str(bundled()), data, "-o", str(out), "--methods", methods,
            "--metrics", metrics, "--num-masks", str(masks), "--runtime", "openvino",
            "--resamples", "200", "--json"]


def explain_args(data: str, out: Path, method: str, masks: int) -> list[str]:
    extra = ["--num-masks", str(masks)] if method == "rise" else []
    return ["explain", str(bundled()), data, "-o", str(out), "-m", method, "--raw",
            "--runtime", "openvino", "--json", *extra]


def bundled() -> Path:
    return Path(str(resources.files("xaigraph.data").joinpath(demo.MODEL_FILE)))


def blackbox_row(args: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    """Median seconds of eval's RISE and explain's RISE over the same images."""
    data = labelled_photos(args.time_images, tmp / "time")
    peak = tmp / "peak"
    times: dict[str, list[float]] = {"eval": [], "explain": []}
    for _ in range(args.rounds_eval):
        for name in times:
            out = tmp / f"out-{name}"
            shutil.rmtree(out, ignore_errors=True)
            argv = (eval_args(data, out, "rise", args.masks, "pointing_game") if name == "eval"
                    else explain_args(data, out, "rise", args.masks))
            times[name].append(child(argv, peak))
    return statistics.median(times["eval"]), statistics.median(times["explain"])


def rss_row(args: argparse.Namespace, tmp: Path) -> tuple[int, dict[str, int]]:
    """eval's peak RSS over the images and methods; explain's peak of each method."""
    data = labelled_photos(args.rss_images, tmp / "rss")
    peak = tmp / "peak"
    explain = {}
    for method in args.methods.split(","):
        out = tmp / f"explain-{method}"
        shutil.rmtree(out, ignore_errors=True)
        child(explain_args(data, out, method, args.rss_masks), peak)
        explain[method] = int(peak.read_text())
    shutil.rmtree(tmp / "eval", ignore_errors=True)
    child(eval_args(data, tmp / "eval", args.methods, args.rss_masks, "all"), peak)
    return int(peak.read_text()), explain


def eval_against_explain(args: argparse.Namespace) -> None:
    print(f"eval against explain, OpenVINO CPU; load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)"
          + (" (--quick: a smoke run, not a measurement)" if args.quick else ""))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        made, explained = blackbox_row(args, tmp)
        print(f"  RISE, {args.time_images} images, {args.masks} masks, {args.rounds_eval} "
              f"rounds:  eval {made:.2f} s  explain {explained:.2f} s  ratio "
              f"{made / explained:.3f}x (target <= {TARGET_BLACKBOX}x)")
        if args.rss_images:
            evaluated, explain = rss_row(args, tmp)
            top = max(explain.values())
            mine = ", ".join(f"{m} {v / MIB:.0f}" for m, v in explain.items())
            print(f"  peak RSS, {args.rss_images} images x {args.methods} (RISE "
                  f"{args.rss_masks} masks):  eval {evaluated / MIB:.0f} MiB  explain "
                  f"{top / MIB:.0f} MiB ({mine})  difference {(evaluated - top) / MIB:+.0f} "
                  f"MiB (target <= +{TARGET_RSS_MIB})")


def sanity_cost(args: argparse.Namespace) -> None:
    """The cascading MPRT's seconds against the method's maps', per in-graph method."""
    from xaigraph.explain import evaluate, trust
    from xaigraph.explain.inputs import collect

    print(f"eval --metrics sanity, OpenVINO CPU, {args.sanity_images} images; load average "
          f"before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as name:
        data = labelled_photos(args.sanity_images, Path(name) / "photos")
        options = evaluate.EvalOptions(methods=tuple(args.sanity_methods.split(",")),
                                       metrics=("sanity",), runtime="openvino")
        sources = evaluate._sources(bundled(), Path(name) / "eval", options)
        block = trust.measure(bundled(), sources, collect([data]).items, 8, 200)
    for method, s in block["summary"].items():
        steps = len(s["cascade"])
        maps, total = s["seconds"]["maps"], s["seconds"]["total"]
        print(f"  {method}: maps {maps:.2f} s, maps + {steps} cascade steps {total:.2f} s: "
              f"{total / maps:.1f}x (bound {steps + 1}x: "
              f"{'met' if total / maps <= steps + 1 else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds-eval", type=int, default=3,
                        help="interleaved rounds of eval against explain (default 3)")
    parser.add_argument("--time-images", type=int, default=8,
                        help="images of the black-box row (default 8)")
    parser.add_argument("--masks", type=int, default=2000,
                        help="RISE masks of the black-box row (default 2000: balance)")
    parser.add_argument("--rss-images", type=int, default=63,
                        help="images of the peak-RSS row (default 63; 0: skip it)")
    parser.add_argument("--rss-masks", type=int, default=500,
                        help="RISE masks in the peak-RSS row (default 500)")
    parser.add_argument("--methods", default="reciprocam,activationmap,eigencam,rise",
                        help="the four methods of the peak-RSS row")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 rounds, small eval runs (make bench "
                             "BENCH_ARGS=--quick)")
    parser.add_argument("--sanity-images", type=int, default=63,
                        help="images of the sanity-checks row (default 63)")
    parser.add_argument("--sanity-methods", default="reciprocam,activationmap",
                        help="in-graph methods of the sanity-checks row")
    parser.add_argument("--only", choices=["insertion", "eval", "sanity"],
                        help="run one part only")
    args = parser.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 2)
        args.rounds_eval = 1
        args.time_images = min(args.time_images, 2)
        args.masks = min(args.masks, 200)
        args.rss_images = min(args.rss_images, 9)
        args.rss_masks = min(args.rss_masks, 100)
        args.sanity_images = min(args.sanity_images, 8)
    if args.only in (None, "insertion"):
        insertion_deletion(args)
    if args.only in (None, "eval"):
        eval_against_explain(args)
    if args.only in (None, "sanity"):
        sanity_cost(args)


if __name__ == "__main__":
    main()

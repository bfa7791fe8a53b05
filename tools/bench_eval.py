"""Insertion / deletion on the bundled EfficientNet-Lite0: seconds per image and the ratio to
the floor, 60 plain inferences in one batch (`make bench`).

With 30 steps, `metrics.insertion_deletion` runs 2 + 2 * 29 = 60 images per map through the
model (the original, the blurred start, 29 inner images of each curve; the all-black image's
scores are computed once per run and passed as `baseline_scores`), so the floor is one batch
of 60 plain inferences. Rounds alternate the two (after a warm-up) and the median of each is
reported; ONNX Runtime CPU with its default graph optimisations, the demo's preprocessing on
the bundled photo, a ReciproCAM-like map (a smooth random 7x7 map, resized to 224x224).
"""

from __future__ import annotations

import argparse
import statistics
import time
from importlib import resources

import numpy as np
from PIL import Image

from xaigraph import demo
from xaigraph.explain import metrics
from xaigraph.session import Session

TARGET = 1.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 rounds (make bench BENCH_ARGS=--quick)")
    args = parser.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 2)
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


if __name__ == "__main__":
    main()

"""Time to first image: `xaigraph explain` of one photo against the same work in a plain script.

On the bundled EfficientNet-Lite0 and its photo (chelsea.png), OpenVINO CPU, f32, each run a
fresh process (imports included, as a user waits for them), in interleaved rounds:

- white-box: `xaigraph explain MODEL PHOTO -o OUT --runtime openvino` (ReciproCAM inserted in
  memory) against a plain script that runs `xaigraph.insert(MODEL, "reciprocam")` (read,
  analyse, insert, validate: what `xaigraph insert` does, without the sanity checks, as
  explain inserts), compiles the result and runs one inference of the photo;
- RISE: the same command with `--method rise --num-masks N` against a plain script that
  reads and compiles the model once and runs the same masks (`rise.rise` over the in-graph
  masks, `explain.masked`) for the photo's top class.

The ratio explain / script is the pipeline's own cost before and around the first image
(target <= 1.2). Medians of the rounds.

    python tools/bench_startup.py [--rounds R] [--masks N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

TARGET = 1.2
ROOT = Path(__file__).resolve().parent.parent

WHITE_SCRIPT = """
import sys
import numpy as np, openvino as ov
from PIL import Image
import xaigraph
result = xaigraph.insert(sys.argv[1], "reciprocam", sanity="off")  # as explain inserts
compiled = ov.Core().compile_model(result.model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
image = Image.open(sys.argv[2]).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
x = ((np.asarray(image, np.float32) / 255 - 0.5) / 0.25).transpose(2, 0, 1)[None]
out = compiled([x])
assert out[compiled.outputs[-1]].shape[0] == 1
"""

RISE_SCRIPT = """
import sys
import numpy as np, openvino as ov
from PIL import Image
from xaigraph.explain.masked import MaskedModel
from xaigraph.explain.rise import rise
model = ov.Core().read_model(sys.argv[1])
compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
image = Image.open(sys.argv[2]).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
x = ((np.asarray(image, np.float32) / 255 - 0.5) / 0.25).transpose(2, 0, 1)[None]
black = np.full_like(x, -2.0)
def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
top = int(np.argmax(compiled([x])[0]))
masked = MaskedModel(model, layout="NCHW", baseline=black, output=0, post=softmax)
maps = rise(x, lambda b: softmax(compiled([b])[0]), targets=[top], num_masks=int(sys.argv[3]),
            cells=7, prob=0.5, seed=0, baseline=black, runner=masked.runner(x))
assert maps.shape[0] == 1
"""


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--masks", type=int, default=2000, help="RISE masks (default 2000)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, 500 masks")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.masks = 2, 500
    model = str(files("xaigraph.data").joinpath("efficientnet_lite0.onnx"))
    photo = str(files("xaigraph.data").joinpath("chelsea.png"))
    xaigraph = str(Path(sys.executable).with_name("xaigraph"))
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "white-box: explain": [xaigraph, "explain", model, photo, "-o", f"{tmp}/w",
                                   "--runtime", "openvino", "--force"],
            "white-box: insert + one inference (script)": [sys.executable, "-c", WHITE_SCRIPT,
                                                           model, photo],
            "RISE: explain": [xaigraph, "explain", model, photo, "-o", f"{tmp}/r",
                              "--method", "rise", "--num-masks", str(args.masks), "--force"],
            "RISE: read, compile, the same masks (script)": [sys.executable, "-c", RISE_SCRIPT,
                                                             model, photo, str(args.masks)],
        }
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for command in runs.values():  # warm-up: the file cache, the first import
            timed(command)
        for _ in range(args.rounds):
            for name, command in runs.items():
                seconds[name].append(timed(command))
    median = {name: statistics.median(s) for name, s in seconds.items()}
    print(f"time to first image: bundled EfficientNet-Lite0, chelsea.png, OpenVINO CPU f32, "
          f"RISE {args.masks} masks, median of {args.rounds} interleaved rounds "
          "(fresh processes)")
    print()
    print("| run | seconds | explain / script | target |")
    print("|---|---:|---:|---|")
    names = list(runs)
    for explain, script in ((names[0], names[1]), (names[2], names[3])):
        ratio = median[explain] / median[script]
        verdict = f"<= {TARGET}: {'met' if ratio <= TARGET else 'MISSED'}"
        print(f"| {explain} | {median[explain]:.2f} | {ratio:.2f} | {verdict} |")
        print(f"| {script} | {median[script]:.2f} | | |")


if __name__ == "__main__":
    main()

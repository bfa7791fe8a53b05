"""What the sanity checks add to `xaigraph insert`: the command's wall time with `--sanity on`
(the default) against `--sanity off`, on the bundled EfficientNet-Lite0, OpenVINO IR out.

Each run is a fresh `xaigraph insert` process (imports, reading, analysis, insertion, the
checks, validation, writing: what a user waits for), in interleaved rounds (on, off; then
off, on) after one warm-up of each. The figure is the difference of the medians; the target
(issue 22) is at most 1 s or 30 % of the time without the checks, the larger.

    python tools/bench_insert.py [--rounds R] [--method M]
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


def timed(model: str, out: Path, method: str, sanity: str) -> float:
    command = [sys.executable, "-m", "xaigraph", "insert", model, "-o", str(out), "--method",
               method, "--sanity", sanity, "--force"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--method", default="reciprocam")
    args = parser.parse_args()
    model = str(files("xaigraph.data") / "efficientnet_lite0.onnx")
    times: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model_xai.xml"
        for level in ("on", "off"):  # warm-up (file caches, bytecode)
            timed(model, out, args.method, level)
        for r in range(args.rounds):
            for level in ("on", "off") if r % 2 == 0 else ("off", "on"):
                times[level].append(timed(model, out, args.method, level))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    allowed = max(1.0, 0.3 * off)
    verdict = "ok" if on - off <= allowed else "MISSED"
    print(f"xaigraph insert --method {args.method}, bundled EfficientNet-Lite0 -> IR, "
          f"{args.rounds} interleaved rounds of fresh processes, medians: --sanity off "
          f"{off:.2f} s, on {on:.2f} s: the checks add {on - off:.2f} s "
          f"({100 * (on - off) / off:.0f} %); target <= {allowed:.2f} s {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

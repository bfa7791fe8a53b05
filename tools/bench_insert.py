"""What the sanity checks add to `xaigraph insert`: insert time with `--sanity on` (the
default) against `--sanity off`, on the bundled EfficientNet-Lite0, OpenVINO IR out.

Both run in this process (imports and OpenVINO's first compile warmed up first), in
interleaved rounds (on, off; then off, on), each a whole `xaigraph.insert` (read, analyse,
insert, sanity, validate). The figure is the difference of the medians; the target (issue 22)
is at most 1 s or 30 % of the insert time without the checks, the larger.

    python tools/bench_insert.py [--rounds R] [--method M]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from importlib.resources import files

import xaigraph


def timed(path: str, method: str, sanity: str) -> float:
    start = time.perf_counter()
    xaigraph.insert(path, method, sanity=sanity)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--method", default="reciprocam")
    args = parser.parse_args()
    path = str(files("xaigraph.data") / "efficientnet_lite0.onnx")
    for level in ("on", "off"):  # warm-up
        timed(path, args.method, level)
    times: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(args.rounds):
        for level in ("on", "off") if r % 2 == 0 else ("off", "on"):
            times[level].append(timed(path, args.method, level))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    allowed = max(1.0, 0.3 * off)
    verdict = "ok" if on - off <= allowed else "MISSED"
    print(f"insert {args.method}, bundled EfficientNet-Lite0 -> IR, {args.rounds} interleaved "
          f"rounds, medians: sanity off {off:.2f} s, on {on:.2f} s: the checks add "
          f"{on - off:.2f} s ({100 * (on - off) / off:.0f} %); target <= {allowed:.2f} s "
          f"{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

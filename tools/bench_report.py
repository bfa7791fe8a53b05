"""Benchmark of `xaigraph report` at 10 000 images: build time, and how long headless Chromium
takes to show the first page of the gallery.

    .venv/bin/python tools/bench_report.py [--images 10000] [--rounds 5] [--dir OUT_DIR]
    .venv/bin/python tools/bench_report.py --quick      # smoke run: 300 images, 1 round

Without --dir it writes a fixture explain OUT_DIR (tests/explain/report_fixtures.py: small
images, one map each, a failed image every 97) in a temporary folder. The page is opened from
the file system in a fresh browser context per round; "first page" is the time from the start
of navigation until the first page's tiles are in the DOM (`dom`) and until every thumbnail
on it has loaded (`thumbs`), as the page's own clock (performance.now) says. Medians printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.explain.report_fixtures import many, write_explain
from xaigraph.explain.report import build

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

FIRST_PAGE = """() => {
  const tiles = document.querySelectorAll('#grid .tile');
  const imgs = Array.from(document.querySelectorAll('#grid img'));
  return tiles.length > 0 && imgs.every((i) => i.complete);
}"""


def first_page(index: Path, rounds: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    dom, thumbs = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(rounds):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(index.resolve().as_uri(), wait_until="commit")
            page.wait_for_selector("#grid .tile")
            dom.append(page.evaluate("performance.now()") / 1000)
            page.wait_for_function(FIRST_PAGE)
            thumbs.append(page.evaluate("performance.now()") / 1000)
            context.close()
        browser.close()
    return dom, thumbs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="an existing explain/eval output")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 300 images, 1 round (make bench BENCH_ARGS=--quick)")
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds = min(args.images, 300), 1
    with tempfile.TemporaryDirectory() as tmp:
        source = args.dir
        if source is None:
            started = time.perf_counter()
            source = write_explain(Path(tmp) / "out", many(args.images))
            print(f"fixture     {args.images} images written in "
                  f"{time.perf_counter() - started:.1f} s")
        out = Path(tmp) / "report"
        built = build(source, out)
        size = (out / "data.js").stat().st_size
        print(f"build       {built.images} images in {built.seconds:.2f} s "
              f"({1000 * built.seconds / max(1, built.images):.2f} ms per image); "
              f"data.js {size / 1e6:.1f} MB")
        dom, thumbs = first_page(built.index, args.rounds)
        print(f"first page  DOM {statistics.median(dom):.2f} s, thumbnails loaded "
              f"{statistics.median(thumbs):.2f} s (median of {args.rounds}, headless "
              f"Chromium, file://; max {max(thumbs):.2f} s)")


if __name__ == "__main__":
    main()

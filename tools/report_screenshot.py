"""The README's picture of the report (docs/report.png): an eval of three methods on the
bundled EfficientNet-Lite0 and three pictures made from the bundled photo, its report opened
in Chromium on a wrong image, with the predicted and true classes side by side and every
method's map of the class at once.

    .venv/bin/python tools/report_screenshot.py                  # writes docs/report.png
    .venv/bin/python tools/report_screenshot.py --keep DIR       # keeps the eval in DIR

The pictures are a class folder (`classes:DIR`): chelsea.png as `tabby` (the model says tiger
cat: wrong), mirrored as `tiger cat`, and its left half as `Egyptian cat`. The eval runs
`xaigraph eval` (the CLI) with `--methods reciprocam,cam,rise --metrics insertion_deletion
--steps 10 --num-masks 500 --report`; Playwright drives Debian's Chromium
(/usr/bin/chromium, `make browser`): "Errors only", sorted by the confidence of the wrong
class, the first image opened, "All methods" pressed, the page photographed (and stored
with a 256-colour palette). About a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1200, "height": 1240}


def make_data(folder: Path) -> Path:
    """The class folder of three pictures made from the bundled photo."""
    data = resources.files("xaigraph.data")
    with resources.as_file(data / "chelsea.png") as path:
        photo = Image.open(path).convert("RGB")
    pictures = {"tabby": photo, "tiger cat": ImageOps.mirror(photo),
                "Egyptian cat": photo.crop((0, 0, photo.width // 2 + 40, photo.height))}
    for name, picture in pictures.items():
        (folder / name).mkdir(parents=True)
        picture.save(folder / name / "chelsea.png")
    return folder


def run_eval(folder: Path) -> Path:
    from click.testing import CliRunner

    from xaigraph.cli import cli

    data = resources.files("xaigraph.data")
    out = folder / "eval"
    with resources.as_file(data / "efficientnet_lite0.onnx") as model:
        args = ["eval", str(model), f"classes:{make_data(folder / 'photos')}", "-o", str(out),
                "--methods", "reciprocam,cam,rise", "--metrics", "insertion_deletion",
                "--steps", "10", "--num-masks", "500", "--report"]
        result = CliRunner().invoke(cli, args)
    if result.exit_code != 0:
        sys.exit(f"xaigraph eval failed ({result.exit_code}): {result.stderr}")
    return out / "report" / "index.html"


def photograph(index: Path, png: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(index.resolve().as_uri())
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        page.get_by_label("Errors only").check()
        page.get_by_label("Sort by").select_option(label="confidence of the wrong class")
        page.locator("#grid .tile").first.click()
        page.get_by_role("button", name="All methods").click()
        expect(page.get_by_role("region", name="Why was it wrong", exact=False)).to_be_visible()
        page.wait_for_function("""() => Array.from(document.querySelectorAll('dialog img'))
            .every((i) => !i.src || (i.complete && i.naturalWidth > 0))""")
        shot = page.screenshot()
        browser.close()
    # a 256-colour palette: a quarter of the bytes, the same picture to the eye
    with Image.open(io.BytesIO(shot)) as im:
        im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                   dither=Image.Dither.NONE).save(png, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--keep", type=Path, help="make the eval in this (new) folder")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="xaigraph-report-shot-"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        photograph(run_eval(folder), args.out)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

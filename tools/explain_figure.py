"""The README's picture of `xaigraph explain`: original | colour map | overlay, side by side,
each map with its colour scale below (the overlay's is its own, in the default `--map-scale
score`; the map file's, on its own min-max, is drawn here: maps/ files are bare data).

    .venv/bin/python tools/explain_figure.py                 # writes docs/explain_chelsea.png
    .venv/bin/python tools/explain_figure.py --from OUT_DIR  # from a run already made

Without `--from` it runs `xaigraph explain` (the CLI, no flags) on the bundled
EfficientNet-Lite0 and photo into a temporary OUT_DIR; the panels are that run's files as
results.jsonl names them (the top target's `maps/` and `overlays/` PNGs), the colour map shown
over a grey checkerboard where it is transparent (outside the part the model sees).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
GAP = 8
CAPTION = 22


def run_explain(folder: Path) -> Path:
    from click.testing import CliRunner

    from xaigraph.cli import cli

    data = resources.files("xaigraph.data")
    with resources.as_file(data / "efficientnet_lite0.onnx") as model, \
            resources.as_file(data / "chelsea.png") as photo:
        shutil.copy(photo, folder / "chelsea.png")
        out = folder / "out"
        result = CliRunner().invoke(cli, ["explain", str(model), str(folder / "chelsea.png"),
                                          "-o", str(out)])
    if result.exit_code != 0:
        sys.exit(f"xaigraph explain failed: {result.stderr or result.stdout}")
    return out


def checkerboard(size: tuple[int, int], cell: int = 10) -> Image.Image:
    board = Image.new("RGB", size, (200, 200, 200))
    draw = ImageDraw.Draw(board)
    for y in range(0, size[1], cell):
        for x in range((y // cell % 2) * cell, size[0], 2 * cell):
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(235, 235, 235))
    return board


def figure(out_dir: Path) -> Image.Image:
    from xaigraph.explain.legend import with_legend
    from xaigraph.explain.scales import scale_of

    record = json.loads((out_dir / "results.jsonl").read_text().splitlines()[0])
    card = json.loads((out_dir / "run.json").read_text())
    colormap = card["options"]["colormap"]
    target = record["targets"][0]
    photo = Image.open(record["path"]).convert("RGB")  # relative to where explain ran
    colour = Image.open(out_dir / target["map"]).convert("RGBA")
    shown = checkerboard(colour.size)
    shown.paste(colour, mask=colour)
    span = target.get("range")
    shown = with_legend(shown, colormap, scale_of("map", target["score"], span),
                        f"{target['label']} {target['score']:.2f} | map scale (maps/ files)")
    overlay = Image.open(out_dir / target["overlay"]).convert("RGB")
    panels = [(photo, "original"),
              (shown, "maps/: each map on its own min-max (the data)"),
              (overlay, f"overlays/: {record.get('map_scale', 'map')} scale, colour bar below")]
    w = photo.size[0]
    h = max(panel.size[1] for panel, _ in panels)  # the overlay carries its colour scale
    canvas = Image.new("RGB", (3 * w + 2 * GAP, h + CAPTION), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (panel, caption) in enumerate(panels):
        x = i * (w + GAP)
        canvas.paste(panel, (x, 0))
        draw.text((x + 4, h + 5), caption, fill=(0, 0, 0))
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="An explain OUT_DIR.")
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "explain_chelsea.png")
    args = parser.parse_args()
    if args.source is not None:
        picture = figure(args.source)
    else:
        with tempfile.TemporaryDirectory(prefix="xaigraph-figure-") as tmp:
            picture = figure(run_explain(Path(tmp)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(args.out, optimize=True)
    print(f"wrote {args.out} ({picture.size[0]}x{picture.size[1]})")


if __name__ == "__main__":
    main()

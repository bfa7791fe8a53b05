"""The report's colour scale views: each view PNG recomputed pixel by pixel from the map
file and the records (score, raw ranges, the run's extremes), and equal to explain's overlay
of the same mode; records without raw ranges have no image / run view."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.explain.report_fixtures import Img, write_explain
from tests.explain.test_scales import reference_index
from xaigraph.cli import cli
from xaigraph.explain import legend, render
from xaigraph.explain.report import build_report


def data(index: Path) -> dict[str, Any]:
    text = (index.parent / "data.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("=") + 1:].rstrip().rstrip(";"))


def explain(model: Path, folder: Path, out: Path, *flags: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["explain", str(model), str(folder), "-o", str(out),
                                      "--targets", "topk:3", "--opacity", "1", *flags])
    assert result.exit_code == 0, result.stderr
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (36, 44 + 4 * i, 3), dtype=np.uint8)).save(
            folder / f"q{i}.png")
    return folder


def colours(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(path) as im:
        rgba = np.asarray(im.convert("RGBA"))
    return rgba[..., :3], rgba[..., 3] == 255


def test_views_are_the_overlays_colours(cnn_file: Callable[..., Path], photos: Path,
                                        tmp_path: Path) -> None:
    model = cnn_file("gap_fc", False, "onnx17")
    records = explain(model, photos, tmp_path / "score")
    image_run = explain(model, photos, tmp_path / "image", "--map-scale", "image")
    index = build_report(tmp_path / "score")
    d = data(index)
    assert d["scale"]["mode"] == "score"
    run_lo = min(t["range"][0] for r in records for t in r["targets"])
    run_hi = max(t["range"][1] for r in records for t in r["targets"])
    table = render.lookup("jet")
    inverse = {tuple(int(v) for v in c): k for k, c in enumerate(table)}
    for r, shown, other in zip(records, d["images"], image_run, strict=True):
        lo = min(t["range"][0] for t in r["targets"])
        hi = max(t["range"][1] for t in r["targets"])
        for t, view, o in zip(r["targets"], shown["m"][0]["t"], other["targets"], strict=True):
            rgb, seen = colours(tmp_path / "score" / t["map"])
            idx = np.array([[inverse[tuple(int(v) for v in p)] if s else 0
                             for p, s in zip(row, srow, strict=True)]
                            for row, srow in zip(rgb, seen, strict=True)])
            (t_lo, t_hi), p = t["range"], t["score"]
            wanted = {"score": (p, 0.0),
                      "image": ((t_hi - t_lo) / (hi - lo), (t_lo - lo) / (hi - lo)),
                      "run": ((t_hi - t_lo) / (run_hi - run_lo),
                              (t_lo - run_lo) / (run_hi - run_lo))}
            for mode, (a, b) in wanted.items():
                url, low, high = view["v"][mode]
                got, got_seen = colours(index.parent / url)
                assert (got_seen == seen).all()
                np.testing.assert_array_equal(got[seen], table[reference_index(idx, a, b)][seen])
                assert (low, high) == ((0.0, 1.0) if mode == "score" else
                                       (lo, hi) if mode == "image" else (run_lo, run_hi))
            assert view["v"]["map"][1:] == t["range"] and view["v"]["mark"] == p
            h = rgb.shape[0]  # the report's views are explain's overlays (opacity 1)
            for run_dir, target, mode in ((tmp_path / "score", t, "score"),
                                          (tmp_path / "image", o, "image")):
                over, _ = colours(run_dir / target["overlay"])
                assert over.shape[0] == h + legend.margin_height(rgb.shape[1])
                view_rgb, _ = colours(index.parent / view["v"][mode][0])
                np.testing.assert_array_equal(over[:h][seen], view_rgb[seen])


def test_records_without_ranges_have_no_image_or_run_view(tmp_path: Path) -> None:
    out = write_explain(tmp_path / "out", [Img("cat", preds=[(1, "cat", 0.05)])])
    d = data(build_report(out))
    assert d["scale"]["mode"] == "map"  # a run older than the colour scales
    v = d["images"][0]["m"][0]["t"][0]["v"]
    assert v["image"] == [None, None, None] and v["run"] == [None, None, None]
    assert v["score"][0] is not None and v["score"][1:] == [0.0, 1.0]

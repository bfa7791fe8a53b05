"""Colour scales (`--map-scale`, the legend, `--low-confidence`): each overlay's colours
recomputed one pixel at a time from the map file and the record (score, raw range) or the raw
`.npy` maps; the legend's bar is the colour table; maps/ and what is read back do not change
with the scale or the legend; bad options and an old run's OUT_DIR are one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import xaigraph
from tests.explain.test_explain_cli import invoke, lines
from xaigraph.explain import legend, render, scales
from xaigraph.explain.io.record import Record
from xaigraph.explain.io.rundir import digest


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40 + 5 * i, 48, 3), dtype=np.uint8)).save(
            folder / f"p{i}.png")
    return folder


@pytest.fixture()
def model(cnn_file: Callable[..., Path]) -> Path:
    return cnn_file("gap_fc", False, "onnx17")


def reference_index(i: np.ndarray, a: float, b: float) -> np.ndarray:
    """Pixel by pixel: the index of `a * i / 255 + b`, rounded half up, clipped."""
    out = np.empty(i.shape, dtype=np.int64)
    for pos, value in np.ndenumerate(i):
        v = (a * (int(value) / 255.0) + b) * 255.0
        out[pos] = min(255, max(0, int(np.floor(v + 0.5 + 1e-4))))
    return out


def check_overlays(out: Path, mode: str, raw: bool) -> int:
    """Every overlay of OUT_DIR against the map file's indices put through the scale's
    affine map computed here from the record (opacity 1: the overlay is the colour)."""
    table = render.lookup("jet")
    checked = 0
    for r in lines(out):
        assert r["map_scale"] == mode
        ranges = [t["range"] for t in r["targets"]]
        if raw:  # the record's range is the raw map's own
            for t in r["targets"]:
                m = np.load(out / t["raw"])
                assert t["range"] == [float(m.min()), float(m.max())]
        lo = min(x[0] for x in ranges)
        hi = max(x[1] for x in ranges)
        for t in r["targets"]:
            with Image.open(out / t["map"]) as im:
                rgba = np.asarray(im.convert("RGBA"))
                told = json.loads(im.info["xaigraph-scale"])  # the map file's own scale
            assert told == {"mode": "map", "range": t["range"], "label": t["label"],
                            "score": pytest.approx(t["score"], abs=5e-5),
                            "low_confidence": t["low_confidence"]}
            seen = rgba[..., 3] == 255  # the map file's colours back to their indices
            inverse = {tuple(int(v) for v in c): k for k, c in enumerate(table)}
            index = np.array([[inverse.get(tuple(int(v) for v in p[:3]), 0) for p in row]
                              for row in rgba], dtype=np.int64)
            if mode == "score":
                a, b = min(max(t["score"], 0.0), 1.0), 0.0
            elif mode == "image":
                a = (t["range"][1] - t["range"][0]) / (hi - lo)
                b = (t["range"][0] - lo) / (hi - lo)
            else:
                a, b = 1.0, 0.0
            want = table[reference_index(index, a, b)]
            with Image.open(out / t["overlay"]) as im:
                got = np.asarray(im.convert("RGB"))
            h, w = index.shape
            assert got.shape == (h + legend.margin_height(w), w, 3)
            np.testing.assert_array_equal(got[:h][seen], want[seen])
            checked += 1
    return checked


@pytest.mark.parametrize("mode", ["score", "image", "map"])
def test_overlay_colours_follow_the_scale(model: Path, photos: Path, tmp_path: Path,
                                          mode: str) -> None:
    out = tmp_path / mode
    code, _, err = invoke("explain", model, photos, "-o", out, "--targets", "topk:3", "--raw",
                          "--opacity", "1", "--map-scale", mode)
    assert code == 0, err
    assert check_overlays(out, mode, raw=True) == 9
    card = json.loads((out / "run.json").read_text())
    assert card["options"]["map_scale"] == mode and card["options"]["legend"] is True


def test_score_is_the_default_and_faint_for_a_low_score(model: Path, photos: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, err = invoke("explain", model, photos, "-o", out, "--targets", "all",
                          "--opacity", "1")
    assert code == 0, err
    assert check_overlays(out, "score", raw=False) == 15
    for r in lines(out):
        low = min(r["targets"], key=lambda t: t["score"])
        with Image.open(out / low["overlay"]) as im, Image.open(out / low["map"]) as m:
            seen = np.asarray(m.convert("RGBA"))[..., 3] == 255
            top = np.asarray(im.convert("RGB"))[: m.size[1]][seen]
        # no pixel brighter on the colour table than the score allows
        table = render.lookup("jet")
        cap = int(np.floor(low["score"] * 255 + 0.5 + 1e-4))
        allowed = {tuple(c) for c in table[: cap + 1]}
        assert {tuple(c) for c in top.reshape(-1, 3)} <= allowed


def test_low_confidence_marks_the_targets_below_the_threshold(model: Path, photos: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, err = invoke("explain", model, photos, "-o", out, "--targets", "all",
                          "--low-confidence", "0.2", "--no-overlay")
    assert code == 0, err
    marks = [(t["score"], t["low_confidence"]) for r in lines(out) for t in r["targets"]]
    assert any(m for _, m in marks) and not all(m for _, m in marks)
    for score, mark in marks:
        assert mark == (score < 0.2)
    assert json.loads((out / "run.json").read_text())["options"]["low_confidence"] == 0.2


def test_no_legend_gives_the_photos_size_and_maps_never_change(model: Path, photos: Path,
                                                               tmp_path: Path) -> None:
    runs = {}
    for name, flags in {"bare": ["--no-legend", "--map-scale", "map"],
                        "legend": [], "image": ["--map-scale", "image"]}.items():
        out = tmp_path / name
        code, _, err = invoke("explain", model, photos, "-o", out, "--targets", "topk:2",
                              *flags)
        assert code == 0, err
        runs[name] = out
    for r in lines(runs["bare"]):
        for t in r["targets"]:
            with Image.open(runs["bare"] / t["overlay"]) as im:
                assert im.size == (r["width"], r["height"])
            # the map files (what the report reads back) are the same bytes in every mode
            data = (runs["bare"] / t["map"]).read_bytes()
            for other in ("legend", "image"):
                assert (runs[other] / t["map"]).read_bytes() == data


def test_legend_bar_is_the_colour_table_and_leaves_the_picture_alone() -> None:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (50, 600, 3), dtype=np.uint8))
    scale = scales.scale_of("score", 0.3, None)
    for name in render.COLORMAPS:
        shown = np.asarray(legend.with_legend(photo, name, scale, "cat 0.30 | score scale"))
        assert shown.shape == (50 + legend.margin_height(600), 600, 3)
        np.testing.assert_array_equal(shown[:50], np.asarray(photo))
        table = render.lookup(name)
        # the bar: a run of the margin's pixels that is the table stretched over its width
        found = False
        for row in shown[50:]:
            colours = row.reshape(-1, 3)
            starts = np.flatnonzero((colours == table[0]).all(axis=1))
            ends = np.flatnonzero((colours == table[255]).all(axis=1))
            for start in starts:
                for end in ends[ends >= start + 100]:
                    cols = np.round(np.linspace(0, 255, end - start + 1)).astype(int)
                    found = found or bool((colours[start:end + 1] == table[cols]).all())
            if found:
                break
        assert found, name


def test_affine_rules() -> None:
    assert scales.affine("map", 0.5) == (1.0, 0.0)
    assert scales.affine("score", 0.06) == (0.06, 0.0)
    assert scales.affine("score", float("nan")) == (0.0, 0.0)
    assert scales.affine("score", 1.5) == (1.0, 0.0)
    a, b = scales.affine("image", 0.5, (1.0, 3.0), (0.0, 4.0))
    assert (a, b) == (0.5, 0.25)  # raw 1 -> 0.25, raw 3 -> 0.75
    assert scales.affine("image", 0.5, (2.0, 2.0), (2.0, 2.0)) == (0.0, 0.0)
    with pytest.raises(ValueError, match="raw ranges"):
        scales.affine("run", 0.5, None, None)
    i = np.arange(256)
    for a, b in ((0.06, 0.0), (0.5, 0.25), (1.0, 0.0), (0.37, 0.6)):
        np.testing.assert_array_equal(scales.index_table(a, b), reference_index(i, a, b))
    assert scales.extremes([(0.0, 2.0), (-1.0, 1.0)]) == (-1.0, 2.0)
    assert scales.extremes([(0.0, 2.0), None]) is None


def test_image_scale_of_a_u8_model_is_refused(cnn_file: Callable[..., Path], photos: Path,
                                              tmp_path: Path) -> None:
    aug = tmp_path / "aug.onnx"
    xaigraph.save(xaigraph.insert(cnn_file("gap_fc", False, "onnx17"), "reciprocam",
                                  output_format="onnx"), aug)
    out = tmp_path / "out"
    code, _, err = invoke("explain", aug, photos, "-o", out, "--map-scale", "image")
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and "raw range" in err and "--no-scaling" in err
    # score works on u8 maps (no raw range needed); the record says the range is unknown
    code, _, err = invoke("explain", aug, photos, "-o", out)
    assert code == 0, err
    assert all(t["range"] is None for r in lines(out) for t in r["targets"])
    floats = tmp_path / "floats.onnx"  # augmented without the u8 scaling: image works
    xaigraph.save(xaigraph.insert(cnn_file("gap_fc", False, "onnx17"), "reciprocam",
                                  output_format="onnx", scaling=False), floats)
    code, _, err = invoke("explain", floats, photos, "-o", tmp_path / "f", "--map-scale",
                          "image", "--opacity", "1", "--targets", "topk:2")
    assert code == 0, err
    assert check_overlays(tmp_path / "f", "image", raw=False) == 6


def test_run_scale_is_the_reports_and_refused_by_explain(model: Path, photos: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, err = invoke("explain", model, photos, "-o", out, "--map-scale", "run")
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and "report" in err


def test_an_old_default_run_is_another_run(model: Path, photos: Path, tmp_path: Path) -> None:
    """A run made before the colour scales (run.json without map_scale, legend,
    low_confidence; overlays per map) is not resumed as if its pictures were today's."""
    out = tmp_path / "out"
    code, _, err = invoke("explain", model, photos, "-o", out)
    assert code == 0, err
    card = json.loads((out / "run.json").read_text())
    for key in ("map_scale", "legend", "low_confidence"):
        del card["options"][key]
    card["digest"] = digest(card)
    (out / "run.json").write_text(json.dumps(card))
    code, _, err = invoke("explain", model, photos, "-o", out)
    assert code == 2 and "options.legend" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1


def test_an_older_line_reads_back() -> None:
    old = {"index": 0, "path": "a.png", "key": "a", "status": "ok", "width": 4, "height": 3,
           "predictions": [], "targets": [{"class": 1, "label": "cat", "score": 0.5,
                                           "map": "maps/a.png", "overlay": None, "raw": None,
                                           "box": None}],
           "method": "reciprocam", "method_reason": "auto", "run": "x", "timings": {}}
    record = Record.from_json(old)
    assert record.map_scale is None
    assert record.targets[0].range is None and record.targets[0].low_confidence is False


def test_legend_text_without_freetype(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow without FreeType has a Latin-1 bitmap font: a class name beyond it is drawn
    with replacement marks, never an error."""
    from PIL import ImageFont

    monkeypatch.setattr(legend, "_font", lambda size: ImageFont.load_default_imagefont())
    legend._text.cache_clear()
    try:
        photo = Image.new("RGB", (200, 40), (9, 9, 9))
        shown = legend.with_legend(photo, "jet", scales.scale_of("score", 0.5, None),
                                   "猫 0.50 | score scale")
        margin = np.asarray(shown)[40:]
        assert (margin < 255).any(axis=2).sum() > 50  # text and bar were drawn
    finally:
        legend._text.cache_clear()

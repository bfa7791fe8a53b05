"""The report builder (xaigraph/explain/report.py) on fixture folders written per
docs/runtime.md: what data.js holds, which files the report has, flags, disagreement, errors
and the all-or-nothing placement. The page itself is tested in test_report_browser.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.explain.report_fixtures import Img, float_map, write_eval, write_explain
from xaigraph.cli import cli
from xaigraph.errors import BadInputError, NoSpaceError, NotFoundError, OutputExistsError
from xaigraph.explain import report as rep
from xaigraph.overlay import colorize


def load(index: Path) -> dict:
    text = (index.parent / "data.js").read_text(encoding="utf-8")
    assert text.startswith("window.XAIGRAPH_REPORT = ")
    return json.loads(text[len("window.XAIGRAPH_REPORT = "):].rstrip().rstrip(";"))


def images() -> list[Img]:
    return [
        Img("cat", truth=["tiger cat"], boxes=[(4, 4, 40, 30, "tiger cat")]),
        Img("dog", truth=["golden retriever", "tiger_cat"], peak=(0.2, 0.8)),
        Img("sub/plain", w=40, h=30),
        Img("broken", error="not an image: cannot identify image file"),
    ]


@pytest.fixture()
def explain_dir(tmp_path: Path) -> Path:
    return write_explain(tmp_path / "out", images())


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".xaigraph-report"))


# --- pure functions ----------------------------------------------------------------------

@pytest.mark.parametrize(("preds", "truth", "k", "flagged", "missed"), [
    # k defaults to the number of true labels (at least 1)
    ([("tiger cat", .6), ("lynx", .3)], ["tiger cat"], None, [("tiger cat", .6, "TP")], []),
    ([("lynx", .6), ("tiger cat", .3)], ["tiger cat"], None, [("lynx", .6, "FP")], ["tiger cat"]),
    ([("lynx", .6), ("tiger cat", .3)], ["tiger cat"], 2,
     [("lynx", .6, "FP"), ("tiger cat", .3, "TP")], []),
    # two true labels: top 2; names match across case, "_" and "-"; a synonym list matches
    ([("Tiger-Cat", .5), ("tabby, tabby cat", .3), ("dog", .2)], ["tiger_cat", "tabby cat"],
     None, [("Tiger-Cat", .5, "TP"), ("tabby, tabby cat", .3, "TP")], []),
    ([("dog", .5), ("cat", .3)], ["cat", "mouse", "bird"], None,
     [("dog", .5, "FP"), ("cat", .3, "TP")], ["mouse", "bird"]),
    # no ground truth: the top prediction, no flags
    ([("dog", .5), ("cat", .3)], [], None, [("dog", .5, "")], []),
    ([], ["cat"], None, [], ["cat"]),
])
def test_flag_labels(preds: list, truth: list, k: int | None, flagged: list,
                     missed: list) -> None:
    assert rep.flag_labels(preds, truth, k) == (flagged, missed)


def test_names_are_normalised_as_labels_normal_does() -> None:
    from xaigraph.labels import normal

    assert normal("  Tiger_cat-Big  ") == "tiger cat big"
    assert rep.flag_labels([("black-footed ferret", 0.9)], ["Black_Footed  Ferret"]) == (
        [("black-footed ferret", 0.9, "TP")], [])


def test_disagreement_is_one_minus_pearson_averaged_over_pairs() -> None:
    rng = np.random.default_rng(3)
    a, b, c = (rng.random((8, 8)) for _ in range(3))
    expected = np.mean([1 - np.corrcoef(x.ravel(), y.ravel())[0, 1]
                        for x, y in ((a, b), (a, c), (b, c))])
    assert rep.disagreement([a, b, c]) == pytest.approx(expected, abs=1e-12)
    assert rep.disagreement([a, 3 * a + 1]) == pytest.approx(0.0, abs=1e-12)
    assert rep.disagreement([a, -a]) == pytest.approx(2.0, abs=1e-12)
    assert rep.disagreement([a]) is None


def test_disagreement_ignores_undefined_cells() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random((6, 6)), rng.random((6, 6))
    a2 = a.copy()
    a2[:2] = np.nan  # outside the part the model saw
    keep = np.ones((6, 6), bool)
    keep[:2] = False
    expected = 1 - np.corrcoef(a[keep], b[keep])[0, 1]
    assert rep.disagreement([a2, b]) == pytest.approx(expected, abs=1e-12)


def test_map_values_inverts_the_colour_map(tmp_path: Path) -> None:
    """A colour PNG whose value is constant on each cell of the 24 x 24 grid reads back as
    those values (u8 / 255); alpha 0 reads as NaN; a raw .npy is resized."""
    rng = np.random.default_rng(5)
    cells = rng.integers(0, 256, (24, 24)).astype(np.uint8)
    big = np.kron(cells, np.ones((8, 8), np.uint8))
    rgba = np.dstack([colorize(big), np.full(big.shape, 255, np.uint8)])
    rgba[:16, :, 3] = 0  # two rows of cells unseen
    Image.fromarray(rgba, "RGBA").save(tmp_path / "m.png")
    got = rep.map_values(tmp_path / "m.png")
    assert np.isnan(got[:2]).all()
    np.testing.assert_allclose(got[2:], cells[2:] / 255.0, atol=1.5 / 255)
    np.save(tmp_path / "m.npy", np.full((7, 7), 0.25, np.float32))
    np.testing.assert_allclose(rep.map_values(tmp_path / "m.npy"), 0.25, atol=1e-6)


# --- building ----------------------------------------------------------------------------

def test_explain_report_holds_every_image_with_flags_and_files(explain_dir: Path) -> None:
    index = rep.build_report(explain_dir)
    assert index == explain_dir / "report" / "index.html"
    data = load(index)
    assert data["kind"] == "explain" and data["methods"] == ["reciprocam"]
    assert data["cards"]["reciprocam"]["target_layer"] == "/features/conv_last"
    by_key = {im["key"]: im for im in data["images"]}
    assert list(by_key) == ["cat", "dog", "sub/plain", "broken"]

    cat = by_key["cat"]["m"][0]
    assert cat["pred"] == [["tiger cat", 0.6, "TP"]] and cat["flags"] == ["TP"]
    assert cat["top"] == 0.6 and cat["fn"] == []
    assert by_key["cat"]["boxes"] == [[4.0, 4.0, 40.0, 30.0, "tiger cat"]]
    dog = by_key["dog"]["m"][0]  # truth: golden retriever and tiger_cat; top 2 predicted
    assert dog["pred"] == [["tiger cat", 0.6, "TP"], ["tabby, tabby cat", 0.3, "FP"]]
    assert dog["fn"] == ["golden retriever"] and dog["flags"] == ["FN", "FP", "TP"]
    plain = by_key["sub/plain"]["m"][0]
    assert plain["flags"] == [] and by_key["sub/plain"]["gt"] == []
    assert by_key["broken"]["m"][0] == {"s": "error",
                                        "err": "not an image: cannot identify image file"}
    # the label filter's choices: one per name as the flags compare them (tiger_cat of the
    # ground truth is the model's tiger cat)
    assert data["labels"] == [["golden retriever", "golden retriever"],
                              ["tabby, tabby cat", "tabby, tabby cat"],
                              ["tiger cat", "tiger cat"]]
    assert by_key["dog"]["gk"] == ["golden retriever", "tiger cat"]
    assert dog["pk"] == ["tiger cat", "tabby, tabby cat"]

    results = [json.loads(line) for line in (explain_dir / "results.jsonl").open()]
    for record in results[:3]:
        im = by_key[record["key"]]
        # the maps: referenced inside DIR by a relative path to the very file
        for target, shown in zip(record["targets"], im["m"][0]["t"], strict=True):
            assert shown["map"].startswith("../maps/")
            assert (index.parent / unquote(shown["map"])).resolve() == \
                (explain_dir / target["map"]).resolve()
            assert shown["label"] == target["label"] and shown["score"] == target["score"]
        # the original, copied byte for byte (a PNG the browser shows as it is)
        original = explain_dir.parent / record["path"]
        assert (index.parent / im["img"]).read_bytes() == original.read_bytes()
        # the thumbnail: a small JPEG of the first overlay
        thumb = index.parent / im["m"][0]["thumb"]
        with Image.open(thumb) as t:
            assert t.format == "JPEG" and max(t.size) <= rep.THUMB_SIZE
        assert thumb.stat().st_size < 8000
    assert (index.parent / rep.MARKER).is_file()
    for asset in ("index.html", "report.css", "report.js"):
        assert (index.parent / asset).read_bytes() == (rep.ASSETS / asset).read_bytes()
    assert leftovers(explain_dir) == []


def test_nothing_in_the_site_comes_from_a_network() -> None:
    for asset in rep.ASSETS.iterdir():
        text = asset.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
        assert "fetch(" not in text and "XMLHttpRequest" not in text


def test_report_elsewhere_copies_what_it_needs(explain_dir: Path, tmp_path: Path) -> None:
    index = rep.build_report(explain_dir, tmp_path / "elsewhere" / "rep")
    data = load(index)
    referenced = [index.parent / unquote(t["map"])
                  for im in data["images"] for m in im["m"] for t in m.get("t", [])]
    assert len(referenced) == 6  # 3 images with 2 targets
    for path in referenced:
        assert path.resolve().is_relative_to(index.parent.resolve()) and path.is_file()
    results = [json.loads(line) for line in (explain_dir / "results.jsonl").open()]
    first = results[0]["targets"][0]["map"]
    assert referenced[0].read_bytes() == (explain_dir / first).read_bytes()


def test_eval_report_has_metrics_per_target_and_disagreement(tmp_path: Path) -> None:
    imgs = images()
    write_eval(tmp_path / "ev", imgs, {"reciprocam": (0.0, 0.0), "same": (0.0, 0.0),
                                       "rise": (0.25, 0.0)})
    data = load(rep.build_report(tmp_path / "ev"))
    assert data["kind"] == "eval" and data["methods"] == ["reciprocam", "same", "rise"]
    assert data["metric_names"] == ["pointing_game", "deletion_auc"]
    assert data["metrics"]["summary"]["rise"]["pointing_game"]["ci95"] == pytest.approx(
        [0.5, 0.9])
    for index, img in enumerate(imgs[:3]):
        im = data["images"][index]
        for m_index in range(3):
            targets = im["m"][m_index]["t"]
            for t in targets:  # the fixture's formula, per method and image
                assert t["mv"] == {"pointing_game": float(index % 2),
                                   "deletion_auc": pytest.approx(index / 100 + m_index)}
            assert im["m"][m_index]["mv"]["deletion_auc"] == pytest.approx(
                index / 100 + m_index)
        # reference: 1 - corrcoef of the fixture's own float maps of the top class, upsampled
        # to the grid, over the three pairs (reciprocam and same are identical)
        grid = [np.asarray(Image.fromarray(float_map(img, 0, (img.peak[0] + dx, img.peak[1])))
                           .resize((24, 24), Image.Resampling.BILINEAR), np.float64)
                for dx in (0.0, 0.0, 0.25)]
        expected = rep.disagreement(grid)
        assert expected is not None and expected > 0.05
        assert im["dis"] == pytest.approx(expected, abs=0.03)
    assert data["images"][3]["dis"] is None  # the failed image


def test_disagreement_reads_raw_maps_when_the_run_kept_them(tmp_path: Path) -> None:
    img = Img("one")
    for name, shift in (("a", 0.0), ("b", 0.3)):
        write_explain(tmp_path / "ev" / name, [img], method=name, raw=True,
                      photos=tmp_path / "photos", peak_shift=(shift, 0.0))
    (tmp_path / "ev" / "metrics.json").write_text(json.dumps({"methods": ["a", "b"]}))
    data = load(rep.build_report(tmp_path / "ev"))
    maps = [np.asarray(Image.fromarray(float_map(img, 0, (img.peak[0] + s, img.peak[1])))
                       .resize((24, 24), Image.Resampling.BILINEAR), np.float64)
            for s in (0.0, 0.3)]
    assert data["images"][0]["dis"] == pytest.approx(rep.disagreement(maps), abs=1e-3)


def test_exif_rotated_jpeg_is_reencoded_upright(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    out = write_explain(tmp_path / "out", [Img("turned", w=30, h=20)], photos=photos)
    # replace the original by a JPEG stored 20 x 30 whose EXIF says "rotate 90": upright it
    # is 30 x 20, as results.jsonl says
    stored = Image.new("RGB", (20, 30), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(photos / "turned.jpg", exif=exif)
    lines = (out / "results.jsonl").read_text().replace("turned.png", "turned.jpg")
    (out / "results.jsonl").write_text(lines)
    data = load(rep.build_report(out))
    with Image.open(out / "report" / data["images"][0]["img"]) as im:
        assert im.format == "JPEG" and im.size == (30, 20)
        assert im.getexif().get(0x0112, 1) == 1


def test_missing_original_still_builds(explain_dir: Path) -> None:
    (explain_dir.parent / "photos" / "cat.png").unlink()
    data = load(rep.build_report(explain_dir))
    assert data["images"][0]["img"] is None
    assert data["images"][0]["m"][0]["thumb"]  # from the overlay, which is still there


# --- errors and placement ----------------------------------------------------------------

def test_not_an_output_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"neither results\.jsonl"):
        rep.build_report(tmp_path)
    with pytest.raises(NotFoundError):
        rep.build_report(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("line", "why"), [
    ("{not json", "line 2: not valid JSON"),
    ("[1, 2]", "line 2: not a JSON object"),
    ('{"key": "x", "status": "done"}', 'line 2: "status" is'),
    ('{"key": "x", "status": "ok", "predictions": 3, "targets": []}', '"predictions"'),
    ('{"status": "ok"}', 'no "key"'),
])
def test_malformed_line_is_one_line_exit_2_nothing_written(explain_dir: Path, line: str,
                                                           why: str) -> None:
    results = explain_dir / "results.jsonl"
    first, *rest = results.read_text().splitlines()
    results.write_text("\n".join([first, line, *rest]) + "\n")
    before = sorted(os.listdir(explain_dir))
    result = CliRunner().invoke(cli, ["report", str(explain_dir)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and why in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(explain_dir)) == before


def test_eval_naming_a_missing_method_folder(tmp_path: Path) -> None:
    write_eval(tmp_path / "ev", images()[:1], {"reciprocam": (0.0, 0.0)})
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    metrics["methods"].append("rise")
    (tmp_path / "ev" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(BadInputError, match="no folder rise/"):
        rep.build_report(tmp_path / "ev")
    assert not (tmp_path / "ev" / "report").exists()


def test_existing_report_needs_force_and_only_a_report_is_replaced(explain_dir: Path,
                                                                   tmp_path: Path) -> None:
    index = rep.build_report(explain_dir)
    with pytest.raises(OutputExistsError, match="--force"):
        rep.build_report(explain_dir)
    (index.parent / "stale.txt").write_text("old")
    rep.build_report(explain_dir, force=True)
    assert not (index.parent / "stale.txt").exists() and index.is_file()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not an xaigraph report"):
        rep.build_report(explain_dir, other, force=True)
    assert sorted(os.listdir(other)) == ["keep.txt"]
    assert leftovers(explain_dir) == [] and leftovers(tmp_path) == []


def test_a_build_that_fails_half_way_leaves_the_old_report(explain_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    index = rep.build_report(explain_dir)
    old = index.with_name("data.js").read_bytes()
    calls = []

    def broken(src: Path, dst: Path) -> bool:
        calls.append(src)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return True

    monkeypatch.setattr(rep, "_thumbnail", broken)
    with pytest.raises(NoSpaceError, match="no space left"):
        rep.build_report(explain_dir, force=True, workers=1)
    assert index.with_name("data.js").read_bytes() == old
    assert leftovers(explain_dir) == []
    calls.clear()
    with pytest.raises(NoSpaceError):
        rep.build_report(explain_dir, explain_dir / "fresh", workers=1)
    assert not (explain_dir / "fresh").exists() and leftovers(explain_dir) == []


# --- the report reads nothing outside its run ------------------------------------------------

def _edit_records(folder: Path, edit) -> None:
    path = folder / "results.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    edit(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _refused(folder: Path, site: Path, *more: str) -> str:
    """`xaigraph report FOLDER -o SITE`: exit 2, one stderr line (returned), nothing written."""
    before = sorted(os.listdir(site.parent))
    result = CliRunner().invoke(cli, ["report", str(folder), "-o", str(site), *more])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(os.listdir(site.parent)) == before  # nothing written
    assert not (folder / "report").exists()
    return result.stderr


@pytest.mark.parametrize(("field", "value"), [
    ("map", "../../../../../../../../etc/passwd"), ("overlay", "../../../../etc/passwd"),
    ("raw", "../run.json/../../secret.npy"), ("map", "/etc/passwd"), ("overlay", "/etc/hosts"),
    ("map", "maps/../../secret.png"),
])
def test_a_record_naming_a_file_outside_its_run_is_refused(explain_dir: Path, tmp_path: Path,
                                                           field: str, value: str) -> None:
    def edit(records: list[dict]) -> None:
        records[1]["targets"][0][field] = value

    _edit_records(explain_dir, edit)
    line = _refused(explain_dir, tmp_path / "site")
    assert f"line 2: targets[0].{field}" in line and "outside" in line


def test_a_map_that_is_a_link_leading_out_is_refused(explain_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(secret)
    record = json.loads((explain_dir / "results.jsonl").read_text().splitlines()[0])
    target = explain_dir / record["targets"][0]["map"]
    target.unlink()
    target.symlink_to(secret)
    assert "outside" in _refused(explain_dir, tmp_path / "site")


@pytest.mark.parametrize("how", ["absolute", "relative", "link"])
def test_an_original_outside_the_run_inputs_is_refused(explain_dir: Path, tmp_path: Path,
                                                       how: str) -> None:
    """An image that is not under the folders the run recorded (run.json `inputs`) is not
    copied into a report, whatever the record says, even through a link."""
    secret = tmp_path / "private" / "secret.png"
    secret.parent.mkdir()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(secret)
    if how == "link":
        photo = tmp_path / "photos" / "cat.png"
        photo.unlink()
        photo.symlink_to(secret)
    else:
        def edit(records: list[dict]) -> None:
            records[0]["path"] = str(secret) if how == "absolute" else "private/secret.png"

        _edit_records(explain_dir, edit)
    line = _refused(explain_dir, tmp_path / "site")
    assert "line 1" in line and "outside the inputs" in line


def test_a_run_without_recorded_inputs_shows_no_originals(explain_dir: Path) -> None:
    card = json.loads((explain_dir / "run.json").read_text())
    del card["inputs"]
    (explain_dir / "run.json").write_text(json.dumps(card))
    data = load(rep.build_report(explain_dir))
    assert [im["img"] for im in data["images"]] == [None] * 4
    assert [im["m"][0].get("thumb") is not None for im in data["images"]] == [True] * 3 + [False]


def test_an_eval_naming_a_method_folder_outside_it_is_refused(tmp_path: Path) -> None:
    folder = write_eval(tmp_path / "ev", images()[:2], {"reciprocam": (0.0, 0.0)})
    write_explain(tmp_path / "elsewhere", images()[:2], method="rise")
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["methods"].append("../elsewhere")
    (folder / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(BadInputError, match="not a folder name"):
        rep.build_report(folder)
    assert not (folder / "report").exists() and leftovers(folder) == []


def _urls(data: dict) -> list[str]:
    urls = []
    for im in data["images"]:
        urls += [im["img"]] if im["img"] else []
        for m in im["m"]:
            urls += [m["thumb"]] if m.get("thumb") else []
            urls += [t["map"] for t in m.get("t", []) if t["map"]]
    return urls


def test_the_default_report_links_nothing_outside_dir(tmp_path: Path) -> None:
    """Inside DIR the report refers to DIR's maps; a method folder that is a link to an
    explain output elsewhere (eval --from-explain) is referred to through the link."""
    folder = write_eval(tmp_path / "ev", images(), {"reciprocam": (0.0, 0.0),
                                                    "rise": (0.3, 0.1)})
    import shutil

    shutil.rmtree(folder / "rise")
    write_explain(tmp_path / "rise-run", images(), method="rise", photos=tmp_path / "photos",
                  peak_shift=(0.3, 0.1))
    (folder / "rise").symlink_to(tmp_path / "rise-run")
    index = rep.build_report(folder)
    urls = _urls(load(index))
    assert any(u.startswith("../rise/") for u in urls)
    for url in urls:
        where = os.path.normpath(os.path.join(index.parent, unquote(url)))
        assert where.startswith(str(folder) + os.sep), url
        assert os.path.isfile(where), url


# --- no absolute local path in a report ------------------------------------------------------

def _far_run(tmp_path: Path) -> Path:
    """A run whose records name their images by absolute paths (photos far from the run),
    with an absolute model path and a failed image's message naming its path."""
    out = write_explain(tmp_path / "proj" / "out", images(),
                        photos=tmp_path / "home" / "alice" / "photos")
    card = json.loads((out / "run.json").read_text())
    card["model"]["path"] = str(tmp_path / "home" / "alice" / "models" / "tiny.onnx")
    (out / "run.json").write_text(json.dumps(card))

    def edit(records: list[dict]) -> None:
        records[3]["error"] = f"{records[3]['path']}: not an image"

    _edit_records(out, edit)
    return out


def _report_text(index: Path) -> str:
    return "".join(p.read_text(encoding="utf-8", errors="replace")
                   for p in index.parent.rglob("*") if p.is_file() and p.suffix != ".png"
                   and p.suffix != ".jpg")


@pytest.mark.parametrize("elsewhere", [False, True])
def test_no_absolute_local_path_reaches_the_report(tmp_path: Path, elsewhere: bool) -> None:
    out = _far_run(tmp_path)
    index = rep.build_report(out, tmp_path / "site" if elsewhere else None)
    assert str(tmp_path) not in _report_text(index)
    data = load(index)
    assert data["source"] == "out"
    assert data["cards"]["reciprocam"]["model"] == {"path": "tiny.onnx", "sha256": "ab" * 32,
                                                    "augmented": False}
    assert [im["path"] for im in data["images"]] == [
        "../../home/alice/photos/cat.png", "../../home/alice/photos/dog.png",
        "../../home/alice/photos/sub/plain.png", "../../home/alice/photos/broken.png"]
    assert data["images"][3]["m"][0]["err"] == "../../home/alice/photos/broken.png: not an image"
    assert all(im["img"] for im in data["images"][:3])  # the originals are still copied


def test_absolute_paths_keeps_them(tmp_path: Path) -> None:
    out = _far_run(tmp_path)
    result = CliRunner().invoke(cli, ["report", str(out), "--absolute-paths"])
    assert result.exit_code == 0, result.stderr
    data = load(out / "report" / "index.html")
    photos = tmp_path / "home" / "alice" / "photos"
    assert data["source"] == str(out.resolve())
    assert data["cards"]["reciprocam"]["model"]["path"] == str(
        tmp_path / "home" / "alice" / "models" / "tiny.onnx")
    assert data["images"][0]["path"] == str(photos / "cat.png")
    assert data["images"][3]["m"][0]["err"] == f"{photos / 'broken.png'}: not an image"


def test_relative_paths_are_kept_as_the_run_wrote_them(explain_dir: Path) -> None:
    data = load(rep.build_report(explain_dir))
    assert [im["path"] for im in data["images"]] == [
        "photos/cat.png", "photos/dog.png", "photos/sub/plain.png", "photos/broken.png"]


# --- what a killed build leaves, and the next build tidies -----------------------------------

def _stage_left(folder: Path, name: str, *, marker: bool = True) -> Path:
    """A staging folder as a build killed half-way leaves it (unlocked)."""
    stage = folder / name
    (stage / "images").mkdir(parents=True)
    (stage / "images" / "0.png").write_bytes(b"x" * 1000)
    if marker:
        (stage / rep.MARKER).write_text("xaigraph report\n")
    return stage


def _report_copy(index: Path, where: Path) -> Path:
    """A copy of the report of `index` at `where` (a parked report)."""
    import shutil

    shutil.copytree(index.parent, where)
    return where


def test_stages_a_killed_build_left_are_removed_by_the_next(explain_dir: Path) -> None:
    _stage_left(explain_dir, ".xaigraph-report-abcd1234")
    (explain_dir / ".xaigraph-report-killed00").mkdir()  # killed before its marker
    mine = explain_dir / ".xaigraph-report-notours1"
    mine.mkdir()
    (mine / "keep.txt").write_text("not a report's")  # not ours: left alone
    rep.build_report(explain_dir)
    assert leftovers(explain_dir) == [".xaigraph-report-notours1"]
    assert (mine / "keep.txt").read_text() == "not a report's"


def test_a_stage_another_build_is_writing_is_left_alone(explain_dir: Path) -> None:
    import fcntl

    stage = _stage_left(explain_dir, ".xaigraph-report-live0000")
    fd = os.open(stage, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a live build holds it
        rep.build_report(explain_dir)
        assert leftovers(explain_dir) == [".xaigraph-report-live0000"]
    finally:
        os.close(fd)
    rep.build_report(explain_dir, force=True)
    assert leftovers(explain_dir) == []


def test_a_report_parked_by_a_killed_force_is_put_back(explain_dir: Path) -> None:
    """Killed between the two renames: report/ is missing, the old one parked. The next
    build puts it back (and then, without --force, refuses to replace it)."""
    index = rep.build_report(explain_dir)
    old = index.with_name("data.js").read_bytes()
    parked = explain_dir / ".xaigraph-report-old-abcd1234"
    parked.mkdir()
    os.rename(index.parent, parked / "report")
    _stage_left(explain_dir, ".xaigraph-report-efgh5678")  # the new one, never placed
    with pytest.raises(OutputExistsError, match="--force"):
        rep.build_report(explain_dir)
    assert index.with_name("data.js").read_bytes() == old
    assert leftovers(explain_dir) == []


def test_a_parked_report_is_removed_once_the_new_one_is_in_place(explain_dir: Path,
                                                                 tmp_path: Path) -> None:
    """Killed after the second rename, before the old report was deleted: the parked copy
    goes; the same for a report built elsewhere (-o)."""
    index = rep.build_report(explain_dir)
    _report_copy(index, explain_dir / ".xaigraph-report-old-abcd1234" / "report")
    site = rep.build_report(explain_dir, tmp_path / "site")
    _report_copy(site, tmp_path / ".xaigraph-report-old-efgh5678" / "site")
    rep.build_report(explain_dir, force=True)
    rep.build_report(explain_dir, tmp_path / "site", force=True)
    assert leftovers(explain_dir) == [] and leftovers(tmp_path) == []
    assert index.is_file() and site.is_file()


KILLER = """
import os, signal, sys
from xaigraph.explain import report as rep
calls = []
where = sys.argv[2]
real_rename, real_thumbnail = os.rename, rep._thumbnail
def rename(a, b):
    calls.append(a)
    if where == "between-renames" and len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_rename(a, b)
def thumbnail(a, b):
    if where == "staging":
        os.kill(os.getpid(), signal.SIGKILL)
    return real_thumbnail(a, b)
rep.os.rename = rename
rep._thumbnail = thumbnail
rep.build_report(sys.argv[1], force=True, workers=1)
"""


@pytest.mark.parametrize("where", ["staging", "between-renames"])
def test_sigkill_during_force_then_the_next_build_recovers(explain_dir: Path,
                                                           where: str) -> None:
    import signal
    import subprocess
    import sys

    index = rep.build_report(explain_dir)
    old = index.with_name("data.js").read_bytes()
    done = subprocess.run([sys.executable, "-c", KILLER, str(explain_dir), where],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert leftovers(explain_dir)  # what the kill left
    with pytest.raises(OutputExistsError, match="--force"):
        rep.build_report(explain_dir)
    assert index.with_name("data.js").read_bytes() == old  # the old report, in place
    assert leftovers(explain_dir) == []
    rep.build_report(explain_dir, force=True)
    assert leftovers(explain_dir) == []


def test_cli_json(explain_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(explain_dir), "-o", str(tmp_path / "r"),
                                      "--json", "--top-k", "2"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out == {"ok": True, "exit_code": 0, "report": str(tmp_path / "r" / "index.html"),
                   "images": 4, "failed": 1, "methods": ["reciprocam"],
                   "seconds": out["seconds"]}
    data = load(tmp_path / "r" / "index.html")
    assert data["top_k"] == 2
    assert data["images"][0]["m"][0]["pred"] == [["tiger cat", 0.6, "TP"],
                                                 ["tabby, tabby cat", 0.3, "FP"]]

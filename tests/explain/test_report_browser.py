"""The report in a real browser: Debian's Chromium (/usr/bin/chromium, `make browser`) driven
by Playwright, the page opened from the file system. One browser for the module; a small
eval report and one 10 000-image explain report. A missing Chromium fails, never skips; a
missing Playwright skips the module only outside CI (`tests.extras`: the fast tier's venv
has no Playwright)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.explain.report_fixtures import Img, many, write_eval, write_explain
from tests.extras import require
from xaigraph.explain.report import build_report

require("playwright")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def small_images() -> list[Img]:
    return [
        Img("cat", truth=["tiger cat"], boxes=[(4, 4, 40, 30, "tiger cat")],
            preds=[(282, "tiger cat", 0.61), (281, "tabby, tabby cat", 0.3)], peak=(0.3, 0.4)),
        Img("dog", truth=["golden retriever"], peak=(0.7, 0.6),
            preds=[(282, "tiger cat", 0.45), (207, "golden retriever", 0.4)]),
        Img("plain", preds=[(285, "Egyptian cat", 0.8), (282, "tiger cat", 0.1)]),
        Img("retriever", truth=["golden retriever"], peak=(0.5, 0.2),
            preds=[(207, "golden retriever", 0.93), (282, "tiger cat", 0.05)]),
        Img("broken", error="not an image: cannot identify image file"),
        Img("other/cat", truth=["tabby cat"], peak=(0.2, 0.7),
            preds=[(281, "tabby, tabby cat", 0.52), (282, "tiger cat", 0.4)]),
    ]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), (f"{CHROMIUM} is missing: run `make browser` (apt-get install "
                               "chromium); the report's browser tests need it")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    write_eval(folder / "ev", small_images(), {"reciprocam": (0.0, 0.0), "rise": (0.3, 0.1)})
    return build_report(folder / "ev")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    return build_report(write_explain(folder / "out", many(10_000)))


def data(index: Path) -> dict:
    text = (index.parent / "data.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("=") + 1:].rstrip().rstrip(";"))


@pytest.fixture()
def open_report(browser: Browser) -> Iterator:
    """`open_report(index)`: a fresh page on the report; after the test, no page errors, no
    console errors, and no request that was not for a local file."""
    contexts, problems, requests = [], [], []

    def go(index: Path) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: requests.append(r.url))
        page.goto(index.resolve().as_uri())
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        return page

    yield go
    for context in contexts:
        context.close()
    assert problems == []
    assert requests and all(url.startswith("file://") for url in requests), requests


def tile_names(page: Page) -> list[str]:
    return page.locator("#grid .tile .name").all_inner_texts()


def stage_pixels(page: Page) -> np.ndarray:
    page.wait_for_function("""() => ['original', 'map'].every((id) => {
        const i = document.getElementById(id); return i.hidden || !i.src ||
        (i.complete && i.naturalWidth > 0); })""")
    png = page.locator("#stage").screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)


def open_image(page: Page, path_part: str) -> None:
    page.get_by_role("button", name=path_part).click()
    expect(page.get_by_role("dialog")).to_be_visible()


# --- the gallery -------------------------------------------------------------------------

def test_gallery_shows_labels_scores_and_flags_as_text(small: Path, open_report) -> None:
    page = open_report(small)
    expect(page.locator("#count")).to_have_text("6 of 6 images, showing 1-6")
    assert tile_names(page) == ["cat.png", "dog.png", "plain.png", "retriever.png",
                                "broken.png", "cat.png"]
    tiles = page.locator("#grid .tile")
    expect(tiles.nth(0)).to_contain_text("✓ TP tiger cat 0.61")
    expect(tiles.nth(0)).to_contain_text("truth: tiger cat")
    expect(tiles.nth(1)).to_contain_text("✗ FP tiger cat 0.45")
    expect(tiles.nth(1)).to_contain_text("○ FN golden retriever")
    expect(tiles.nth(2)).to_contain_text("Egyptian cat 0.80")
    expect(tiles.nth(2)).to_contain_text("truth: none")
    expect(tiles.nth(4)).to_contain_text("✗ failed: not an image: cannot identify image file")
    expect(tiles.nth(5)).to_contain_text("✓ TP tabby, tabby cat 0.52")
    # thumbnails are the builder's small JPEGs, of the current method
    src = tiles.nth(0).locator("img").get_attribute("src")
    assert src == "thumbs/0/0.jpg"


def test_filter_by_label_and_by_flag(small: Path, open_report) -> None:
    page = open_report(small)
    page.get_by_label("Label").select_option(label="golden retriever")
    expect(page.locator("#count")).to_have_text("2 of 6 images, showing 1-2")
    assert tile_names(page) == ["dog.png", "retriever.png"]
    page.get_by_label("Label").select_option(label="all labels")
    page.get_by_label("Flag").select_option("FN")
    expect(page.locator("#grid .tile")).to_have_count(1)
    assert tile_names(page) == ["dog.png"]
    page.get_by_label("Flag").select_option("correct")
    expect(page.locator("#grid .tile")).to_have_count(3)
    assert tile_names(page) == ["cat.png", "retriever.png", "cat.png"]
    page.get_by_label("Flag").select_option("error")
    expect(page.locator("#grid .tile")).to_have_count(1)
    expect(page.locator("#grid .tile")).to_contain_text("failed")
    page.get_by_label("Flag").select_option("none")
    assert tile_names(page) == ["plain.png"]


def test_search_by_file_name(small: Path, open_report) -> None:
    page = open_report(small)
    page.get_by_label("File name").fill("other/")
    expect(page.locator("#grid .tile")).to_have_count(1)
    expect(page.locator("#grid .tile")).to_contain_text("tabby")
    page.get_by_label("File name").fill("CAT")
    expect(page.locator("#grid .tile")).to_have_count(2)
    page.get_by_label("File name").fill("nothing like it")
    expect(page.locator("#count")).to_have_text("0 of 6 images")


def test_sort_by_confidence_metric_and_disagreement(small: Path, open_report) -> None:
    page = open_report(small)
    d = data(small)
    page.get_by_label("Sort by").select_option("confidence")
    # descending by the top score; the failed image (no score) last
    assert tile_names(page) == ["retriever.png", "plain.png", "cat.png", "cat.png", "dog.png",
                                "broken.png"]
    page.get_by_label("Order").select_option("asc")
    assert tile_names(page) == ["dog.png", "cat.png", "cat.png", "plain.png", "retriever.png",
                                "broken.png"]
    # deletion_auc is index / 100 + method position in the fixture: ascending = input order
    page.get_by_label("Sort by").select_option("metric:deletion_auc")
    page.get_by_label("Order").select_option("asc")
    assert tile_names(page) == ["cat.png", "dog.png", "plain.png", "retriever.png", "cat.png",
                                "broken.png"]
    page.get_by_label("Sort by").select_option("disagreement")
    ranked = sorted((im for im in d["images"] if im["dis"] is not None),
                    key=lambda im: -im["dis"])
    assert len({im["dis"] for im in ranked}) == len(ranked)  # no ties in the fixture
    expected = [im["path"].split("/")[-1] for im in ranked] + ["broken.png"]
    assert tile_names(page) == expected


def test_pages_of_the_10000_image_report(big: Path, open_report) -> None:
    page = open_report(big)
    expect(page.locator("#grid .tile")).to_have_count(48)
    expect(page.locator("#count")).to_have_text("10000 of 10000 images, showing 1-48")
    expect(page.locator("#page")).to_have_text("Page 1 of 209")
    assert tile_names(page)[:2] == ["img00000.png", "img00001.png"]
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#page")).to_have_text("Page 2 of 209")
    assert tile_names(page)[0] == "img00048.png"
    page.get_by_label("File name").fill("img09999")
    expect(page.locator("#grid .tile")).to_have_count(1)
    page.get_by_label("File name").fill("")
    page.get_by_label("Flag").select_option("error")
    expect(page.locator("#count")).to_have_text(f"{10_000 // 97} of 10000 images, showing "
                                                f"1-48")


# --- the image view ----------------------------------------------------------------------

def test_overlay_toggle_and_opacity_slider_change_the_picture(small: Path, open_report) -> None:
    page = open_report(small)
    open_image(page, "photos/cat.png: open")
    expect(page.locator("#stage-caption")).to_contain_text("tiger cat (0.61) map over the "
                                                           "original, opacity 50 %")
    half = stage_pixels(page)
    page.get_by_label("Overlay").uncheck()
    expect(page.locator("#map")).to_be_hidden()
    expect(page.locator("#stage-caption")).to_contain_text("overlay off")
    off = stage_pixels(page)
    assert np.abs(half - off).mean() > 10  # the colour map was over the photo
    page.get_by_label("Overlay").check()
    expect(page.locator("#map")).to_be_visible()
    slider = page.get_by_role("slider", name="Opacity")
    slider.focus()
    page.keyboard.press("Home")
    expect(page.locator("#opacity-value")).to_have_text("0 %")
    expect(page.locator("#map")).to_have_css("opacity", "0")
    assert np.abs(stage_pixels(page) - off).mean() < 0.5  # opacity 0 = the photo alone
    page.keyboard.press("End")
    expect(page.locator("#opacity-value")).to_have_text("100 %")
    full = stage_pixels(page)
    assert np.abs(full - off).mean() > np.abs(half - off).mean() + 5
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#opacity-value")).to_have_text("99 %")


def test_switch_class_and_method(small: Path, open_report) -> None:
    page = open_report(small)
    d = data(small)
    open_image(page, "photos/cat.png: open")
    cat = d["images"][0]
    buttons = page.locator("#class-list .class-btn")
    expect(buttons).to_have_count(2)
    expect(buttons.nth(0)).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#map")).to_have_attribute("src", cat["m"][0]["t"][0]["map"])
    first = stage_pixels(page)
    buttons.nth(1).click()
    expect(buttons.nth(1)).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#map")).to_have_attribute("src", cat["m"][0]["t"][1]["map"])
    expect(page.locator("#stage-caption")).to_contain_text("tabby, tabby cat (0.30)")
    assert np.abs(stage_pixels(page) - first).mean() > 3  # the other class's map
    page.get_by_role("dialog").get_by_label("Method").select_option(label="rise")
    # the same class, by the other method
    expect(page.locator("#map")).to_have_attribute("src", cat["m"][1]["t"][1]["map"])
    assert cat["m"][1]["t"][1]["map"] == "../rise/maps/cat_tabby_tabby_cat_0.30.png"
    expect(page.locator("#stage-caption")).to_contain_text("tabby, tabby cat (0.30)")
    expect(page.locator("#stage-caption")).to_contain_text("Method: rise")
    expect(page.locator("#details")).to_contain_text("deletion_auc")
    expect(page.locator("#details")).to_contain_text("1.000")  # rise: index 0 / 100 + 1
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    # the gallery follows the method
    src = page.locator("#grid .tile").nth(0).locator("img").get_attribute("src")
    assert src == "thumbs/1/0.jpg"


def test_keyboard_navigation(small: Path, open_report) -> None:
    page = open_report(small)
    tiles = page.locator("#grid .tile")
    tiles.nth(0).focus()
    page.keyboard.press("ArrowRight")
    expect(tiles.nth(1)).to_be_focused()
    page.keyboard.press("ArrowDown")  # all six fit on one row at 1280 px: nowhere to go
    expect(tiles.nth(1)).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(tiles.nth(0)).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#viewer-title")).to_have_text(re.compile(r"/dog\.png \(2 of 6\)$"))
    page.keyboard.press("ArrowRight")
    expect(page.locator("#viewer-title")).to_have_text(re.compile(r"/plain\.png \(3 of 6\)$"))
    page.keyboard.press("o")
    expect(page.get_by_label("Overlay")).not_to_be_checked()
    page.keyboard.press("2")
    expect(page.locator("#class-list .class-btn").nth(1)).to_have_attribute("aria-pressed",
                                                                            "true")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(tiles.nth(2)).to_be_focused()  # back on the image last shown


def test_failed_image_in_the_view(small: Path, open_report) -> None:
    page = open_report(small)
    open_image(page, "photos/broken.png: open")
    expect(page.locator("#details")).to_contain_text("✗ failed: not an image")
    expect(page.locator("#stage-caption")).to_contain_text("failed")
    expect(page.locator("#class-list")).to_have_text("no class maps")


# --- tables ------------------------------------------------------------------------------

def test_metric_tables_and_model_card(small: Path, open_report) -> None:
    page = open_report(small)
    table = page.locator("#summary-table")
    expect(table.locator("thead th")).to_have_text(["metric", "better", "reciprocam", "rise"])
    row = table.locator("tbody tr").filter(has_text="pointing_game")  # intervals overlap
    expect(row.locator("td")).to_have_text([
        "↑ higher is better; no clear best: the intervals of rise and reciprocam overlap",
        "0.500 [0.300, 0.700] n=6", "0.600 [0.400, 0.800] n=6"])
    row = table.locator("tbody tr").filter(has_text="deletion_auc")
    expect(row.locator("td").nth(1)).to_have_text("0.200 [0.100, 0.300] n=6")
    per_class = page.locator("#class-table")
    expect(per_class.locator("tbody th")).to_have_text(["Egyptian cat", "tiger cat"])
    expect(per_class.locator("tbody tr").nth(1).locator("td")).to_have_text(
        ["1.000 [0.500, 1.000] n=3", "0.750 [0.500, 1.000] n=3"])
    card = page.locator("table.card[data-method='rise']")
    for key, value in (("target_layer", "/features/conv_last"), ("xaigraph_version", "0.1.0"),
                       ("pipeline", "detect-target,insert-saliency{method=rise},"
                                    "embed-scaling,validate"),
                       ("model.path", "tiny.onnx"), ("model.sha256", "ab" * 32),
                       ("method.name", "rise"), ("method.why", "given by --method"),
                       ("preprocessing.size", "224, 224")):
        expect(card.locator("tr").filter(has=page.get_by_role("rowheader", name=key,
                                                              exact=True))
               .locator("td")).to_have_text(value)


@pytest.mark.parametrize("case,values,best,why", [
    ("apart", [(0.9, [0.85, 0.95], 6), (0.5, [0.4, 0.6], 6), (0.4, [0.3, 0.5], 6)], 1, ""),
    ("overlap", [(0.9, [0.55, 0.95], 6), (0.5, [0.4, 0.6], 6), (0.4, [0.3, 0.5], 6)], None,
     "no clear best: the intervals of a and b overlap"),
    ("same", [(0.5, [0.4, 0.6], 6)] * 3, None, "no clear best: every mean is the same"),
    ("tie", [(0.9, [0.8, 1.0], 6), (0.9, [0.8, 1.0], 6), (0.1, [0.0, 0.2], 6)], None,
     "no clear best: a and b tie"),
    ("n=1", [(0.9, [0.9, 0.9], 1), (0.5, [0.4, 0.6], 6), (0.4, [0.3, 0.5], 6)], None,
     "no clear best: no interval for a (n < 2)"),
])
def test_best_only_where_intervals_do_not_overlap(tmp_path: Path, open_report, case: str,
                                                   values: list[Any], best: int | None,
                                                   why: str) -> None:
    """★ best marks a method only when its interval overlaps no other's; otherwise the
    "better" cell says why there is no clear best."""
    folder = write_eval(tmp_path / "ev", small_images()[:2], {"a": (0.0, 0.0), "b": (0.1, 0.0),
                                                              "c": (0.2, 0.0)})
    doc = json.loads((folder / "metrics.json").read_text())
    for method, (mean, ci, n) in zip("abc", values, strict=True):
        doc["summary"][method]["pointing_game"].update(mean=mean, ci95=ci, n=n)
    (folder / "metrics.json").write_text(json.dumps(doc), encoding="utf-8")
    page = open_report(build_report(folder))
    cells = page.locator("#summary-table tbody tr").filter(has_text="pointing_game").locator("td")
    expect(cells.nth(0)).to_have_text("↑ higher is better" + (f"; {why}" if why else ""))
    for k in (1, 2, 3):
        if k == best:
            expect(cells.nth(k)).to_contain_text("★ best")
        else:
            expect(cells.nth(k)).not_to_contain_text("best")


def test_a_report_outside_dir_stands_alone(tmp_path: Path, open_report) -> None:
    """Built with -o elsewhere, the report keeps working once DIR and the photos are gone."""
    write_explain(tmp_path / "src" / "out", small_images()[:2])
    index = build_report(tmp_path / "src" / "out", tmp_path / "site")
    (tmp_path / "src").rename(tmp_path / "gone")
    page = open_report(index)
    open_image(page, "photos/cat.png: open")
    on = stage_pixels(page)
    page.get_by_label("Overlay").uncheck()
    assert np.abs(on - stage_pixels(page)).mean() > 10  # map and photo both load


def test_switch_method_after_viewing_an_image_then_filter(small: Path, open_report) -> None:
    """View an image, close the view, switch the method, filter (the list no longer holds the
    image last viewed), switch the method again: no page error, each switch applied."""
    page = open_report(small)
    open_image(page, "photos/other/cat.png: open")  # the last image: position 5
    page.keyboard.press("Escape")
    method = page.locator("#method")
    method.select_option(label="rise")
    expect(page.locator("#grid .tile").nth(0).locator("img")).to_have_attribute(
        "src", "thumbs/1/0.jpg")
    page.get_by_label("Label").select_option(label="golden retriever")
    expect(page.locator("#count")).to_have_text("2 of 6 images, showing 1-2")
    method.select_option(label="reciprocam")
    expect(method).to_have_value("0")
    expect(page.locator("#grid .tile").nth(0).locator("img")).to_have_attribute(
        "src", "thumbs/0/1.jpg")
    open_image(page, "photos/dog.png: open")
    expect(page.locator("#stage-caption")).to_contain_text("Method: reciprocam")


def _rects(page: Page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(selector, """(els) => els.map((e) => {
        const r = e.getBoundingClientRect();
        return {x: r.left, y: r.top, r: r.right, b: r.bottom, text: e.textContent}; })""")


def _meet(a: dict, b: dict) -> bool:
    return a["x"] < b["r"] and b["x"] < a["r"] and a["y"] < b["b"] and b["y"] < a["b"]


@pytest.mark.parametrize("width", [1280, 700])
def test_box_labels_lie_in_the_image_without_overlap(tmp_path: Path, browser: Browser,
                                                     width: int) -> None:
    """Ground-truth boxes sharing corners and touching the image's top edge: every label
    lies inside the picture, meets no other label and none of the view's controls."""
    boxes = [(0, 0, 30, 20, "tiger cat"), (1, 0, 40, 30, "golden retriever"),
             (0, 2, 20, 40, "Egyptian cat"), (2, 1, 64, 48, "tabby, tabby cat"),
             (30, 0, 64, 10, "a rather long label for a small box")]
    write_explain(tmp_path / "out", [Img("crowd", boxes=boxes, truth=["tiger cat"])])
    index = build_report(tmp_path / "out")
    context = browser.new_context(viewport={"width": width, "height": 900})
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(index.resolve().as_uri())
        open_image(page, "photos/crowd.png: open")
        stage_pixels(page)  # the pictures have loaded
        labels = _rects(page, "#boxes span")
        assert sorted(r["text"] for r in labels) == sorted(f"truth: {b[4]}" for b in boxes)
        stage = _rects(page, "#stage")[0]
        controls = _rects(page, ".viewer-controls, .viewer-controls *")
        for k, a in enumerate(labels):
            assert (a["x"] >= stage["x"] - 0.5 and a["r"] <= stage["r"] + 0.5
                    and a["y"] >= stage["y"] - 0.5 and a["b"] <= stage["b"] + 0.5), (a, stage)
            assert a["r"] - a["x"] > 4 and a["b"] - a["y"] > 4, a  # still visible
            for b in labels[k + 1:]:
                assert not _meet(a, b), (a, b)
            for c in controls:
                assert not _meet(a, c), (a, c)
    finally:
        context.close()
    assert problems == []


# --- issue 22: why was it wrong, methods side by side -------------------------------------

THREE = {"reciprocam": (0.0, 0.0), "rise": (0.3, 0.1), "aise": (0.1, 0.4)}


def wrong_images() -> list[Img]:
    """Three wrong images (two with the record's roles, one of an older xaigraph without
    them), a right one, one without ground truth, a failed one."""
    return [
        Img("hairless", truth=["sorrel"], targets=1, roles=["predicted", "truth"],
            preds=[(268, "Mexican hairless", 0.87), (207, "golden retriever", 0.1)],
            extra=[(339, "sorrel", 0.0)], peak=(0.3, 0.3)),
        Img("dog", truth=["golden retriever"], peak=(0.7, 0.6),
            preds=[(282, "tiger cat", 0.45), (207, "golden retriever", 0.4)]),
        Img("fine", truth=["tiger cat"], targets=1, roles=["both"],
            preds=[(282, "tiger cat", 0.7), (281, "tabby, tabby cat", 0.2)]),
        Img("plain", preds=[(285, "Egyptian cat", 0.8), (282, "tiger cat", 0.1)]),
        Img("broken", error="not an image: cannot identify image file"),
        Img("tabby", truth=["Egyptian cat"], targets=1, roles=["predicted", "truth"],
            preds=[(281, "tabby, tabby cat", 0.62), (282, "tiger cat", 0.3)],
            extra=[(285, "Egyptian cat", 0.2)], peak=(0.6, 0.3)),
    ]


@pytest.fixture(scope="module")
def wrongs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wrongs")
    write_eval(folder / "ev", wrong_images(), THREE, raw=True)
    return build_report(folder / "ev")


def test_errors_only_and_sort_by_the_wrong_class_confidence(wrongs: Path, open_report) -> None:
    page = open_report(wrongs)
    expect(page.locator("#count")).to_have_text("6 of 6 images, showing 1-6")
    page.get_by_label("Errors only").check()
    expect(page.locator("#count")).to_have_text("3 of 6 images, showing 1-3")
    assert tile_names(page) == ["hairless.png", "dog.png", "tabby.png"]
    page.get_by_label("Sort by").select_option(label="confidence of the wrong class")
    expect(page.get_by_label("Order")).to_have_value("desc")
    assert tile_names(page) == ["hairless.png", "tabby.png", "dog.png"]  # 0.87, 0.62, 0.45
    page.get_by_label("Order").select_option("asc")
    assert tile_names(page) == ["dog.png", "tabby.png", "hairless.png"]
    page.get_by_label("Errors only").uncheck()
    expect(page.locator("#grid .tile")).to_have_count(6)


def test_why_was_it_wrong_shows_the_predicted_and_true_maps_side_by_side(
        wrongs: Path, open_report) -> None:
    page = open_report(wrongs)
    d = data(wrongs)
    open_image(page, "hairless.png")
    why = page.get_by_role("region", name=re.compile("Why was it wrong"))
    expect(why).to_be_visible()
    panes = why.locator("figure")
    expect(panes).to_have_count(2)
    expect(panes.nth(0)).to_have_text("predicted: Mexican hairless 0.87 ✗ FP")
    expect(panes.nth(1)).to_have_text("truth: sorrel 0.00 ○ FN")
    targets = d["images"][0]["m"][0]["t"]
    assert [t["role"] for t in targets] == ["predicted", "truth"]
    assert [panes.nth(k).locator("img.pane-map").get_attribute("src") for k in range(2)] == [
        t["map"] for t in targets]
    # a record of an older xaigraph (no roles): found by the flags' rule
    page.get_by_role("button", name="Next image").click()
    expect(page.locator("#viewer-title")).to_contain_text("dog.png")
    expect(panes.nth(0)).to_have_text("predicted: tiger cat 0.45 ✗ FP")
    expect(panes.nth(1)).to_have_text("truth: golden retriever 0.40 ○ FN")
    # a right image: nothing to compare
    page.get_by_role("button", name="Next image").click()
    expect(page.locator("#viewer-title")).to_contain_text("fine.png")
    expect(why).to_be_hidden()


def test_all_methods_grid_with_rank_correlations(wrongs: Path, open_report) -> None:
    page = open_report(wrongs)
    d = data(wrongs)
    open_image(page, "tabby.png")
    grid = page.get_by_role("region", name=re.compile("^Side by side"))
    expect(grid).to_be_hidden()
    page.get_by_role("button", name="All methods").click()
    expect(page.get_by_role("button", name="All methods")).to_have_attribute("aria-pressed", "true")
    expect(grid).to_be_visible()
    expect(grid.get_by_role("heading")).to_have_text("Side by side: tabby, tabby cat")
    figures = grid.locator("figure")
    expect(figures).to_have_count(3)  # one map per method, of the class shown
    im = d["images"][5]
    for k, method in enumerate(d["methods"]):
        mine = next(t for t in im["m"][k]["t"] if t["label"] == "tabby, tabby cat")
        expect(figures.nth(k)).to_have_text(f"{method}: tabby, tabby cat 0.62")
        assert figures.nth(k).locator("img.pane-map").get_attribute("src") == mine["map"]
    rk = next(r for r in im["rk"] if r["label"] == "tabby, tabby cat")
    assert len(rk["r"]) == 3
    lines = grid.locator("#rank-list li")
    for n, (i, j, r) in enumerate(rk["r"]):
        expect(lines.nth(n)).to_have_text(
            f"Spearman \u03c1({d['methods'][i]}, {d['methods'][j]}) = {r:.3f}")
    a, b, _ = im["dpair"]
    expect(lines.nth(3)).to_contain_text(f"most apart (first class): {a} vs {b}")
    # the class shown changes the grid to that class's maps; the key m hides it
    page.get_by_role("button", name=re.compile("2. Egyptian cat")).click()
    expect(grid.get_by_role("heading")).to_have_text("Side by side: Egyptian cat")
    expect(figures.nth(2)).to_have_text("aise: Egyptian cat 0.20")
    page.get_by_role("button", name="All methods").focus()  # the re-drawn class list had it
    page.keyboard.press("m")
    expect(grid).to_be_hidden()


def test_disagreement_sort_names_the_disagreeing_pair(wrongs: Path, open_report) -> None:
    page = open_report(wrongs)
    d = data(wrongs)
    page.get_by_label("Sort by").select_option("disagreement")
    first = max((im for im in d["images"] if im["dis"] is not None), key=lambda im: im["dis"])
    a, b, v = first["dpair"]
    expect(page.locator("#grid .tile").first).to_contain_text(
        f"most apart: {a} vs {b} ({v:.3f})")

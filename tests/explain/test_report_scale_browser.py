"""The report's colour scale switch in a real browser (Chromium by Playwright, as
test_report_browser): the map shown follows the chosen mode, the colour bar shows the mode's
end values, a class below --low-confidence has its badge, and a run without raw ranges
says so when asked for the image or run scale."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.explain.report_fixtures import Img, write_explain
from tests.explain.test_report_browser import (  # noqa: F401  (fixtures)
    browser,
    data,
    open_image,
    open_report,
    stage_pixels,
)
from xaigraph.cli import cli
from xaigraph.explain.report import build_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real(cnn_file: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of a real explain run: 2 photos, top 3 classes, low confidence below 0.3."""
    folder = tmp_path_factory.mktemp("scale")
    photos = folder / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(
            photos / f"p{i}.png")
    out = folder / "out"
    result = CliRunner().invoke(cli, ["explain", str(cnn_file("gap_fc", False, "onnx17")),
                                      str(photos), "-o", str(out), "--targets", "topk:3",
                                      "--low-confidence", "0.3"])
    assert result.exit_code == 0, result.stderr
    return build_report(out)


def short(v: float) -> str:
    """As the page writes an end value: 3 significant digits, no trailing zeros."""
    return str(float(f"{v:.3g}")).removesuffix(".0")


def test_scale_switch_changes_the_map_and_its_bar(real: Path, open_report) -> None:  # noqa: F811
    page = open_report(real)
    d = data(real)
    record = json.loads((real.parent.parent / "results.jsonl").read_text().splitlines()[0])
    targets = d["images"][0]["m"][0]["t"]
    low = [k for k, tt in enumerate(targets) if tt["low"]]
    high = [k for k, tt in enumerate(targets) if not tt["low"]]
    assert low and high, "the fixture needs classes on both sides of --low-confidence"
    k = low[0]
    t = targets[k]
    open_image(page, "p0.png: open")
    pick = page.get_by_label("Colour scale")
    assert pick.input_value() == "score"  # the run's --map-scale
    buttons = page.locator("#class-list .class-btn")
    buttons.nth(k).click()
    mapped = page.locator("#map")
    assert mapped.get_attribute("src") == t["v"]["score"][0]
    assert page.locator("#scale-note").inner_text() == "score scale"
    assert page.locator("#scale-low").inner_text() == "0"
    assert page.locator("#scale-high").inner_text() == "1"
    assert page.locator("#scale-mark").is_visible()
    assert page.locator("#low-badge").is_visible()
    assert "(low confidence)" in buttons.nth(k).inner_text()
    page.get_by_label("Opacity").fill("100")
    faint = stage_pixels(page)
    pick.select_option("map")
    assert mapped.get_attribute("src") == t["map"]
    lo, hi = record["targets"][k]["range"]
    assert page.locator("#scale-low").inner_text() == short(lo)
    assert page.locator("#scale-high").inner_text() == short(hi)
    assert not page.locator("#scale-mark").is_visible()
    own = stage_pixels(page)
    assert np.abs(own - faint).mean() > 5  # the map on its own range against a faint one
    pick.select_option("run")
    assert mapped.get_attribute("src") == t["v"]["run"][0]
    run_lo = min(tt["v"]["map"][1] for im in d["images"] for tt in im["m"][0]["t"])
    assert page.locator("#scale-low").inner_text() == short(run_lo)
    assert page.locator("#scale-note").inner_text() == "run scale"
    # the mode stays when another class is shown; a class above 0.3 has no badge
    buttons.nth(high[0]).click()
    assert mapped.get_attribute("src") == targets[high[0]]["v"]["run"][0]
    assert not page.locator("#low-badge").is_visible()


def test_no_raw_ranges_falls_back_to_the_maps_own_scale(tmp_path: Path,
                                                         open_report) -> None:  # noqa: F811
    index = build_report(write_explain(tmp_path / "out", [Img("cat", preds=[(1, "cat", 0.4)],
                                                              peak=(0.3, 0.4))]))
    page = open_report(index)
    t = data(index)["images"][0]["m"][0]["t"][0]
    open_image(page, "cat.png: open")
    pick = page.get_by_label("Colour scale")
    assert pick.input_value() == "map"  # an older run: its maps were per map
    pick.select_option("image")
    assert page.locator("#map").get_attribute("src") == t["map"]
    assert "not available" in page.locator("#scale-note").inner_text()
    assert page.locator("#scale-low").inner_text() == "min"
    pick.select_option("score")
    assert page.locator("#map").get_attribute("src") == t["v"]["score"][0]

"""The report's "Can these maps be trusted?" panel (report_trust.js) in Chromium: each
check's figure, interval, threshold and verdict from metrics.json's sanity block, the MPRT
curve with one point per cascade step, a black-box method said not measured; no panel for
an eval without sanity checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.explain.report_fixtures import write_eval
from tests.explain.test_report_browser import ARGS, CHROMIUM, data, small_images
from tests.extras import require
from xaigraph.explain.report import build_report

require("playwright")
from playwright.sync_api import Browser, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow


def _s(mean: float, low: float, high: float, n: int = 5) -> dict:
    return {"mean": mean, "ci95": [low, high], "n": n}


SANITY = {
    "threshold": 0.6, "seed": 0, "metrics": {},
    "summary": {
        "reciprocam": {
            "class_sensitivity": _s(-0.9, -0.95, -0.85), "class_sensitivity_passed": True,
            "cascade": [
                {"step": "1. classifier", "spearman": _s(0.2, 0.1, 0.3), "ssim": _s(0.1, 0, 0.2),
                 "passed": True},
                {"step": "2. stage 7x7", "spearman": _s(0.9, 0.85, 0.95),
                 "ssim": _s(0.8, 0.7, 0.9), "passed": False},
                {"step": "3. stage 14x14", "spearman": _s(0.1, 0.0, 0.2),
                 "ssim": _s(0.1, 0, 0.2), "passed": True}]},
        "rise": {"skipped": "a black-box method: not randomised"}},
    "images": [{"key": "cat", "method": "reciprocam", "mprt": []}],
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make browser`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _report(folder: Path, sanity: dict | None) -> Path:
    ev = write_eval(folder / "ev", small_images(), {"reciprocam": (0.0, 0.0),
                                                     "rise": (0.3, 0.1)})
    if sanity is not None:
        doc = json.loads((ev / "metrics.json").read_text())
        doc["sanity"] = sanity
        (ev / "metrics.json").write_text(json.dumps(doc))
    return build_report(ev)


def test_the_trust_panel(browser: Browser, tmp_path: Path) -> None:
    index = _report(tmp_path, SANITY)
    assert "images" not in data(index)["trust"]  # the per-image rows stay in metrics.json
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(index.resolve().as_uri())
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    panel = page.locator("#trust-body")
    expect(panel.locator("h2")).to_have_text("Can these maps be trusted?")
    rows = panel.locator("#trust-table tbody tr")
    expect(rows).to_have_count(5)  # reciprocam: sensitivity + 3 steps; rise: one line
    texts = rows.all_inner_texts()
    assert "class sensitivity" in texts[0] and "-0.90 [-0.95, -0.85] n=5" in texts[0]
    assert texts[0].rstrip().endswith("pass")
    assert "2. stage 7x7" in texts[2] and texts[2].rstrip().endswith("FAIL")
    assert "≤ 0.6" in texts[1]
    assert "not measured: a black-box method" in texts[4]
    curve = panel.locator("svg.mprt-curve")
    expect(curve).to_have_count(1)
    points = curve.locator("polyline.mean").get_attribute("points") or ""
    assert len(points.split()) == 3
    assert curve.locator("circle.fail").count() == 1
    assert curve.locator("circle.pass").count() == 2
    assert errors == []
    page.close()


def test_no_panel_without_sanity_checks(browser: Browser, tmp_path: Path) -> None:
    index = _report(tmp_path, None)
    assert data(index)["trust"] is None
    page = browser.new_page()
    page.goto(index.resolve().as_uri())
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#trust-body")).to_be_hidden()
    page.close()

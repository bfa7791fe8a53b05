"""An Explanation in a notebook: Jupyter's PNG and HTML (the targets' overlays side by side,
captioned with class and score) and `plot()`'s matplotlib figure."""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import xaigraph
from xaigraph.explain import notebook


@pytest.fixture(scope="module")
def found(cnn_file: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
          ) -> list[xaigraph.explain.Explanation]:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"not an image")
    return list(xaigraph.explain(cnn_file("gap_fc", True, "onnx17"),
                                 [folder / "a.png", folder / "b.png"], targets="topk:3"))


def test_png_shows_each_target_overlay(found: list[xaigraph.explain.Explanation]) -> None:
    ex = found[0]
    sheet = Image.open(io.BytesIO(ex._repr_png_()))
    assert sheet.format == "PNG"
    tiles = [notebook._tile(ex.overlay(c)) for c in ex.targets]
    assert len(tiles) == 3
    assert sheet.size == (sum(t.width for t in tiles) + 4 * 2,
                          tiles[0].height + notebook.CAPTION)
    x = 0
    for tile in tiles:  # each overlay, unchanged, in target order
        got = np.asarray(sheet.convert("RGB"))[:tile.height, x:x + tile.width]
        np.testing.assert_array_equal(got, np.asarray(tile.convert("RGB")))
        x += tile.width + 4
    caption = np.asarray(sheet.convert("L"))[tiles[0].height:]
    assert (caption < 128).any()  # the class and score are written under the tiles


def test_html_embeds_the_png_and_names_the_predictions(
        found: list[xaigraph.explain.Explanation]) -> None:
    ex = found[0]
    page = ex._repr_html_()
    data = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert data is not None and base64.b64decode(data.group(1)) == ex._repr_png_()
    top = ex.predictions[0]
    assert f"{top['label']} {top['score']:.2f}" in page
    bad = found[1]
    assert not bad.ok and bad.error
    assert f"<b>{html.escape(bad.key)}</b>: {html.escape(bad.error)}" in bad._repr_html_()
    assert Image.open(io.BytesIO(bad._repr_png_())).format == "PNG"


def test_plot_draws_one_axis_per_target(found: list[xaigraph.explain.Explanation]) -> None:
    from tests.extras import require

    require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    ex = found[0]
    fig = ex.plot()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"{ex.label(c)} {float(ex.scores[c]):.2f}" for c in ex.targets]
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_array_equal(np.asarray(shown), np.asarray(ex.overlay(ex.targets[0])))
    with pytest.raises(ValueError, match="no explanation"):
        found[1].plot()

"""An `Explanation` in a notebook: the overlays of its targets side by side, each captioned
with its class and score (`grid`), as Jupyter's PNG and HTML (`Explanation._repr_png_`,
`_repr_html_`), or as a matplotlib figure (`Explanation.plot()`, matplotlib installed: the
`plot` extra)."""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

# An `xaigraph.explain.Explanation` (that package imports this module: no import back)
Explanation = Any

__all__ = ["MOST", "TILE", "grid", "html_of", "plot", "png_of"]

MOST = 6  # targets shown; the rest are named in the caption
TILE = 256  # the longer side of one tile, pixels
CAPTION = 18  # the caption's band under a tile, pixels


def _captions(ex: Explanation) -> list[tuple[int, str]]:
    """(class, "label 0.87") of the targets shown, in target order."""
    scores = ex.scores
    out = []
    for c in ex.targets[:MOST]:
        score = f" {float(scores[c]):.2f}" if scores is not None and c < len(scores) else ""
        out.append((c, f"{ex.label(c)}{score}"))
    return out


def _tile(image: Image.Image) -> Image.Image:
    scale = TILE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size)


def grid(ex: Explanation) -> Image.Image:
    """The overlays of the first `MOST` targets in a row, each with its class and score
    under it (the photo alone, captioned, when no target has a map)."""
    from PIL import Image, ImageDraw

    shown = [(_tile(ex.overlay(c)), text) for c, text in _captions(ex)] or \
        [(_tile(ex.image), "no target has a map")]
    width = sum(t.width for t, _ in shown) + 4 * (len(shown) - 1)
    height = max(t.height for t, _ in shown) + CAPTION
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for tile, text in shown:
        sheet.paste(tile, (x, 0))
        draw.text((x + 2, tile.height + 3), text[:40], fill="black")
        x += tile.width + 4
    return sheet


def png_of(ex: Explanation) -> bytes:
    """`grid(ex)` as PNG bytes; an image that could not be read: a PNG of its error."""
    from PIL import Image, ImageDraw

    if not ex.ok:
        sheet = Image.new("RGB", (TILE * 2, CAPTION + 6), "white")
        ImageDraw.Draw(sheet).text((3, 3), f"{ex.key}: {ex.error}"[:80], fill="black")
    else:
        sheet = grid(ex)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def html_of(ex: Explanation) -> str:
    """The grid inline, with the image's key and its top predictions as text."""
    key = html.escape(ex.key)
    if not ex.ok:
        return f"<p><b>{key}</b>: {html.escape(str(ex.error))}</p>"
    data = base64.b64encode(png_of(ex)).decode("ascii")
    top = ", ".join(f"{html.escape(str(p['label']))} {float(p['score']):.2f}"
                    for p in ex.predictions[:3])
    more = len(ex.targets) - MOST
    extra = f" ({more} more targets not shown)" if more > 0 else ""
    return (f'<figure style="margin:0"><img src="data:image/png;base64,{data}" '
            f'alt="{key}"/><figcaption><b>{key}</b>: {top}{extra}</figcaption></figure>')


def plot(ex: Explanation, **figure: Any) -> Any:
    """A matplotlib figure: one axis per target shown, the overlay with its class and score
    as the title. `figure`: `plt.figure`'s keywords (`figsize`, `dpi`)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Explanation.plot() needs matplotlib: pip install matplotlib (or "
                          "the xaigraph[plot] extra)") from None
    ex._check()
    shown = _captions(ex)
    fig = plt.figure(**({"figsize": (3.2 * max(1, len(shown)), 3.4)} | figure))
    for i, (c, text) in enumerate(shown or [(-1, "no target has a map")]):
        ax = fig.add_subplot(1, max(1, len(shown)), i + 1)
        ax.imshow(ex.overlay(c) if c >= 0 else ex.image)
        ax.set_title(text, fontsize=9)
        ax.axis("off")
    fig.suptitle(ex.key, fontsize=10)
    return fig

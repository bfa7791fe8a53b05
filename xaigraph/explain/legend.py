"""The colour scale drawn under an overlay: a margin below the picture (never over it) with
a slim bar of the colour map, the values its ends stand for, and a caption (class, score,
scale mode, "low confidence").

    picture = with_legend(overlay, "jet", scale, "tabby cat 0.06")

Cheap per picture: the bar (the colour table stretched to the bar's width) is made once per
colour map and width and kept; each piece of text (a label, a score, a mode, an end value)
is rendered once with Pillow's default font and kept as a mask; the margin is a small numpy
array inked with them; the picture is pasted, never converted.
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from xaigraph.explain.render import lookup
from xaigraph.explain.scales import Scale

__all__ = ["BACKGROUND", "margin_height", "with_legend"]

BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)
_lock = threading.Lock()


def _font_size(width: int) -> int:
    """Text height in pixels for a picture `width` wide: 10 up to 400 px, then width / 40,
    at most 28."""
    return int(min(28, max(10, width // 40)))


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1, or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def margin_height(width: int) -> int:
    """The legend's height under a picture `width` wide: a caption line, the bar line."""
    size = _font_size(width)
    return 2 * (size + size // 2) + size // 2


@functools.lru_cache(maxsize=64)
def _bar(colormap: str, width: int, height: int) -> np.ndarray:
    """`[height, width, 3]` u8: the colour table stretched over `width` columns, column x
    showing index round(255 x / (width - 1))."""
    table = lookup(colormap)
    cols = np.round(np.linspace(0.0, 255.0, max(width, 1))).astype(np.intp)
    return np.ascontiguousarray(np.broadcast_to(table[cols][None], (height, len(cols), 3)))


def _number(value: float | None, fallback: str) -> str:
    if value is None or not math.isfinite(value):
        return fallback
    return f"{value:.3g}"


_INK = np.array([round(255 - (255 - TEXT[0]) * a / 255) for a in range(256)], dtype=np.uint8)


@functools.lru_cache(maxsize=4096)
def _text(text: str, size: int) -> np.ndarray:
    """`text` set in the font of `size`, as the grey it leaves on white: u8 `[line, width,
    1]`, its top at the line's top; kept, so that a label, a score or a mode is rendered
    once."""
    font = _font(size)
    try:
        width = max(1, math.ceil(font.getlength(text)))
    except UnicodeEncodeError:  # Pillow's bitmap font (no FreeType) is Latin-1 only
        text = text.encode("latin-1", "replace").decode("latin-1")
        width = max(1, math.ceil(font.getlength(text)))
    mask = Image.new("L", (width, size + size // 2))
    with _lock:  # Pillow's text layout is not documented as thread-safe
        ImageDraw.Draw(mask).text((0, 0), text, fill=255, font=font)
    return _INK[np.asarray(mask)][..., None]


def _put_text(margin: np.ndarray, mask: np.ndarray, x: int, y: int) -> int:
    """Ink `mask` (`_text`'s) onto the margin at (x, y), clipped; the x after it."""
    h, w = margin.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + mask.shape[1], w), min(y + mask.shape[0], h)
    if x1 > x0 and y1 > y0:
        ink = mask[y0 - y:y1 - y, x0 - x:x1 - x]
        np.minimum(margin[y0:y1, x0:x1], ink, out=margin[y0:y1, x0:x1])
    return x + mask.shape[1]


def with_legend(picture: Image.Image, colormap: str, scale: Scale, caption: str
                ) -> Image.Image:
    """`picture` (RGB) with the legend in a margin below it: same width, taller by
    `margin_height(width)`; the picture's pixels unchanged. `caption` is drawn in pieces
    split at " | " (each piece rendered once and kept)."""
    width, height = picture.size
    size = _font_size(width)
    line = size + size // 2
    margin = np.full((margin_height(width), width, 3), BACKGROUND, dtype=np.uint8)
    pad = max(2, size // 3)
    x = pad
    for k, piece in enumerate(caption.split(" | ")):
        x = _put_text(margin, _text(piece if k == 0 else f" | {piece}", size), x, pad // 2)
    low = _text(_number(scale.low, "min"), size)
    high = _text(_number(scale.high, "max"), size)
    bar_x0 = pad + low.shape[1] + pad
    bar_x1 = width - pad - high.shape[1] - pad
    bar_y0 = line + size // 4
    bar_h = max(3, size // 2 + 1)
    if bar_x1 - bar_x0 >= 8:
        margin[bar_y0:bar_y0 + bar_h, bar_x0:bar_x1] = _bar(colormap, bar_x1 - bar_x0, bar_h)
        text_y = bar_y0 + bar_h // 2 - (size * 3) // 5
        _put_text(margin, low, pad, text_y)
        _put_text(margin, high, width - pad - high.shape[1], text_y)
        if scale.mark is not None:  # where the map's own score lies on the bar: a wedge
            x = bar_x0 + round(scale.mark * (bar_x1 - bar_x0 - 1))
            tip = max(2, size // 4)
            for row in range(tip + 1):
                y = bar_y0 + bar_h + row
                margin[y, max(x - row, 0):min(x + row + 1, width)] = TEXT
    out = Image.new("RGB", (width, height + margin.shape[0]))
    out.paste(picture if picture.mode == "RGB" else picture.convert("RGB"), (0, 0))
    out.paste(Image.fromarray(margin), (0, height))
    return out

"""The colour scale drawn under an overlay: a margin below the picture (never over it) with
a slim bar of the colour map, the values its ends stand for, and a caption (class, score,
scale mode, "low confidence").

    picture = with_legend(overlay, "jet", scale, "tabby cat 0.06")

Cheap per picture: the bar (the colour table stretched to the bar's width) is made once per
colour map and width and kept; the margin is one numpy fill; the text is drawn with Pillow's
default font (one per size, kept).
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


def with_legend(picture: Image.Image, colormap: str, scale: Scale, caption: str
                ) -> Image.Image:
    """`picture` (RGB) with the legend in a margin below it: same width, taller by
    `margin_height(width)`; the picture's pixels unchanged."""
    width, height = picture.size
    size = _font_size(width)
    line = size + size // 2
    extra = margin_height(width)
    canvas = np.empty((height + extra, width, 3), dtype=np.uint8)
    canvas[:height] = np.asarray(picture.convert("RGB"))
    canvas[height:] = BACKGROUND
    font = _font(size)
    low = _number(scale.low, "min")
    high = _number(scale.high, "max")
    pad = max(2, size // 3)
    with _lock:  # Pillow's text layout is not documented as thread-safe; it is cheap
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        low_w = probe.textlength(low, font=font)
        high_w = probe.textlength(high, font=font)
    bar_x0 = pad + math.ceil(low_w) + pad
    bar_x1 = width - pad - math.ceil(high_w) - pad
    bar_y0 = height + line + size // 4
    bar_h = max(3, size // 2 + 1)
    if bar_x1 - bar_x0 >= 8:
        canvas[bar_y0:bar_y0 + bar_h, bar_x0:bar_x1] = _bar(colormap, bar_x1 - bar_x0, bar_h)
    out = Image.fromarray(canvas)
    draw = ImageDraw.Draw(out)
    with _lock:
        draw.text((pad, height + pad // 2), caption, fill=TEXT, font=font)
        if bar_x1 - bar_x0 >= 8:
            text_y = bar_y0 + bar_h // 2
            draw.text((pad, text_y), low, fill=TEXT, font=font, anchor="lm")
            draw.text((width - pad, text_y), high, fill=TEXT, font=font, anchor="rm")
            if scale.mark is not None:  # where the map's own score lies on the bar
                x = bar_x0 + round(scale.mark * (bar_x1 - bar_x0 - 1))
                tip = max(2, size // 4)
                draw.polygon([(x, bar_y0 + bar_h), (x - tip, bar_y0 + bar_h + tip + 1),
                              (x + tip, bar_y0 + bar_h + tip + 1)], fill=TEXT)
    return out

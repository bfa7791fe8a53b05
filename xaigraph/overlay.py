"""Turn a saliency map into pictures: a colour map, an overlay on the photo, a captioned panel.

Runtime code: numpy and Pillow only. Maps are `u8` arrays `[h, w]` (what a model augmented with
embedded scaling returns for one image and one class), 0 = least, 255 = most salient.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["colorize", "overlay", "panel"]

Box = tuple[int, int, int, int]

_MARGIN = 12
_GAP = 12
_CAPTION_SIZE = 16
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)


def colorize(map_u8: np.ndarray) -> np.ndarray:
    """Map `[h, w]` u8 values to `[h, w, 3]` u8 RGB with a jet-like colour map.

    0 is dark blue, then blue, cyan, yellow, red, and 255 is dark red. Each channel is a
    clipped triangle over the value axis, centred a quarter apart (blue, green, red).
    """
    m = np.asarray(map_u8)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {m.shape}")
    v = m.astype(np.float32) / 255.0
    centres = np.array([0.75, 0.5, 0.25], dtype=np.float32)  # R, G, B
    rgb = np.clip(1.5 - np.abs(4.0 * (v[..., None] - centres)), 0.0, 1.0)
    return np.round(rgb * 255.0).astype(np.uint8)


def _resized_map(map_u8: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The map resized bilinearly to `size` = (width, height), still u8."""
    m = np.asarray(map_u8)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {m.shape}")
    if m.dtype != np.uint8:
        raise ValueError(f"expected a u8 map, got {m.dtype}")
    return np.asarray(Image.fromarray(m).resize(size, Image.Resampling.BILINEAR))


def overlay(
    image: Image.Image, map_u8: np.ndarray, alpha: float = 0.5, *, box: Box | None = None
) -> Image.Image:
    """Blend the colourised map over `image`: `(1 - alpha) * photo + alpha * colour`.

    The map is resized bilinearly to the image size, or, when `box` = (left, top, right,
    bottom) is given, to that region of the image (the region the model saw, e.g. a centre
    crop); the rest of the photo is then shown dimmed, without colour.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    photo = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width = photo.shape[:2]
    left, top, right, bottom = box if box is not None else (0, 0, width, height)
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise ValueError(f"box {box} is not inside the {width}x{height} image")
    out = photo * 0.45 if box is not None else photo.copy()
    colour = colorize(_resized_map(map_u8, (right - left, bottom - top))).astype(np.float32)
    region = photo[top:bottom, left:right]
    out[top:bottom, left:right] = (1.0 - alpha) * region + alpha * colour
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1, or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def panel(
    image: Image.Image,
    map_u8: np.ndarray,
    title: str,
    *,
    box: Box | None = None,
    alpha: float = 0.5,
) -> Image.Image:
    """The photo and its overlay side by side on white, with `title` as a one-line caption.

    `box` is passed to `overlay` and outlined on both halves.
    """
    photo = image.convert("RGB")
    blended = overlay(photo, map_u8, alpha, box=box)
    width, height = photo.size
    font = _font(_CAPTION_SIZE)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_box = [round(v) for v in probe.textbbox((0, 0), title, font=font)]
    text_w, text_h = text_box[2] - text_box[0], text_box[3] - text_box[1]
    caption_h = text_h + _MARGIN

    canvas_w = max(2 * width + _GAP + 2 * _MARGIN, text_w + 2 * _MARGIN)
    canvas_h = _MARGIN + height + caption_h + _MARGIN
    canvas = Image.new("RGB", (canvas_w, canvas_h), _BACKGROUND)
    x0 = (canvas_w - (2 * width + _GAP)) // 2
    canvas.paste(photo, (x0, _MARGIN))
    canvas.paste(blended, (x0 + width + _GAP, _MARGIN))

    draw = ImageDraw.Draw(canvas)
    if box is not None:
        left, top, right, bottom = box
        for dx in (x0, x0 + width + _GAP):
            draw.rectangle(
                (dx + left, _MARGIN + top, dx + right - 1, _MARGIN + bottom - 1),
                outline=(255, 255, 255),
                width=1,
            )
    text_x = (canvas_w - text_w) // 2 - text_box[0]
    text_y = _MARGIN + height + (caption_h - text_h) // 2 - text_box[1]
    draw.text((text_x, text_y), title, fill=_TEXT, font=font)
    return canvas

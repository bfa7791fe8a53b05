"""Decoding one image file the way a person expects to see it.

`load(path)` returns an 8-bit RGB `PIL.Image`:

- the EXIF orientation is applied (all eight orientations), so a photo taken upright shows
  upright;
- greyscale (`1`, `L`, `I;16*`, `I`, `F`) becomes grey RGB; 16-bit values are scaled to 8
  bits by 1/257 and rounded (65535 -> 255), not clipped; `I` is taken as 16-bit, `F` as 0..1
  when its largest value is at most 1, else as 0..255;
- transparency (`RGBA`, `LA`, `PA`, a palette with a transparent colour) is composited over
  white, as a browser shows it on a white page;
- `CMYK`, `YCbCr`, `LAB`, `HSV` and palettes are converted to RGB; an animated image gives its
  first frame.

A file that is not an image, an empty file, a truncated file (Pillow's
`LOAD_TRUNCATED_IMAGES` stays off: nothing is silently padded) and an image beyond Pillow's
decompression-bomb limit raise `ImageError`, one line that names the file. `size(path)` reads
(width, height) from the header without decoding the pixels, after the EXIF orientation.
"""

from __future__ import annotations

import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from xaigraph.errors import BadInputError

__all__ = ["ImageError", "load", "size"]

_SWAPPED = {5, 6, 7, 8}  # EXIF orientations that turn the image by 90 degrees
_ORIENTATION = 0x0112
_TRANSPARENT = {"RGBA", "LA", "PA", "RGBa", "La"}
_WHITE = (255, 255, 255)


class ImageError(BadInputError):
    """A file that cannot be decoded as an image (reported per image, the run goes on)."""


def _open(path: Path) -> Image.Image:
    try:
        status = path.stat()
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: no such file") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(status.st_mode):  # before the size: a folder's size means nothing
        raise ImageError(f"{path}: not a regular file")
    if status.st_size == 0:
        raise ImageError(f"{path}: empty file, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: the image is larger than Pillow's limit of "
                         f"{Image.MAX_IMAGE_PIXELS} pixels (a decompression bomb?)") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image (no decoder recognises it)") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc}") from exc


def load(path: str | Path) -> Image.Image:
    """The image at `path` as 8-bit RGB (see the module's docstring)."""
    path = Path(path)
    image = _open(path)
    try:
        with image:
            image.seek(0)
            image.load()
            upright = ImageOps.exif_transpose(image)
            return _rgb(upright if upright is not None else image)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = " ".join(str(exc).split())
        if "truncated" in text.lower() or isinstance(exc, EOFError):
            raise ImageError(f"{path}: truncated image file ({text or 'ends early'})") from exc
        raise ImageError(f"{path}: cannot decode the image: {text or type(exc).__name__}"
                         ) from exc


def _rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image, dtype=np.float64)
        grey = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        values = np.nan_to_num(values)
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
        grey = np.clip(np.round(values * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode in _TRANSPARENT or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*_WHITE, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if mode == "RGB":
        return image.copy()
    return image.convert("RGB")


def size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the image at `path` as `load` would return it, from the header."""
    path = Path(path)
    image = _open(path)
    with image:
        width, height = image.size
        try:
            orientation = image.getexif().get(_ORIENTATION, 1)
        except Exception:  # a broken EXIF block: the image as stored
            orientation = 1
    return (height, width) if orientation in _SWAPPED else (width, height)

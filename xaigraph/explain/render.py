"""A saliency map onto the original image: resize, colour, overlay.

A map `[h, w]` covers the model input (`input_size` = (H, W) pixels). `Preprocess.placement`
says which part of the original the model saw (`image_box`, original pixels) and where that
part lies in the input (`input_box`, input pixels). Each original pixel inside `image_box` is
sampled from the map bilinearly at the point its centre maps to (map cells are centred on
their own grid, edges clamped); pixels outside it are not seen by the model: alpha 0 in the
colour map, dimmed in the overlay.

Colour maps (`COLORMAPS`), each a 256-entry table built from its definition:

- `jet`: xaigraph's jet-like map (`xaigraph.overlay.colorize`): dark blue, blue, cyan,
  yellow, red, dark red.
- `cubehelix`: D. A. Green's cubehelix (Bull. Astr. Soc. India 39, 289, 2011), a helix
  around the grey diagonal of the RGB cube whose perceived brightness rises monotonically
  from black to white (start 0.5, rotations -1.5, hue 1, gamma 1: matplotlib's defaults).
- `gray`: black to white.

Values are quantised to the table as `floor(v * 255 + 0.5)` (half up, as the in-graph u8
scaling rounds). Runtime code: numpy and Pillow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["COLORMAPS", "DIM", "blend", "colour_map", "lookup", "resample", "save_png"]

DIM = 0.45  # the overlay's brightness outside the part the model sees
_TIE = 1e-4  # a float32 map of u8 / 255 puts half-way values a hair off .5: ties go up
PNG_COMPRESS = 1  # zlib level: maps are smooth, level 1 is small enough and fast


def _jet() -> np.ndarray:
    from xaigraph.overlay import colorize

    return colorize(np.arange(256, dtype=np.uint8)[None])[0]


def _cubehelix(start: float = 0.5, rotations: float = -1.5, hue: float = 1.0,
               gamma: float = 1.0) -> np.ndarray:
    lam = np.linspace(0.0, 1.0, 256) ** gamma
    phi = 2.0 * math.pi * (start / 3.0 + rotations * np.linspace(0.0, 1.0, 256))
    amp = hue * lam * (1.0 - lam) / 2.0
    cos, sin = np.cos(phi), np.sin(phi)
    rgb = np.stack([lam + amp * (-0.14861 * cos + 1.78277 * sin),
                    lam + amp * (-0.29227 * cos - 0.90649 * sin),
                    lam + amp * (1.97294 * cos)], axis=1)
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _gray() -> np.ndarray:
    return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


_BUILDERS: dict[str, Callable[[], np.ndarray]] = {
    "jet": _jet, "cubehelix": _cubehelix, "gray": _gray}
COLORMAPS = tuple(_BUILDERS)
_TABLES: dict[str, np.ndarray] = {}


def lookup(name: str) -> np.ndarray:
    """The `[256, 3]` u8 table of colour map `name`."""
    if name not in _TABLES:
        if name not in _BUILDERS:
            raise ValueError(f"unknown colormap '{name}'; use one of {', '.join(COLORMAPS)}")
        _TABLES[name] = _BUILDERS[name]()
    return _TABLES[name]


def _axis(n: int, lo: float, hi: float, in_lo: float, in_hi: float, cells: int, extent: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis of an original of `n` pixels: which pixels are seen, and for each the
    two map cells and the weight of the second."""
    centre = np.arange(n, dtype=np.float64) + 0.5
    seen = (centre >= lo) & (centre < hi)
    u = in_lo + (centre - lo) * (in_hi - in_lo) / max(hi - lo, 1e-12)  # input pixels
    s = np.clip(u * cells / extent - 0.5, 0.0, cells - 1.0)  # map cell coordinate
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, cells - 1)
    return seen, i0, i1, (s - i0).astype(np.float64)


def resample(map01: np.ndarray, placement: Any, width: int, height: int,
             input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The map at the original's resolution: (values `[height, width]` float64, seen
    `[height, width]` bool). `input_size` is the model input's (H, W)."""
    m = np.asarray(map01, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {m.shape}")
    h, w = m.shape
    left, top_, right, bottom = placement.image_box
    in_left, in_top, in_right, in_bottom = placement.input_box
    rows, y0, y1, wy = _axis(height, top_, bottom, in_top, in_bottom, h, input_size[0])
    cols, x0, x1, wx = _axis(width, left, right, in_left, in_right, w, input_size[1])
    top = m[y0] * (1.0 - wy)[:, None] + m[y1] * wy[:, None]  # [height, w]
    values = top[:, x0] * (1.0 - wx)[None] + top[:, x1] * wx[None]
    return values, rows[:, None] & cols[None, :]


def colour_map(map01: np.ndarray, placement: Any, width: int, height: int,
               input_size: tuple[int, int], colormap: str = "jet") -> np.ndarray:
    """The map coloured at the original's resolution: `[height, width, 4]` u8 RGBA, alpha
    255 where the model sees, 0 (and black) elsewhere. `map01` is in 0..1."""
    values, seen = resample(map01, placement, width, height, input_size)
    index = np.clip(np.floor(values * 255.0 + (0.5 + _TIE)), 0, 255).astype(np.uint8)
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = lookup(colormap)[index]
    rgba[..., 3] = 255
    rgba[~seen] = 0
    return rgba


def blend(image: Image.Image, rgba: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """The coloured map over the photo: `round((1 - opacity) * photo + opacity * colour)`
    where the model sees, `round(DIM * photo)` elsewhere; `[H, W, 3]` u8."""
    photo = np.asarray(image.convert("RGB"), dtype=np.float32)
    if photo.shape[:2] != rgba.shape[:2]:
        raise ValueError(f"map {rgba.shape[:2]} and image {photo.shape[:2]} differ in size")
    seen = rgba[..., 3:4] > 0
    a = np.float32(opacity)
    mixed = (np.float32(1.0) - a) * photo + a * rgba[..., :3].astype(np.float32)
    out = np.where(seen, mixed, photo * np.float32(DIM))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Write an `[H, W, 3]` (RGB) or `[H, W, 4]` (RGBA) u8 array as PNG."""
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG",
                                                      compress_level=PNG_COMPRESS)

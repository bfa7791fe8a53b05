"""A saliency map onto the original image: resize, colour, overlay.

A map `[h, w]` covers the model input (`input_size` = (H, W) pixels). `Preprocess.placement`
says which part of the original the model saw (`image_box`, original pixels) and where that
part lies in the input (`input_box`, input pixels). Each original pixel inside `image_box` is
sampled from the map bilinearly at the point its centre maps to (map cells are centred on
their own grid, edges clamped); pixels outside it are not seen by the model: alpha 0 in the
colour map, dimmed in the overlay. The seen pixels form a rectangle (`seen_box`); the map is
resampled over it with Pillow's bilinear resize of the map padded by one edge cell (for an
enlargement Pillow's kernel is exactly the two nearest cells, weights 1 - distance), and with
numpy point sampling when the map is finer than the original.

Colour maps (`COLORMAPS`), each a 256-entry table built from its definition:

- `jet`: xaigraph's jet-like map (`xaigraph.overlay.colorize`): dark blue, blue, cyan,
  yellow, red, dark red.
- `cubehelix`: D. A. Green's cubehelix (Bull. Astr. Soc. India 39, 289, 2011), a helix
  around the grey diagonal of the RGB cube whose perceived brightness rises monotonically
  from black to white (start 0.5, rotations -1.5, hue 1, gamma 1: matplotlib's defaults).
- `gray`: black to white.

Values are quantised to the table as `floor(v * 255 + 0.5)` (half up, as the in-graph u8
scaling rounds). The overlay is Pillow's `Image.blend` where the model sees,
`floor(photo + opacity * (colour - photo))` computed in float32, and `round(DIM * photo)`
elsewhere. Map files are palette PNGs (the table as palette, 1 byte a pixel) when the model
sees the whole original, RGBA otherwise; `encode_png` writes them (Up filter, deflate level 1).
Runtime code: numpy and Pillow.
"""

from __future__ import annotations

import importlib
import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from xaigraph.overlay import colorize

__all__ = ["BOX_COLOUR", "COLORMAPS", "DEFLATE", "DIM", "Coloured", "box_to_original",
           "colour", "colour_map", "draw_box", "encode_png", "lookup", "overlay", "resample",
           "seen_box"]

DIM = 0.45  # the overlay's brightness outside the part the model sees
BOX_COLOUR = (255, 0, 255)  # detection boxes on overlays: magenta, a colour no colour map has
_TIE = 1e-4  # a float32 map of u8 / 255 puts half-way values a hair off .5: ties go up


def _jet() -> np.ndarray:
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


def _box(n: int, lo: float, hi: float) -> tuple[int, int]:
    """The pixels `first .. stop-1` of an axis of `n` whose centres lie in `[lo, hi)`."""
    first = min(max(math.ceil(lo - 0.5), 0), n)
    stop = min(max(math.ceil(hi - 0.5), first), n)
    return first, stop


def _scale(lo: float, hi: float, in_lo: float, in_hi: float, cells: int, extent: int
           ) -> tuple[float, float]:
    """Map-cell coordinate `a + k * c` of the original point `c` (cell j spans [j, j+1])."""
    k = (in_hi - in_lo) / max(hi - lo, 1e-12) * cells / extent
    return in_lo * cells / extent - k * lo, k


def seen_box(placement: Any, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixels of the original the model sees: (left, top, right, bottom), right and
    bottom exclusive; every pixel whose centre lies in `placement.image_box`."""
    left, top, right, bottom = placement.image_box
    x0, x1 = _box(width, left, right)
    y0, y1 = _box(height, top, bottom)
    return x0, y0, x1, y1


def _resample_seen(map01: np.ndarray, placement: Any, width: int, height: int,
                   input_size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The map over the seen box, float32 `[y1 - y0, x1 - x0]`, and the box."""
    m = np.asarray(map01, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {m.shape}")
    h, w = m.shape
    x0, y0, x1, y1 = box = seen_box(placement, width, height)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((y1 - y0, x1 - x0), dtype=np.float32), box
    left, top, right, bottom = placement.image_box
    in_left, in_top, in_right, in_bottom = placement.input_box
    ax, kx = _scale(left, right, in_left, in_right, w, input_size[1])
    ay, ky = _scale(top, bottom, in_top, in_bottom, h, input_size[0])
    if kx <= 1.0 and ky <= 1.0:
        # Pillow's bilinear resize of the map padded by one edge cell: for an enlargement its
        # kernel is the two nearest cells with weights 1 - distance (no widening), and the
        # padding gives clamped edges; the box puts pixel x's centre at a + k (x + 0.5).
        padded = Image.fromarray(np.pad(m, 1, mode="edge"), "F")
        bx, by = ax + kx * x0 + 1.0, ay + ky * y0 + 1.0
        out = padded.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR,
                            box=(bx, by, bx + kx * (x1 - x0), by + ky * (y1 - y0)))
        return np.asarray(out, dtype=np.float32), box
    # a map finer than the original (a small photo): Pillow would filter; sample the points
    sy = np.clip(ay + ky * (np.arange(y0, y1) + 0.5) - 0.5, 0.0, h - 1.0)
    sx = np.clip(ax + kx * (np.arange(x0, x1) + 0.5) - 0.5, 0.0, w - 1.0)
    iy, ix = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    fy, fx = (sy - iy).astype(np.float32)[:, None], (sx - ix).astype(np.float32)[None]
    jy, jx = np.minimum(iy + 1, h - 1), np.minimum(ix + 1, w - 1)
    rows = m[iy] * (np.float32(1.0) - fy) + m[jy] * fy
    return rows[:, ix] * (np.float32(1.0) - fx) + rows[:, jx] * fx, box


def resample(map01: np.ndarray, placement: Any, width: int, height: int,
             input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The map at the original's resolution: (values `[height, width]` float32, 0 where not
    seen; seen `[height, width]` bool). `input_size` is the model input's (H, W)."""
    inner, (x0, y0, x1, y1) = _resample_seen(map01, placement, width, height, input_size)
    values = np.zeros((height, width), dtype=np.float32)
    values[y0:y1, x0:x1] = inner
    seen = np.zeros((height, width), dtype=bool)
    seen[y0:y1, x0:x1] = True
    return values, seen


@dataclass(frozen=True)
class Coloured:
    """A map coloured at the original's resolution, kept as table positions: `index`
    `[y1 - y0, x1 - x0]` u8 over the seen `box` (left, top, right, bottom)."""

    index: np.ndarray
    box: tuple[int, int, int, int]
    width: int
    height: int
    colormap: str

    @property
    def whole(self) -> bool:
        """The model sees every pixel."""
        return self.box == (0, 0, self.width, self.height)

    def rgba(self) -> np.ndarray:
        """`[height, width, 4]` u8: the colour where the model sees (alpha 255), else 0."""
        x0, y0, x1, y1 = self.box
        words = np.zeros((self.height, self.width), dtype=np.uint32)
        np.take(_rgba_words(self.colormap), self.index, out=words[y0:y1, x0:x1], mode="clip")
        return words.view(np.uint8).reshape(self.height, self.width, 4)

    def colour_image(self) -> Image.Image:
        """The seen box in colour, an RGB image of the box's size."""
        index = Image.frombuffer("L", self.index.shape[::-1], np.ascontiguousarray(self.index),
                                 "raw", "L", 0, 1)
        pal = index.convert("P")
        pal.putpalette(lookup(self.colormap).tobytes())
        return pal.convert("RGB")

    def png(self, text: dict[str, str] | None = None) -> bytes:
        """The map file: a palette PNG (the colour map's 256 colours, 1 byte a pixel) when the
        model sees every pixel, else RGBA (alpha 0 where it does not); `text`: tEXt chunks."""
        if self.whole:
            return encode_png(self.index, palette=lookup(self.colormap), text=text)
        return encode_png(self.rgba(), text=text)


def _rgba_words(name: str) -> np.ndarray:
    """The colour map as 256 RGBA words (alpha 255), for a gather into a u32 image."""
    key = f"{name}:rgba"
    if key not in _TABLES:
        table = np.concatenate([lookup(name), np.full((256, 1), 255, np.uint8)], axis=1)
        _TABLES[key] = np.ascontiguousarray(table).view(np.uint32).reshape(256)
    return _TABLES[key]


def colour(map01: np.ndarray, placement: Any, width: int, height: int,
           input_size: tuple[int, int], colormap: str = "jet") -> Coloured:
    """The map resampled to the original and quantised to the colour map's table."""
    lookup(colormap)
    inner, box = _resample_seen(map01, placement, width, height, input_size)
    scaled = inner * np.float32(255.0)
    scaled += np.float32(0.5 + _TIE)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    index = scaled.astype(np.uint8)  # truncation of a non-negative value: the floor
    return Coloured(index, box, width, height, colormap)


def colour_map(map01: np.ndarray, placement: Any, width: int, height: int,
               input_size: tuple[int, int], colormap: str = "jet") -> np.ndarray:
    """The map coloured at the original's resolution: `[height, width, 4]` u8 RGBA, alpha
    255 where the model sees, 0 (and black) elsewhere. `map01` is in 0..1."""
    return colour(map01, placement, width, height, input_size, colormap).rgba()


def _dim_table() -> list[int]:
    return [math.floor(DIM * v + 0.5) for v in range(256)] * 3


def overlay(image: Image.Image, coloured: Coloured, opacity: float = 0.5) -> Image.Image:
    """The coloured map over the photo (RGB, the photo's size): Pillow's `Image.blend`,
    `floor(photo + opacity * (colour - photo))` in float32, where the model sees;
    `round(DIM * photo)` elsewhere."""
    photo = image if image.mode == "RGB" else image.convert("RGB")
    if photo.size != (coloured.width, coloured.height):
        raise ValueError(f"map {coloured.width}x{coloured.height} and image "
                         f"{photo.size[0]}x{photo.size[1]} differ in size")
    box = coloured.box
    if box[2] <= box[0] or box[3] <= box[1]:
        return photo.point(_dim_table())
    mixed = Image.blend(photo if coloured.whole else photo.crop(box),
                        coloured.colour_image(), float(opacity))
    if coloured.whole:
        return mixed
    out = photo.point(_dim_table())
    out.paste(mixed, box[:2])
    return out


def box_to_original(box: Any, placement: Any, width: int, height: int
                    ) -> tuple[float, float, float, float]:
    """A box x1 y1 x2 y2 in model-input pixels as original pixels, clipped to the image: the
    inverse of the linear map from the original to the input that `colour` samples maps
    with (`placement.image_box` onto `placement.input_box`; stretch, crops, letterbox)."""
    left, top, right, bottom = placement.image_box
    in_left, in_top, in_right, in_bottom = placement.input_box
    ax, kx = _scale(left, right, in_left, in_right, 1, 1)
    ay, ky = _scale(top, bottom, in_top, in_bottom, 1, 1)
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    xs = [min(max((v - ax) / kx, 0.0), float(width)) for v in (x1, x2)]
    ys = [min(max((v - ay) / ky, 0.0), float(height)) for v in (y1, y2)]
    return xs[0], ys[0], xs[1], ys[1]


def draw_box(image: Image.Image, box: Any, text: str,
             colour: tuple[int, int, int] = BOX_COLOUR) -> Image.Image:
    """`image` (RGB) with the box x1 y1 x2 y2 (its pixels, edges included) outlined in
    `colour` and `text` on a tag of that colour at its top-left corner; drawn in place."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    line = max(1, round(min(image.size) / 150))
    right, bottom = max(x1, x2 - 1), max(y1, y2 - 1)  # x2, y2 are exclusive edges
    draw.rectangle((x1, y1, right, bottom), outline=colour, width=line)
    if text:
        left, top, tr, tb = draw.textbbox((0, 0), text)
        tag_h = tb - top + 2
        ty = y1 - tag_h if y1 >= tag_h else y1 + line
        draw.rectangle((x1, ty, x1 + tr - left + 3, ty + tag_h - 1), fill=colour)
        draw.text((x1 + 2 - left, ty + 1 - top), text, fill=(0, 0, 0))
    return image


# -- PNG ------------------------------------------------------------------------------------

_PNG_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def _deflater() -> tuple[Any, str]:
    """Intel ISA-L's deflate (the `isal` package) when installed: the same zlib stream,
    about five times faster than zlib's level 1 here; else zlib."""
    try:
        return importlib.import_module("isal.isal_zlib"), "isal"
    except ImportError:
        return zlib, "zlib"


_DEFLATE, DEFLATE = _deflater()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def encode_png(array: np.ndarray, palette: np.ndarray | None = None,
               photo: bool = False, text: dict[str, str] | None = None) -> bytes:
    """An 8-bit PNG of `[H, W]` (grey, or palette indices with `palette` `[N, 3]` u8),
    `[H, W, 3]` (RGB) or `[H, W, 4]` (RGBA) u8. Every row but the first has the Up filter
    (smooth maps and photos become small differences). Deflate: ISA-L's level 1 (`DEFLATE`
    says which library); with zlib, level 1, Huffman coding only for a `photo` (as small for
    a photo, twice as fast). Both work without holding the GIL. `text`: tEXt chunks (keyword
    -> Latin-1 text)."""
    a = np.asarray(array)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (
            1, 3, 4)):
        raise ValueError(f"expected [H, W], [H, W, 3] or [H, W, 4] u8, got {a.dtype} {a.shape}")
    height, width = a.shape[:2]
    channels = 1 if a.ndim == 2 else a.shape[2]
    rows = a.reshape(height, width * channels)
    lines = np.empty((height, width * channels + 1), dtype=np.uint8)
    lines[:, 0] = 2  # Up
    lines[0, 0] = 0
    lines[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=lines[1:, 1:])  # modulo 256, as PNG's filter
    strategy = zlib.Z_HUFFMAN_ONLY if photo and DEFLATE == "zlib" else zlib.Z_DEFAULT_STRATEGY
    packer = _DEFLATE.compressobj(1, zlib.DEFLATED, 15, 8, strategy)
    data = packer.compress(lines.data) + packer.flush()
    kind = 3 if palette is not None else _PNG_TYPES[channels]
    parts = [b"\x89PNG\r\n\x1a\n",
             _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, kind, 0, 0, 0))]
    if palette is not None:
        parts.append(_chunk(b"PLTE", np.ascontiguousarray(palette, dtype=np.uint8).tobytes()))
    for key, value in (text or {}).items():
        parts.append(_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")))
    parts += [_chunk(b"IDAT", data), _chunk(b"IEND", b"")]
    return b"".join(parts)


"""Bad image files for the bad-input suite: each maker writes one file (or what stands in
its place: a folder, a FIFO, a link) at the path it is given."""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encoded(fmt: str = "PNG", size: tuple[int, int] = (40, 30), mode: str = "RGB",
            **params: object) -> bytes:
    """A random picture of `size` (w, h) in `mode`, encoded as `fmt`."""
    w, h = size
    rng = np.random.default_rng(w * 1000 + h)
    image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def declared_png(width: int, height: int, bits: int = 8, colour: int = 2,
                 idat: bytes = b"\x00" * 64) -> bytes:
    """A PNG whose header declares `width` x `height`, with `idat` as its (deflated) data."""
    header = struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, 0)
    return (PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(idat))
            + _chunk(b"IEND", b""))


@functools.lru_cache(maxsize=1)
def bomb_png() -> bytes:
    """30 000 x 30 000 one-bit black: 900 M pixels in about 100 kB."""
    row = b"\x00" * (1 + 30000 // 8)
    return declared_png(30000, 30000, bits=1, colour=0, idat=row * 30000)


def _gif_screen(width: int, height: int) -> bytes:
    data = bytearray(encoded("GIF", (2, 2)))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def _patched(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new):]


def _animated() -> bytes:
    frames = [Image.new("RGB", (20, 16), (i * 60, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buf.getvalue()


def _multi_tiff() -> bytes:
    frames = [Image.new("RGB", (20, 16), (0, i * 60, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _sixteen_bit() -> bytes:
    grey = np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, "PNG")
    return buf.getvalue()


def _float_tiff() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.linspace(-5, 1e6, 40 * 30, dtype=np.float32).reshape(30, 40)).save(
        buf, "TIFF")
    return buf.getvalue()


def _palette_transparent() -> bytes:
    image = Image.new("P", (20, 16), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    buf = io.BytesIO()
    image.save(buf, "PNG", transparency=1)
    return buf.getvalue()


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return encoded("JPEG", (40, 30), exif=exif)


def _data(make: Callable[[], bytes]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
    return write


def _folder(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "inside.txt").write_text("a folder named like an image\n")


def _fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def _link(target: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return write


def _loop(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to("loop2.png")
    (path.parent / "loop2.png").symlink_to(path.name)


def _unreadable(path: Path) -> None:
    _data(encoded)(path)
    path.chmod(0)


def _half(data: Callable[[], bytes]) -> Callable[[], bytes]:
    return lambda: data()[: len(data()) // 2]


# name -> (the file's name, its maker)
IMAGES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "zero_byte": ("b.png", _data(lambda: b"")),
    "truncated_png": ("b.png", _data(_half(lambda: encoded("PNG", (64, 48))))),
    "truncated_jpeg": ("b.jpg", _data(_half(lambda: encoded("JPEG", (64, 48))))),
    "truncated_webp": ("b.webp", _data(_half(lambda: encoded("WEBP", (64, 48))))),
    "png_named_jpg": ("b.jpg", _data(encoded)),
    "jpeg_named_png": ("b.png", _data(lambda: encoded("JPEG"))),
    "ico_named_png": ("b.png", _data(lambda: encoded("ICO", (32, 32)))),
    "text_named_png": ("b.png", _data(lambda: b"not a picture\n")),
    "svg_named_png": ("b.png", _data(lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>')),
    "declared_100000px": ("b.png", _data(lambda: declared_png(100000, 100000))),
    "bomb_900m_pixels": ("b.png", _data(bomb_png)),
    "gif_screen_65535": ("b.gif", _data(lambda: _gif_screen(65535, 65535))),
    "zero_width": ("b.png", _data(lambda: declared_png(0, 16))),
    "one_pixel": ("b.png", _data(lambda: encoded("PNG", (1, 1)))),
    "one_by_4000": ("b.png", _data(lambda: encoded("PNG", (1, 4000)))),
    "sixteen_bit": ("b.png", _data(_sixteen_bit)),
    "float_tiff": ("b.tif", _data(_float_tiff)),
    "bilevel": ("b.png", _data(lambda: encoded("PNG", mode="1"))),
    "int32_tiff": ("b.tif", _data(lambda: encoded("TIFF", mode="I"))),
    "grey_alpha": ("b.png", _data(lambda: encoded("PNG", mode="LA"))),
    "cmyk_jpeg": ("b.jpg", _data(lambda: encoded("JPEG", mode="CMYK"))),
    "palette_transparency": ("b.png", _data(_palette_transparent)),
    "animated_gif": ("b.gif", _data(_animated)),
    "multi_frame_tiff": ("b.tif", _data(_multi_tiff)),
    "exif_orientation_9": ("b.jpg", _data(lambda: _exif_orientation(9))),
    "exif_orientation_6": ("b.jpg", _data(lambda: _exif_orientation(6))),
    "bogus_bmp": ("b.bmp", _data(lambda: b"BM" + b"\xff" * 60)),
    "corrupt_tiff_ifd": ("b.tif", _data(lambda: _patched(encoded("TIFF"), 4, b"\xff\xff\xff\x7f"))),
    "bad_crc": ("b.png", _data(lambda: _patched(encoded(), len(encoded()) - 13, b"\x00"))),
    "trailing_garbage": ("b.png", _data(lambda: encoded() + b"\x00garbage" * 100)),
    "folder_named_png": ("b.png", _folder),
    "fifo_named_png": ("b.png", _fifo),
    "dangling_link": ("b.png", _link("nowhere.png")),
    "link_loop": ("b.png", _loop),
    "link_to_dev_zero": ("b.png", _link("/dev/zero")),
    "mode_000": ("b.png", _unreadable),
    "non_utf8_name": (os.fsdecode(b"\xff\xfe.png"), _data(encoded)),
    "escape_in_name": ("b\x1b]0;owned\x07.png", _data(encoded)),
    "newline_in_name": ("b\nc.png", _data(encoded)),
    "name_of_240_chars": ("x" * 240 + ".png", _data(encoded)),
    "hidden_name": (".b.png", _data(encoded)),
}

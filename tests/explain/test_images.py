"""images.load / images.size: every image is built here, in tmp_path, with PIL and numpy.

Expected pixels come from an independent reference: the array written, EXIF orientations as
numpy transpositions taken from the EXIF specification's row/column table, compositing over
white and 16-bit scaling computed by hand in integer arithmetic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from xaigraph.errors import BadInputError
from xaigraph.explain import images
from xaigraph.explain.images import ImageError

RNG = np.random.default_rng(7)
PICTURE = RNG.integers(0, 256, (24, 40, 3), dtype=np.uint8)  # height 24, width 40


def pixels(path: Path) -> np.ndarray:
    loaded = images.load(path)
    assert loaded.mode == "RGB"
    assert images.size(path) == loaded.size
    return np.asarray(loaded)


def one_line_error(path: Path, *words: str) -> str:
    with pytest.raises(ImageError) as caught:
        images.load(path)
    assert isinstance(caught.value, BadInputError)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message.lower(), message
    return message


# -- formats -------------------------------------------------------------------------------

@pytest.mark.parametrize(("suffix", "options"), [
    (".png", {}), (".bmp", {}), (".tif", {}), (".webp", {"lossless": True}),
])
def test_lossless_formats_give_the_pixels_written(tmp_path: Path, suffix: str,
                                                  options: dict[str, Any]) -> None:
    path = tmp_path / f"a{suffix}"
    Image.fromarray(PICTURE).save(path, **options)
    np.testing.assert_array_equal(pixels(path), PICTURE)


def test_jpeg_gives_the_picture_within_compression_error(tmp_path: Path) -> None:
    smooth = np.zeros((32, 48, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :]
    smooth[..., 1] = np.linspace(0, 255, 32, dtype=np.uint8)[:, None]
    smooth[..., 2] = 90
    path = tmp_path / "a.jpg"
    Image.fromarray(smooth).save(path, quality=98, subsampling=0)
    got = pixels(path).astype(int)
    assert got.shape == smooth.shape
    assert np.abs(got - smooth).max() <= 6
    assert np.abs(got - smooth).mean() < 1.5


def test_gif_is_its_colours_and_an_animated_gif_its_first_frame(tmp_path: Path) -> None:
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)
    first = colours[np.arange(12 * 20).reshape(12, 20) % 4]
    second = np.zeros_like(first)
    path = tmp_path / "anim.gif"
    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(second)],
                                duration=100, loop=0)
    with Image.open(path) as check:
        assert getattr(check, "n_frames", 1) == 2  # really animated
    np.testing.assert_array_equal(pixels(path), first)


# -- EXIF orientation ----------------------------------------------------------------------

def upright(stored: np.ndarray, orientation: int) -> np.ndarray:
    """The picture a viewer shows for `stored` pixels with this EXIF orientation, from the
    specification's table of where the stored 0th row and 0th column go."""
    return {
        1: lambda a: a,                          # row 0 top, column 0 left
        2: lambda a: a[:, ::-1],                 # row 0 top, column 0 right
        3: lambda a: a[::-1, ::-1],              # row 0 bottom, column 0 right
        4: lambda a: a[::-1, :],                 # row 0 bottom, column 0 left
        5: lambda a: a.transpose(1, 0, 2),       # row 0 left, column 0 top
        6: lambda a: a.transpose(1, 0, 2)[:, ::-1],        # row 0 right, column 0 top
        7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],     # row 0 right, column 0 bottom
        8: lambda a: a.transpose(1, 0, 2)[::-1, :],        # row 0 left, column 0 bottom
    }[orientation](stored)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_puts_the_marked_corners_where_a_viewer_shows_them(
        tmp_path: Path, orientation: int) -> None:
    height, width, block = 32, 48, 8
    stored = np.full((height, width, 3), 128, np.uint8)
    stored[:block, :block] = (255, 0, 0)         # stored top-left: red
    stored[:block, -block:] = (0, 0, 255)        # stored top-right: blue
    path = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, exif=exif, quality=95, subsampling=0)

    expected = upright(stored, orientation)
    got = pixels(path)
    assert got.shape == expected.shape
    assert images.size(path) == (expected.shape[1], expected.shape[0])
    # the red and the blue marks, found independently in the expected picture
    for colour in ((255, 0, 0), (0, 0, 255)):
        where = np.all(expected == colour, axis=-1)
        rows, cols = np.nonzero(where)
        centre = got[rows.min() + 2:rows.max() - 1, cols.min() + 2:cols.max() - 1].astype(int)
        assert np.abs(centre - np.array(colour)).max() <= 12, (orientation, colour)
    assert np.abs(got.astype(int) - expected).mean() < 3


# -- modes ---------------------------------------------------------------------------------

def test_16_bit_grey_png_is_scaled_by_1_257_and_rounded(tmp_path: Path) -> None:
    values = np.array([[0, 1, 128, 129, 257, 385, 386, 1000],
                       [32767, 32768, 32896, 40000, 65278, 65279, 65534, 65535]], np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really stored as 16 bits
    # round(v / 257) in integers: never a tie, as 257 is odd
    expected = (values.astype(np.int64) * 2 + 257) // 514
    assert expected[0, 2] == 0 and expected[0, 3] == 1 and expected[1, -1] == 255
    got = pixels(path)
    for channel in range(3):
        np.testing.assert_array_equal(got[..., channel], expected)


@pytest.mark.parametrize(("values", "expected"), [
    ([[0.0, 0.2, 0.4], [0.8, 1.0, -0.5]], [[0, 51, 102], [204, 255, 0]]),  # 0..1: x 255
    ([[0.0, 10.4, 200.6], [255.0, 300.0, -5.0]], [[0, 10, 201], [255, 255, 0]]),  # 0..255
])
def test_float_images_as_grey(tmp_path: Path, values: list[list[float]],
                              expected: list[list[int]]) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.array(values, np.float32), "F").save(path)
    with Image.open(path) as check:
        assert check.mode == "F"
    got = pixels(path)
    for channel in range(3):
        np.testing.assert_array_equal(got[..., channel], np.array(expected))


def over_white(colour: int, alpha: int) -> int:
    """colour * a + white * (1 - a), a = alpha / 255, rounded half up, in integers."""
    return (2 * (colour * alpha + 255 * (255 - alpha)) + 255) // 510


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (200, 100, 50, 128)    # half transparent
    rgba[0, 1] = (10, 20, 30, 255)      # opaque
    rgba[0, 2] = (10, 20, 30, 0)        # fully transparent
    rgba[1, :] = (0, 0, 0, 64)
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    got = pixels(path)
    # by hand: 200 * 128/255 + 255 * 127/255 = 227.39, 100 -> 177.20, 50 -> 152.10
    assert tuple(got[0, 0]) == (227, 177, 152)
    assert tuple(got[0, 1]) == (10, 20, 30)
    assert tuple(got[0, 2]) == (255, 255, 255)
    assert tuple(got[1, 0]) == (191, 191, 191)  # 255 * 191/255
    for y in range(2):
        for x in range(3):
            r, g, b, a = (int(v) for v in rgba[y, x])
            assert tuple(got[y, x]) == (over_white(r, a), over_white(g, a), over_white(b, a))


def test_la_is_composited_over_white(tmp_path: Path) -> None:
    la = np.array([[[100, 64], [100, 255], [0, 128], [255, 0]]], np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    got = pixels(path)
    assert [int(v) for v in got[0, :, 0]] == [216, 100, 127, 255]  # 100*64/255 + 191 = 216.1
    for x in range(4):
        grey = over_white(int(la[0, x, 0]), int(la[0, x, 1]))
        assert tuple(got[0, x]) == (grey, grey, grey)


def test_palette_with_a_transparent_colour_shows_white_there(tmp_path: Path) -> None:
    image = Image.new("P", (4, 2))
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    image.putdata([0, 1, 2, 0, 1, 1, 2, 2])
    path = tmp_path / "p.png"
    image.save(path, transparency=0)
    with Image.open(path) as check:
        assert check.mode == "P" and check.info.get("transparency") == 0
    got = pixels(path)
    palette = {0: (255, 255, 255), 1: (255, 0, 0), 2: (0, 128, 0)}
    expected = np.array([[palette[i] for i in row] for row in [[0, 1, 2, 0], [1, 1, 2, 2]]])
    np.testing.assert_array_equal(got, expected)


def test_cmyk_is_converted_to_rgb(tmp_path: Path) -> None:
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255], [100, 50, 0, 20]]],
                    np.uint8)
    path = tmp_path / "cmyk.tif"
    Image.fromarray(cmyk, "CMYK").save(path)
    got = pixels(path)
    # R = 255 (1 - C/255)(1 - K/255), G and B likewise with M and Y, rounded half up
    ink = 255 - cmyk[..., :3].astype(int)
    key = 255 - cmyk[..., 3:].astype(int)
    expected = (2 * ink * key + 255) // 510
    np.testing.assert_array_equal(got, expected)
    assert tuple(got[0, 3]) == (143, 189, 235)  # 155 * 235/255 = 142.8, 205 * 235/255 = 188.9


def test_bilevel_is_black_and_white(tmp_path: Path) -> None:
    bits = np.array([[0, 1, 1, 0, 1], [1, 0, 0, 0, 1]], bool)
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    with Image.open(path) as check:
        assert check.mode == "1"
    got = pixels(path)
    for channel in range(3):
        np.testing.assert_array_equal(got[..., channel], bits.astype(np.uint8) * 255)


# -- files that are not (whole) images -----------------------------------------------------

@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file_is_one_line_that_says_truncated(tmp_path: Path, suffix: str) -> None:
    whole = tmp_path / f"whole{suffix}"
    Image.fromarray(PICTURE).save(whole)
    data = whole.read_bytes()
    half = tmp_path / f"half{suffix}"
    half.write_bytes(data[: len(data) // 2])
    assert images.load(whole).size == (40, 24)
    one_line_error(half, "truncated")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    one_line_error(path, "empty")


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    one_line_error(path, "not an image")


def test_folder_passed_as_a_file(tmp_path: Path) -> None:
    path = tmp_path / "folder.png"
    path.mkdir()
    one_line_error(path, "not a regular file")
    with pytest.raises(ImageError, match="not a regular file"):
        images.size(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "gone.jpg"
    one_line_error(path, "no such file")
    with pytest.raises(ImageError, match="no such file"):
        images.size(path)


@pytest.mark.parametrize("pixels_count", [150, 400])  # over the limit (a warning), over twice
def test_decompression_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            pixels_count: int) -> None:
    path = tmp_path / "bomb.png"
    Image.new("RGB", (pixels_count // 10, 10), (1, 2, 3)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    one_line_error(path, "larger than", "100 pixels")
    with pytest.raises(ImageError, match="decompression bomb"):
        images.size(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert images.load(path).size == (pixels_count // 10, 10)

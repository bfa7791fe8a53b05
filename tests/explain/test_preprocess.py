"""`Preprocess`: every resize mode puts a marked rectangle of the photo where `placement`
says, the placement boxes are the numbers worked out by hand below, and the pixels are
normalised as a numpy re-implementation says."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from xaigraph.demo import EFFICIENTNET_LITE
from xaigraph.errors import BadInputError
from xaigraph.preprocess import RESIZE_MODES, Placement, Preprocess

W, H = 120, 80                    # the photo
MARK = (44, 24, 76, 56)           # a bright rectangle inside every mode's view of it
BACKGROUND, BRIGHT, PAD = 40, 250, 140

# (mode, input (h, w), crop_fraction) -> (image_box, input_box), worked out by hand:
#   center_crop 0.5 on 32x32: photo wider, crop side int(0.5 * 80) = 40, left (120-40+1)//2 = 40,
#     top (80-40+1)//2 = 20.  On 24x40 (h x w): 120*24 < 80*40, so width-bound: 60 x 36,
#     left (120-60+1)//2 = 30, top (80-36+1)//2 = 22.
#   crop on 32x32: side 80, left (120-80)//2 = 20.  On 24x40: 120 x int(120*24/40) = 72,
#     top (80-72)//2 = 4.
#   letterbox on 32x32: s = min(32/120, 32/80) = 4/15, 32 x round(21.33) = 21, dy = (32-21)//2 = 5.
#     On 24x40: s = min(40/120, 24/80) = 0.3, 36 x 24, dx = (40-36)//2 = 2.
#   fit_to_window: the same sizes at the top-left.
EXPECTED = {
    ("stretch", (32, 32), 1.0): ((0, 0, 120, 80), (0, 0, 32, 32)),
    ("stretch", (24, 40), 1.0): ((0, 0, 120, 80), (0, 0, 40, 24)),
    ("center_crop", (32, 32), 0.5): ((40, 20, 80, 60), (0, 0, 32, 32)),
    ("center_crop", (24, 40), 0.5): ((30, 22, 90, 58), (0, 0, 40, 24)),
    ("center_crop", (32, 32), 1.0): ((20, 0, 100, 80), (0, 0, 32, 32)),
    ("crop", (32, 32), 1.0): ((20, 0, 100, 80), (0, 0, 32, 32)),
    ("crop", (24, 40), 1.0): ((0, 4, 120, 76), (0, 0, 40, 24)),
    ("letterbox", (32, 32), 1.0): ((0, 0, 120, 80), (0, 5, 32, 26)),
    ("letterbox", (24, 40), 1.0): ((0, 0, 120, 80), (2, 0, 38, 24)),
    ("fit_to_window", (32, 32), 1.0): ((0, 0, 120, 80), (0, 0, 32, 21)),
    ("fit_to_window", (24, 40), 1.0): ((0, 0, 120, 80), (0, 0, 36, 24)),
}


def marked_photo() -> Image.Image:
    pixels = np.full((H, W, 3), BACKGROUND, np.uint8)
    x0, y0, x1, y1 = MARK
    pixels[y0:y1, x0:x1] = BRIGHT
    return Image.fromarray(pixels)


def pre(mode: str, size: tuple[int, int], fraction: float, **kw: object) -> Preprocess:
    return Preprocess(size=size, resize=mode, crop_fraction=fraction, interpolation="nearest",
                      layout="NHWC", pad_value=PAD, **kw)  # type: ignore[arg-type]


def to_input(box: tuple[float, ...], placement: Placement) -> tuple[float, ...]:
    """`box` in photo pixels mapped by the placement's scale and shift."""
    il, it, ir, ib = placement.image_box
    ol, ot, or_, ob = placement.input_box
    sx, sy = (or_ - ol) / (ir - il), (ob - ot) / (ib - it)
    return (ol + (box[0] - il) * sx, ot + (box[1] - it) * sy,
            ol + (box[2] - il) * sx, ot + (box[3] - it) * sy)


def test_every_mode_is_covered() -> None:
    assert {mode for mode, _, _ in EXPECTED} == set(RESIZE_MODES)


@pytest.mark.parametrize(("mode", "size", "fraction"), list(EXPECTED))
def test_placement_boxes_by_hand(mode: str, size: tuple[int, int], fraction: float) -> None:
    image_box, input_box = EXPECTED[(mode, size, fraction)]
    got = pre(mode, size, fraction).placement(W, H)
    assert got == Placement(tuple(map(float, image_box)), tuple(map(float, input_box)))


@pytest.mark.parametrize(("mode", "size", "fraction"), list(EXPECTED))
def test_marked_rectangle_lands_where_placement_says(mode: str, size: tuple[int, int],
                                                     fraction: float) -> None:
    p = pre(mode, size, fraction)
    x = p.apply(marked_photo())
    assert x.shape == (1, size[0], size[1], 3) and x.dtype == np.float32
    channel = x[0, :, :, 0]
    rows, cols = np.nonzero(channel > (BACKGROUND + BRIGHT) / 2)
    measured = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    want = to_input(MARK, p.placement(W, H))
    assert np.max(np.abs(np.subtract(measured, want))) <= 1.0, (measured, want)
    # outside the content rectangle: the pad value; inside: none of it
    left, top, right, bottom = (int(v) for v in p.placement(W, H).input_box)
    inside = np.zeros(channel.shape, bool)
    inside[top:bottom, left:right] = True
    assert np.all(channel[~inside] == PAD)
    assert not np.any(channel[inside] == PAD)


def test_odd_margin_center_crop_rounds_up_crop_rounds_down() -> None:
    """On a square input `crop` is `center_crop` with fraction 1 but for where an odd
    margin's pixel goes: 121 - 80 = 41 -> left 21 (center_crop), 20 (crop, Model API)."""
    assert pre("center_crop", (32, 32), 1.0).crop_box(121, 80) == (21, 0, 101, 80)
    assert pre("crop", (32, 32), 1.0).crop_box(121, 80) == (20, 0, 100, 80)
    assert pre("crop", (32, 32), 1.0).crop_box(80, 121) == (0, 20, 80, 100)


def test_demo_crop_unchanged() -> None:
    """int(0.875 * 300) = 262; left (451 - 262 + 1) // 2 = 95; top (300 - 262 + 1) // 2 = 19."""
    assert EFFICIENTNET_LITE.crop_box(451, 300) == (95, 19, 357, 281)
    assert EFFICIENTNET_LITE.placement(451, 300) == Placement((95.0, 19.0, 357.0, 281.0),
                                                              (0.0, 0.0, 224.0, 224.0))


@pytest.mark.parametrize("channels", ["RGB", "BGR", "GRAY"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_normalisation_against_numpy(channels: str, layout: str) -> None:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (10, 14, 3), dtype=np.uint8))
    p = Preprocess(size=(10, 14), resize="stretch", scale=1 / 255, mean=(0.4, 0.5, 0.6),
                   std=(0.2, 0.25, 0.3), channels=channels, layout=layout)
    got = p.apply(photo)
    if channels == "GRAY":
        pixels = np.asarray(photo.convert("L"), np.float64)[..., None]
        want = (pixels / 255 - 0.4) / 0.2
    else:
        pixels = np.asarray(photo, np.float64)
        if channels == "BGR":
            pixels = pixels[..., ::-1]
        want = (pixels / 255 - np.array([0.4, 0.5, 0.6])) / np.array([0.2, 0.25, 0.3])
    if layout == "NCHW":
        want = want.transpose(2, 0, 1)
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)


def test_integer_input_is_cast_with_padding() -> None:
    photo = Image.new("RGB", (20, 10), (7, 8, 9))
    x = Preprocess(size=(20, 20), resize="letterbox", dtype="uint8", pad_value=3).apply(photo)
    assert x.dtype == np.uint8 and x.shape == (1, 3, 20, 20)
    assert x[0, :, :5].max() == 3 and x[0, :, 15:].max() == 3
    assert list(x[0, :, 10, 10]) == [7, 8, 9]


def test_from_dict_inverts_as_dict_through_json() -> None:
    p = Preprocess(size=(24, 40), resize="letterbox", crop_fraction=0.5, interpolation="bicubic",
                   scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                   channels="BGR", layout="NHWC", dtype="float16", pad_value=114)
    assert Preprocess.from_dict(p.as_dict()) == p
    assert Preprocess.from_dict(json.loads(json.dumps(p.as_dict()))) == p
    assert Preprocess.from_dict({}) == Preprocess()


@pytest.mark.parametrize(("data", "fragment"), [
    ({"colour": "RGB"}, "unknown field 'colour'"),
    ({"size": [1]}, "'size'"),
    ({"scale": "x"}, "'scale'"),
    ({"resize": "zoom"}, "resize must be one of"),
    ({"pad_value": 300}, "pad_value"),
])
def test_from_dict_errors(data: dict, fragment: str) -> None:
    with pytest.raises(BadInputError, match=fragment) as info:
        Preprocess.from_dict(data)
    assert "\n" not in str(info.value)

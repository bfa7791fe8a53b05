"""render: the map onto the original (resampling by placement), colour maps, overlays.

References are written one pixel at a time from the definitions in the module's docstring (float64,
independent of Pillow, which render uses); the resampled values agree to 1e-6 (render works in
float32), the colours exactly, the blend exactly but where float32 rounding can matter.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from xaigraph.explain import render
from xaigraph.overlay import colorize


@dataclass(frozen=True)
class P:
    image_box: tuple[float, float, float, float]
    input_box: tuple[float, float, float, float]


def reference_resample(m: np.ndarray, p: P, width: int, height: int,
                       input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One pixel at a time: its centre to input pixels, to map cells, bilinear, clamped."""
    h, w = m.shape
    lft, t, r, b = p.image_box
    il, it, ir, ib = p.input_box
    out = np.zeros((height, width))
    seen = np.zeros((height, width), dtype=bool)
    for y in range(height):
        for x in range(width):
            cx, cy = x + 0.5, y + 0.5
            if not (lft <= cx < r and t <= cy < b):
                continue
            seen[y, x] = True
            ux = il + (cx - lft) / (r - lft) * (ir - il)
            uy = it + (cy - t) / (b - t) * (ib - it)
            sx = min(max(ux * w / input_size[1] - 0.5, 0), w - 1)
            sy = min(max(uy * h / input_size[0] - 0.5, 0), h - 1)
            x0, y0 = math.floor(sx), math.floor(sy)
            x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
            fx, fy = sx - x0, sy - y0
            out[y, x] = ((1 - fy) * ((1 - fx) * m[y0, x0] + fx * m[y0, x1])
                         + fy * ((1 - fx) * m[y1, x0] + fx * m[y1, x1]))
    return out, seen


PLACEMENTS = {
    "stretch": P((0, 0, 23, 17), (0, 0, 16, 16)),
    "center_crop": P((3, 0, 20, 17), (0, 0, 16, 16)),
    "letterbox": P((0, 0, 23, 17), (0, 2.5, 16, 13.5)),
    "fractional": P((1.25, 0.5, 21.75, 16.0), (0.5, 0, 15.5, 16)),
}


@pytest.mark.parametrize("cells", [(4, 5), (40, 50)])  # Pillow's resize; numpy's (finer map)
@pytest.mark.parametrize("name", list(PLACEMENTS))
def test_resample_matches_pixel_by_pixel_reference(name: str, cells: tuple[int, int]) -> None:
    m = np.random.default_rng(1).random(cells)
    values, seen = render.resample(m, PLACEMENTS[name], 23, 17, (16, 16))
    ref, ref_seen = reference_resample(m, PLACEMENTS[name], 23, 17, (16, 16))
    np.testing.assert_array_equal(seen, ref_seen)
    np.testing.assert_allclose(values[seen], ref[seen], atol=1e-6)  # float32 against float64
    assert not values[~seen].any()
    if name == "center_crop":
        assert not seen[:, :3].any() and not seen[:, 20:].any() and seen[:, 3:20].all()


def test_jet_is_xaigraphs_colorize_and_cubehelix_its_formula() -> None:
    np.testing.assert_array_equal(render.lookup("jet"),
                                  colorize(np.arange(256, dtype=np.uint8)[None])[0])
    table = render.lookup("cubehelix").astype(np.float64) / 255
    # Green 2011: black to white, and the luminance rises with the value
    np.testing.assert_array_equal(table[0], [0, 0, 0])
    np.testing.assert_array_equal(table[-1], [1, 1, 1])
    i = 128  # one entry, the formula written out once more by hand
    lam_i = i / 255
    phi_i = 2 * math.pi * (0.5 / 3 - 1.5 * lam_i)
    a_i = lam_i * (1 - lam_i) / 2
    mid = [lam_i + a_i * (-0.14861 * math.cos(phi_i) + 1.78277 * math.sin(phi_i)),
           lam_i + a_i * (-0.29227 * math.cos(phi_i) - 0.90649 * math.sin(phi_i)),
           lam_i + a_i * (1.97294 * math.cos(phi_i))]
    np.testing.assert_allclose(table[i], np.clip(mid, 0, 1), atol=0.5 / 255)
    luminance = table @ np.array([0.30, 0.59, 0.11])  # Green's weights
    assert np.all(np.diff(luminance) > -1.5 / 255)  # monotonic up to u8 rounding
    assert luminance[-1] - luminance[0] == pytest.approx(1.0)


def test_unknown_colormap_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown colormap"):
        render.lookup("rainbow")


@pytest.mark.parametrize("colormap", render.COLORMAPS)
def test_colour_map_and_blend_per_pixel(colormap: str) -> None:
    rng = np.random.default_rng(2)
    m = rng.random((4, 4)).astype(np.float32)
    p = PLACEMENTS["center_crop"]
    rgba = render.colour_map(m, p, 23, 17, (16, 16), colormap)
    ref, seen = reference_resample(m.astype(np.float64), p, 23, 17, (16, 16))
    table = render.lookup(colormap)
    photo = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    coloured = render.colour(m, p, 23, 17, (16, 16), colormap)
    blended = np.asarray(render.overlay(Image.fromarray(photo), coloured, 0.3))
    for y in range(17):
        for x in range(23):
            if seen[y, x]:
                v = ref[y, x] * 255
                near = {int(np.floor(v + 0.5))} | ({int(np.floor(v)), int(np.ceil(v))}
                                                  if abs(v % 1 - 0.5) < 1e-9 else set())
                assert rgba[y, x, 3] == 255
                assert any((rgba[y, x, :3] == table[i]).all() for i in near), (y, x)
                colour = rgba[y, x, :3].astype(np.float64)
                exact = photo[y, x] + 0.3 * (colour - photo[y, x])  # Pillow's blend, floored
                # float32 may put a value that is an integer in exact arithmetic a hair below
                near_int = np.abs(exact - np.round(exact)) < 1e-4
                ok = (blended[y, x] == np.floor(exact)) | (
                    near_int & (blended[y, x] == np.round(exact) - 1))
                assert ok.all(), (y, x, blended[y, x], exact)
            else:
                np.testing.assert_array_equal(rgba[y, x], [0, 0, 0, 0])
                want = np.floor(render.DIM * photo[y, x].astype(np.float64) + 0.5)
                np.testing.assert_array_equal(blended[y, x], want)
    np.testing.assert_array_equal(coloured.rgba(), rgba)
    np.testing.assert_array_equal(np.asarray(render.overlay(Image.fromarray(photo), coloured,
                                                            0.3)), blended)


@pytest.mark.parametrize("shape", [(17, 23), (17, 23, 3), (17, 23, 4), (1, 1), (5, 1, 3)])
def test_encode_png_reads_back_as_written(shape: tuple[int, ...]) -> None:
    a = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    for photo in (False, True):
        with Image.open(io.BytesIO(render.encode_png(a, photo=photo))) as im:
            assert im.mode == ("L" if a.ndim == 2 else {3: "RGB", 4: "RGBA"}[a.shape[2]])
            np.testing.assert_array_equal(np.asarray(im), a)


def test_map_file_is_a_palette_png_when_all_is_seen_else_rgba() -> None:
    m = np.random.default_rng(4).random((4, 4))
    for name, mode in (("stretch", "P"), ("letterbox", "P"), ("center_crop", "RGBA")):
        coloured = render.colour(m, PLACEMENTS[name], 23, 17, (16, 16), "cubehelix")
        with Image.open(io.BytesIO(coloured.png())) as im:
            assert im.mode == mode and im.size == (23, 17)
            if mode == "P":
                np.testing.assert_array_equal(np.asarray(im), coloured.index)
                np.testing.assert_array_equal(
                    np.frombuffer(im.palette.tobytes(), np.uint8).reshape(-1, 3),
                    render.lookup("cubehelix"))
            np.testing.assert_array_equal(np.asarray(im.convert("RGBA")), coloured.rgba())

"""Preprocessing as data: how a photo becomes a model input.

A `Preprocess` says the input size, how the photo is cropped or fitted and resized, the
normalisation (`scale`, then mean/std per channel), the channel order, the layout and the
element type; `Preprocess.apply` turns one PIL image into a batch of one and
`Preprocess.placement` says where the photo lies in that input (docs/runtime.md,
"Preprocessing"). The demo's EfficientNet-Lite values are one instance
(`xaigraph.demo.EFFICIENTNET_LITE`); `xaigraph.model_info` reads and writes these values in a
model's metadata.

Resize modes (`w`x`h` the input, `W`x`H` the photo):

- `stretch`: the whole photo resized to the input (the Model API's `standard`).
- `center_crop`: the centred rectangle of the input's aspect ratio, `crop_fraction` of the
  largest one that fits the photo (on a square input: the centred square of `crop_fraction`
  of the short side), resized to the input. An odd margin puts the extra pixel on the left
  (top), as TensorFlow's and torchvision's centre crops do.
- `crop`: the OpenVINO Model API's `crop`: the largest centred rectangle of the input's aspect
  ratio, resized to the input; the same as resizing the shorter side to the input and
  cropping the centre. On a square input it is `center_crop` with `crop_fraction` 1 except
  for an odd margin, whose extra pixel the Model API puts on the right (bottom).
- `letterbox`: the whole photo resized by `s = min(w / W, h / H)` to
  `round(W * s)` x `round(H * s)` (round half to even), centred (offsets rounded down),
  the rest `pad_value` (the Model API's `fit_to_window_letterbox`).
- `fit_to_window`: the same resize, the content at the top-left, padded right and bottom
  (the Model API's `fit_to_window`).

Padding is done on the 0..255 pixels, before normalisation, as the Model API does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from PIL import Image

from xaigraph.errors import BadInputError

__all__ = ["CHANNELS", "INTERPOLATIONS", "LAYOUTS", "MAX_SIDE", "RESIZE_MODES", "Placement",
           "Preprocess"]

_RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
INTERPOLATIONS = tuple(_RESAMPLING)
RESIZE_MODES = ("stretch", "center_crop", "crop", "letterbox", "fit_to_window")
MAX_SIDE = 8192  # an input's height and width at most (one 8192 x 8192 float input: 768 MiB)
CHANNELS = ("RGB", "BGR", "GRAY")
LAYOUTS = ("NCHW", "NHWC")
_PAD_MODES = ("letterbox", "fit_to_window")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Placement:
    """Where a photo lies in the model input.

    `image_box`: the part of the original the model sees (left, top, right, bottom), in
    original pixels. `input_box`: where that part lies in the model input, in input pixels.
    Pixel edges, not centres: a box (0, 0, 4, 4) covers pixels 0..3. The map from one box to
    the other is a scale and a shift per axis.
    """

    image_box: Box
    input_box: Box


@dataclass(frozen=True)
class Preprocess:
    """One photo to one model input `[1, C, H, W]` (or `[1, H, W, C]`).

    - `size`: (height, width) of the input.
    - `resize`: one of `RESIZE_MODES` (see the module docstring); `crop_fraction` is used by
      `center_crop` only, `pad_value` (0..255, a pixel value) by `letterbox` and
      `fit_to_window` only.
    - `interpolation`: "nearest", "bilinear", "bicubic" or "lanczos".
    - `scale`, `mean`, `std`: the input is `(pixel * scale - mean) / std`, per channel in the
      order of `channels`; pixels are 0..255.
    - `channels`: "RGB", "BGR" or "GRAY" (one channel, the photo's luminance; `mean[0]` and
      `std[0]` apply); `layout`: "NCHW" or "NHWC"; `dtype`: numpy's name of the element type
      (for an integer type, the pixels are cast without normalisation).
    """

    size: tuple[int, int] = (224, 224)
    resize: str = "center_crop"
    crop_fraction: float = 1.0
    interpolation: str = "bilinear"
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channels: str = "RGB"
    layout: str = "NCHW"
    dtype: str = "float32"
    pad_value: int = 0

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, "
                             f"not '{self.resize}'")
        if self.interpolation not in _RESAMPLING:
            raise ValueError(f"unknown interpolation '{self.interpolation}'")
        if self.channels not in CHANNELS or self.layout not in LAYOUTS:
            raise ValueError(f"unsupported channels/layout {self.channels}/{self.layout}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be two positive integers, not {self.size}")
        if max(self.size) > MAX_SIDE:
            raise ValueError(f"size {self.size[0]}x{self.size[1]}: height and width must be "
                             f"at most {MAX_SIDE}")
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], not {self.crop_fraction}")
        if not 0 <= self.pad_value <= 255:
            raise ValueError(f"pad_value must be in 0..255, not {self.pad_value}")
        if len(self.mean) != 3 or len(self.std) != 3 or 0.0 in self.std:
            raise ValueError(f"mean and std must be three numbers, std not 0: "
                             f"{self.mean}, {self.std}")

    @classmethod
    def imagenet(cls, size: int = 224) -> Preprocess:
        """torchvision's ImageNet evaluation transform: the shorter side resized to
        size / 0.875, the centre `size` x `size` crop, pixels / 255, ImageNet's mean and std
        (what torchvision's and most timm classifiers were trained with)."""
        return cls(size=(size, size), resize="center_crop", crop_fraction=0.875,
                   scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

    # -- geometry ------------------------------------------------------------------------

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the part of a `width`x`height` photo the model
        sees, in whole pixels: the crop rectangle for `center_crop` and `crop`, the whole
        photo otherwise."""
        h, w = self.size
        if self.resize not in ("center_crop", "crop"):
            return 0, 0, width, height
        fraction = self.crop_fraction if self.resize == "center_crop" else 1.0
        if width * h >= height * w:  # the photo is wider than the input: full height
            ch = int(fraction * height)
            cw = int(fraction * height * w / h)
        else:
            cw = int(fraction * width)
            ch = int(fraction * width * h / w)
        cw, ch = min(max(cw, 1), width), min(max(ch, 1), height)
        up = 1 if self.resize == "center_crop" else 0  # where an odd margin's pixel goes
        left = (width - cw + up) // 2
        top = (height - ch + up) // 2
        return left, top, left + cw, top + ch

    def content_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in input pixels of the photo's content: the whole
        input, or the fitted rectangle of `letterbox` / `fit_to_window`."""
        h, w = self.size
        if self.resize not in _PAD_MODES:
            return 0, 0, w, h
        s = min(w / width, h / height)
        nw = min(max(round(width * s), 1), w)
        nh = min(max(round(height * s), 1), h)
        if self.resize == "fit_to_window":
            return 0, 0, nw, nh
        dx, dy = (w - nw) // 2, (h - nh) // 2
        return dx, dy, dx + nw, dy + nh

    def placement(self, width: int, height: int) -> Placement:
        """Where a `width`x`height` photo lies in the model input (docs/runtime.md)."""
        image = tuple(float(v) for v in self.crop_box(width, height))
        content = tuple(float(v) for v in self.content_box(width, height))
        return Placement(image_box=image, input_box=content)  # type: ignore[arg-type]

    # -- pixels --------------------------------------------------------------------------

    def apply(self, image: Image.Image) -> np.ndarray:
        """The model input for one photo, a C-contiguous batch of one."""
        mode = "L" if self.channels == "GRAY" else "RGB"
        photo = image.convert(mode)
        height, width = self.size
        resample = _RESAMPLING[self.interpolation]
        if self.resize in _PAD_MODES:
            left, top, right, bottom = self.content_box(*photo.size)
            content = photo.resize((right - left, bottom - top), resample)
            fill: int | tuple[int, int, int] = (
                self.pad_value if mode == "L" else (self.pad_value,) * 3)
            resized = Image.new(mode, (width, height), fill)
            resized.paste(content, (left, top))
        else:
            resized = photo.resize((width, height), resample, box=self.crop_box(*photo.size))
        dtype = np.dtype(self.dtype)
        pixels = np.asarray(resized)
        if mode == "L":
            pixels = pixels[..., None]
        elif self.channels == "BGR":
            pixels = pixels[..., ::-1]
        if np.issubdtype(dtype, np.floating):
            n = pixels.shape[-1]
            x = pixels.astype(dtype)
            if self.scale != 1.0:
                x = x * dtype.type(self.scale)
            x = (x - np.asarray(self.mean[:n], dtype)) / np.asarray(self.std[:n], dtype)
        else:
            x = pixels.astype(dtype)
        if self.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None])

    # -- as data -------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain data (tuples for the pairs and triples); `from_dict` inverts
        it, also after a JSON round trip."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocess:
        """The `Preprocess` of `as_dict`'s output (lists accepted for tuples; missing
        fields take their defaults). An unknown field or a bad value is `BadInputError`
        naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadInputError(f"preprocessing: unknown field '{unknown[0]}'")
        values: dict[str, Any] = {}
        for key, value in data.items():
            try:
                if key == "size":
                    values[key] = (int(value[0]), int(value[1]))
                    if len(value) != 2:
                        raise ValueError
                elif key in ("mean", "std"):
                    values[key] = tuple(float(v) for v in value)
                elif key in ("crop_fraction", "scale"):
                    values[key] = float(value)
                elif key == "pad_value":
                    values[key] = int(value)
                else:
                    values[key] = str(value)
            except (TypeError, ValueError, IndexError) as exc:
                raise BadInputError(f"preprocessing: bad value for '{key}': {value!r}") from exc
        try:
            return cls(**values)
        except ValueError as exc:
            raise BadInputError(f"preprocessing: {exc}") from exc

"""Preprocessing as data: how a photo becomes a model input.

A `Preprocess` says the input size, how the photo is cropped and resized, the normalisation
(`scale`, then mean/std per channel), the channel order, the layout and the element type;
`Preprocess.apply` turns one PIL image into a batch of one. The demo's EfficientNet-Lite
values are one instance (`xaigraph.demo.EFFICIENTNET_LITE`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["Preprocess"]

_RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class Preprocess:
    """One photo to one model input `[1, C, H, W]` (or `[1, H, W, C]`).

    - `size`: (height, width) of the input.
    - `resize`: "center_crop" crops a centred square of `crop_fraction` of the photo's short
      side and resizes it to `size`; "stretch" resizes the whole photo to `size`.
    - `interpolation`: "nearest", "bilinear", "bicubic" or "lanczos".
    - `scale`, `mean`, `std`: the input is `(pixel * scale - mean) / std`, per channel in the
      order of `channels`; pixels are 0..255.
    - `channels`: "RGB" or "BGR"; `layout`: "NCHW" or "NHWC"; `dtype`: numpy's name of the
      element type (for an integer type, the pixels are cast without normalisation).
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

    def __post_init__(self) -> None:
        if self.resize not in ("center_crop", "stretch"):
            raise ValueError(f"resize must be 'center_crop' or 'stretch', not '{self.resize}'")
        if self.interpolation not in _RESAMPLING:
            raise ValueError(f"unknown interpolation '{self.interpolation}'")
        if self.channels not in ("RGB", "BGR") or self.layout not in ("NCHW", "NHWC"):
            raise ValueError(f"unsupported channels/layout {self.channels}/{self.layout}")

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the part of a `width`x`height` photo the model
        sees: the whole photo, or the centred square of `crop_fraction` of its short side."""
        if self.resize == "stretch":
            return 0, 0, width, height
        side = max(int(self.crop_fraction * min(width, height)), 1)
        left = (width - side + 1) // 2
        top = (height - side + 1) // 2
        return left, top, left + side, top + side

    def apply(self, image: Image.Image) -> np.ndarray:
        """The model input for one photo, a C-contiguous batch of one."""
        rgb = image.convert("RGB")
        height, width = self.size
        resized = rgb.resize((width, height), _RESAMPLING[self.interpolation],
                             box=self.crop_box(*rgb.size))
        dtype = np.dtype(self.dtype)
        pixels = np.asarray(resized)
        if self.channels == "BGR":
            pixels = pixels[..., ::-1]
        if np.issubdtype(dtype, np.floating):
            x = pixels.astype(dtype)
            if self.scale != 1.0:
                x = x * dtype.type(self.scale)
            x = (x - np.asarray(self.mean, dtype)) / np.asarray(self.std, dtype)
        else:
            x = pixels.astype(dtype)
        if self.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

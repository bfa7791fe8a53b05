"""One item read and preprocessed (`decode`), in a worker thread or a Ray task: a
`Decoded` with the original image, the model input and the placement, or the one-line reason
it could not be read (never an exception)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from xaigraph.errors import XaiGraphError
from xaigraph.explain import images
from xaigraph.preprocess import Preprocess

__all__ = ["Decoded", "decode"]


@dataclass
class Decoded:
    """One item decoded and preprocessed (or why it could not be)."""

    item: Any  # xaigraph.explain.inputs.Item
    image: Any = None  # the original as an RGB PIL image
    input: np.ndarray | None = None  # [C, H, W] (or [H, W, C]): one model input
    placement: Any = None  # Preprocess.placement of the original
    error: str | None = None
    seconds: float = 0.0

    @property
    def width(self) -> int:
        return int(self.image.size[0]) if self.image is not None else 0

    @property
    def height(self) -> int:
        return int(self.image.size[1]) if self.image is not None else 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def decode(item: Any, preprocess: Preprocess) -> Decoded:
    """Read and preprocess one item; a file that is not a readable image gives a `Decoded`
    with `error` (one line) instead of an exception."""

    start = time.perf_counter()
    try:
        image = item.image if getattr(item, "image", None) is not None else images.load(
            item.path)
        x = preprocess.apply(image)[0]
        placement = preprocess.placement(*image.size)
    except (XaiGraphError, OSError, ValueError, SyntaxError, MemoryError) as exc:
        message = _one_line(exc)
        if not isinstance(exc, XaiGraphError):
            message = f"{item.path}: cannot read the image: {message}"
        return Decoded(item, error=message, seconds=time.perf_counter() - start)
    except Exception as exc:  # Pillow raises many types for broken files
        return Decoded(item, error=f"{item.path}: cannot read the image: {_one_line(exc)}",
                       seconds=time.perf_counter() - start)
    return Decoded(item, image, x, placement, seconds=time.perf_counter() - start)

"""Sample inputs for validation (`insert --sample`): a `.npy` array or a photo.

A file is recognised by its content, not its suffix: numpy's `.npy` magic, a zip (`.npz`,
refused with the reason), else anything Pillow opens (PNG, JPEG, BMP, ...). A photo becomes
a batch for the model's one input with the preprocessing given (the preprocessing flags),
else the one the model records (`xaigraph.model_info.read`: the OpenVINO Model API's
`model_info` keys, e.g. `mean_values` / `scale_values`: input = (pixel - mean) / scale on
0..255 pixels, and a recorded `resize_type`; resized to the input size when none is
recorded); else resized to the input size and scaled to [0, 1]. `Sample.how` says which, and
the insert report lists it.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xaigraph import model_info
from xaigraph.backends import Backend
from xaigraph.errors import BadInputError, SampleError, file_error
from xaigraph.preprocess import Preprocess

__all__ = ["WHAT_A_SAMPLE_IS", "Sample", "image_input", "read_samples"]

WHAT_A_SAMPLE_IS = ("a sample must be one array saved with numpy.save (.npy) or an image "
                    "(PNG, JPEG, BMP, ...)")
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class Sample:
    path: Path
    array: np.ndarray
    how: str  # "array" or how the photo was made into an input

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "shape": list(self.array.shape), "how": self.how}


def read_samples(paths: list[Path] | tuple[Path, ...], backend: Backend | None = None,
                 model: Any = None, preprocess: Preprocess | None = None) -> list[Sample]:
    """Read each sample; photos need the model (its input's shape, type, preprocessing),
    and use `preprocess` instead of the model's when it is given."""
    return [_read(Path(p), backend, model, preprocess) for p in paths]


def image_input(name: str, image: Any, backend: Backend, model: Any) -> np.ndarray:
    """A PIL `image` made into the input of `model` as a photo given as a sample is (the
    model's recorded preprocessing, else resized and scaled to [0, 1]); `SampleError` when
    the model does not take an image. `name` names it in messages."""
    return _from_image(Path(name), image, backend, model, None).array


def _read(path: Path, backend: Backend | None, model: Any,
          preprocess: Preprocess | None = None) -> Sample:
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block, a device never end
            raise SampleError(f"sample {path} is not a regular file; {WHAT_A_SAMPLE_IS}")
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise file_error(exc, path, "cannot read sample") from exc
    if head.startswith(_NPY_MAGIC):
        return Sample(path, _read_npy(path), "array")
    if head.startswith(_ZIP_MAGIC):
        raise SampleError(f"sample {path} is an .npz archive (several arrays); "
                          f"{WHAT_A_SAMPLE_IS}")
    image = _open_image(path)
    if backend is None or model is None:
        raise SampleError(f"sample {path} is an image; reading it needs the model")
    return _from_image(path, image, backend, model, preprocess)


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise file_error(exc, path, "cannot read sample") from exc
    except ValueError as exc:
        why = ("it holds Python objects (pickled data)" if "pickle" in str(exc)
               else f"it is not a valid .npy file ({str(exc).splitlines()[0]})")
        raise SampleError(f"sample {path}: {why}; {WHAT_A_SAMPLE_IS}") from exc
    if not isinstance(array, np.ndarray) or not (
            np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise SampleError(f"sample {path} holds {getattr(array, 'dtype', '?')} values, not "
                          "numbers")
    return array


def _open_image(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except Image.DecompressionBombError as exc:
        raise SampleError(f"sample {path}: the image has more than {Image.MAX_IMAGE_PIXELS} "
                          "pixels (a decompression bomb?)") from exc
    except (UnidentifiedImageError, SyntaxError, ValueError, EOFError) as exc:
        raise SampleError(f"sample {path} is neither a .npy array nor an image Pillow can "
                          f"read; {WHAT_A_SAMPLE_IS}") from exc
    except OSError as exc:  # Pillow raises OSError for a truncated or broken image
        raise SampleError(f"sample {path}: cannot decode the image ({exc}); "
                          f"{WHAT_A_SAMPLE_IS}") from exc
    return image


def _from_image(path: Path, image: Any, backend: Backend, model: Any,
                given: Preprocess | None) -> Sample:
    ports = backend.inputs(model)
    dims = ports[0].dims if len(ports) == 1 else None
    try:
        info = model_info.read(model) if dims is not None else None
    except BadInputError as exc:
        raise SampleError(f"sample {path}: {exc}; give a .npy sample") from exc
    if info is None or info.input is None or info.input.channels != "RGB":
        shape = ports[0].shape if len(ports) == 1 else f"{len(ports)} inputs"
        raise SampleError(f"sample {path} is an image, but the model does not take one "
                          f"[N, 3, H, W] or [N, H, W, 3] input (it takes {shape}); give a .npy")
    size = info.input.size
    if given is not None:
        pre, how = given, (f"image made into a {given.size[0]}x{given.size[1]} input with the "
                           f"preprocessing flags ({_describe(given)})")
    elif info.preprocess is not None:
        pre = info.preprocess
        mean = [m / pre.scale for m in pre.mean]
        scale = [s / pre.scale for s in pre.std]
        how = (f"image {_resized(pre)} to {size[0]}x{size[1]}, (pixel - mean) / scale with the "
               f"model's model_info mean {mean} and scale {scale}")
    else:
        dtype = np.dtype(info.input.dtype)
        float_in = np.issubdtype(dtype, np.floating)
        pre = Preprocess(size=size, resize="stretch", scale=1 / 255 if float_in else 1.0,
                         layout=info.input.layout, dtype=dtype.name)
        how = (f"image resized to {size[0]}x{size[1]}"
               + (", scaled to [0, 1]" if float_in else f", pixels as {dtype.name}")
               + " (the model records no preprocessing)")
    batch = pre.apply(image)
    if dims is not None and dims[0] is not None and dims[0] > 1:
        batch = np.repeat(batch, dims[0], axis=0)
    return Sample(path, batch, how)


def _resized(pre: Preprocess) -> str:
    return {"stretch": "resized", "center_crop": f"centre-cropped ({pre.crop_fraction:g}) and "
            "resized", "crop": "centre-cropped and resized"}.get(pre.resize,
                                                                   f"{pre.resize}-resized")


def _describe(pre: Preprocess) -> str:
    return (f"{pre.resize}, {pre.interpolation}, scale {pre.scale:g}, mean {list(pre.mean)}, "
            f"std {list(pre.std)}, {pre.channels}, {pre.layout}, {pre.dtype}")

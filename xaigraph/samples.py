"""Sample inputs for validation (`insert --sample`): a `.npy` array or a photo.

A file is recognised by its content, not its suffix: numpy's `.npy` magic, a zip (`.npz`,
refused with the reason), else anything Pillow opens (PNG, JPEG, BMP, ...). A photo becomes
a batch for the model's one input with the preprocessing the model records (OpenVINO
`rt_info` `model_info` `mean_values` / `scale_values`, or the same keys as ONNX
`metadata_props` `model_info.mean_values` / `model_info.scale_values`: input = (pixel -
mean) / scale on 0..255 pixels); without it, resized to the input size and scaled to [0, 1].
`Sample.how` says which, and the insert report lists it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xaigraph.backends import Backend
from xaigraph.errors import SampleError, file_error
from xaigraph.preprocess import Preprocess

__all__ = ["WHAT_A_SAMPLE_IS", "Sample", "model_preprocess", "read_samples"]

WHAT_A_SAMPLE_IS = ("a sample must be one array saved with numpy.save (.npy) or an image "
                    "(PNG, JPEG, BMP, ...)")
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_DEFAULT_SIZE = 224  # a dynamic spatial dim, as validation probes it


@dataclass
class Sample:
    path: Path
    array: np.ndarray
    how: str  # "array" or how the photo was made into an input

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "shape": list(self.array.shape), "how": self.how}


def read_samples(paths: list[Path] | tuple[Path, ...], backend: Backend | None = None,
                 model: Any = None) -> list[Sample]:
    """Read each sample; photos need the model (its input's shape, type, preprocessing)."""
    return [_read(Path(p), backend, model) for p in paths]


def _read(path: Path, backend: Backend | None, model: Any) -> Sample:
    try:
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
    return _from_image(path, image, backend, model)


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
    except (UnidentifiedImageError, SyntaxError, ValueError, EOFError) as exc:
        raise SampleError(f"sample {path} is neither a .npy array nor an image Pillow can "
                          f"read; {WHAT_A_SAMPLE_IS}") from exc
    except OSError as exc:  # Pillow raises OSError for a truncated or broken image
        raise SampleError(f"sample {path}: cannot decode the image ({exc}); "
                          f"{WHAT_A_SAMPLE_IS}") from exc
    return image


def _from_image(path: Path, image: Any, backend: Backend, model: Any) -> Sample:
    ports = backend.inputs(model)
    dims = ports[0].dims if len(ports) == 1 else None
    if dims is None or len(dims) != 4 or 3 not in (dims[1], dims[3]):
        shape = ports[0].shape if len(ports) == 1 else f"{len(ports)} inputs"
        raise SampleError(f"sample {path} is an image, but the model does not take one "
                          f"[N, 3, H, W] or [N, H, W, 3] input (it takes {shape}); give a .npy")
    layout = "NCHW" if dims[1] == 3 else "NHWC"
    hw = dims[2:] if layout == "NCHW" else dims[1:3]
    size = (hw[0] or _DEFAULT_SIZE, hw[1] or _DEFAULT_SIZE)
    dtype = backend.input_dtypes(model)[0]
    recorded = model_preprocess(backend, model)
    if recorded is not None:
        mean, scale = recorded
        pre = Preprocess(size=size, resize="stretch", mean=mean, std=scale, layout=layout,
                         dtype=dtype.name)
        how = (f"image resized to {size[0]}x{size[1]}, (pixel - mean) / scale with the "
               f"model's model_info mean {list(mean)} and scale {list(scale)}")
    else:
        float_in = np.issubdtype(dtype, np.floating)
        pre = Preprocess(size=size, resize="stretch", scale=1 / 255 if float_in else 1.0,
                         layout=layout, dtype=dtype.name)
        how = (f"image resized to {size[0]}x{size[1]}"
               + (", scaled to [0, 1]" if float_in else f", pixels as {dtype.name}")
               + " (the model records no preprocessing)")
    batch = pre.apply(image)
    if dims[0] is not None and dims[0] > 1:
        batch = np.repeat(batch, dims[0], axis=0)
    return Sample(path, batch, how)


def model_preprocess(backend: Backend, model: Any) -> tuple[tuple[float, float, float],
                                                            tuple[float, float, float]] | None:
    """(mean, scale) per RGB channel from the model's `model_info`, or None."""
    if backend.name == "ir":
        def get(key: str) -> str | None:  # an IR's own, or an ONNX file's read by OpenVINO
            for path in (["model_info", key], ["framework", f"model_info.{key}"]):
                if model.has_rt_info(path):
                    return str(model.get_rt_info(path).astype(str))
            return None
    else:
        props = {p.key: p.value for p in model.metadata_props}

        def get(key: str) -> str | None:
            return props.get(f"model_info.{key}")
    mean, scale = get("mean_values"), get("scale_values")
    if mean is None and scale is None:
        return None
    return _three(mean, 0.0), _three(scale, 1.0)


def _three(text: str | None, default: float) -> tuple[float, float, float]:
    try:
        values = [float(v) for v in (text or "").replace(",", " ").split()] or [default]
    except ValueError:
        values = [default]
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or (default == 1.0 and 0.0 in values):
        raise SampleError(f"the model's model_info holds unusable preprocessing values "
                          f"'{text}'; give a .npy sample")
    return values[0], values[1], values[2]

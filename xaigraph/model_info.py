"""Preprocessing, labels and task as a model records them (`model_info` metadata).

Where the values live (docs/runtime.md, "Preprocessing"):

- OpenVINO `ov.Model`: `rt_info['model_info'][KEY]` (what the OpenVINO Model API reads and
  writes); for an ONNX file read by OpenVINO, which keeps ONNX metadata as
  `rt_info['framework'][ONNX key]`, also the ONNX keys below.
- ONNX `onnx.ModelProto`: `metadata_props` `model_info.KEY`, else `model_info KEY` (the Model
  API's own ONNX spelling), else bare `KEY`.

The Model API keys, with the meaning this module gives them:

- `mean_values`, `scale_values`: 1 or 3 numbers (space or comma separated) in the model's
  channel order; the input is `(pixel - mean) / scale` on 0..255 pixels.
- `reverse_input_channels`: the Model API is given BGR images (OpenCV's order) and converts
  them to RGB when this is true; so `True` means the model wants RGB, `False` BGR. Absent:
  RGB (xaigraph's default; the Model API would pass its BGR image on unchanged).
- `resize_type`: `standard` (`stretch`), `crop`, `fit_to_window`, `fit_to_window_letterbox`
  (`letterbox`); absent: `stretch` when the model records any other preprocessing key.
- `pad_value`: 0..255, the pixel value of the padding.
- `labels`: class names, space separated, `_` for a space inside a name
  (`xaigraph.labels.parse_labels`).
- `model_type`: the task as the Model API names it (`Classification`, `ssd`, `yolo`, ...),
  kept as written.

xaigraph's own keys, in the same places (`xaigraph.KEY`), which reproduce a `Preprocess`
exactly where the Model API keys cannot: `xaigraph.resize` (a `Preprocess.resize` mode, e.g.
`center_crop`, which the Model API lacks), `xaigraph.crop_fraction`, `xaigraph.interpolation`
(absent: `bilinear`, the Model API's LINEAR), `xaigraph.scale`, `xaigraph.mean`,
`xaigraph.std` (the `Preprocess` fields, which may differ from the Model API pair when
`scale` is not 1) and `xaigraph.size` (`H W`, used for dynamic spatial dimensions). When an
`xaigraph.*` key is present it wins over the Model API key it refines; `write` always writes
both, consistently.

The input size, layout and element type come from the model's first input: NCHW when its
dimension 1 is 3 or 1 (channels), else NHWC when its last dimension is; 1 channel is
`GRAY`; a dynamic spatial dimension takes `xaigraph.size`, else 224. A malformed value is a
`BadInputError`, one line naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.labels import format_labels, parse_labels
from xaigraph.preprocess import INTERPOLATIONS, MAX_SIDE, RESIZE_MODES, Preprocess

__all__ = [
    "CLASSIFICATION_TASK",
    "DEFAULT_SIZE",
    "MODEL_API_KEYS",
    "XAIGRAPH_KEYS",
    "ModelInfo",
    "from_flags",
    "input_preprocess",
    "metadata",
    "model_labels",
    "read",
    "write",
]

DEFAULT_SIZE = 224  # a dynamic spatial dimension without xaigraph.size
CLASSIFICATION_TASK = "Classification"  # the Model API's model_type of a classifier
MODEL_API_KEYS = ("mean_values", "scale_values", "reverse_input_channels", "resize_type",
                  "pad_value", "labels", "model_type")
XAIGRAPH_KEYS = ("xaigraph.resize", "xaigraph.crop_fraction", "xaigraph.interpolation",
                 "xaigraph.scale", "xaigraph.mean", "xaigraph.std", "xaigraph.size")
_PREPROCESS_KEYS = tuple(k for k in MODEL_API_KEYS + XAIGRAPH_KEYS
                         if k not in ("labels", "model_type"))
_RESIZE_TYPES = {"standard": "stretch", "crop": "crop", "fit_to_window": "fit_to_window",
                 "fit_to_window_letterbox": "letterbox"}
_RESIZE_TYPE_OF = {"stretch": "standard", "center_crop": "crop", "crop": "crop",
                   "letterbox": "fit_to_window_letterbox", "fit_to_window": "fit_to_window"}
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


@dataclass(frozen=True)
class ModelInfo:
    """What a model records about itself.

    - `preprocess`: the recorded preprocessing, with the input's size, layout and dtype;
      None when the model records no preprocessing key or its input is not an image.
    - `labels`: the class names, or None. `task`: `model_type` as written, or None.
    - `raw`: every `model_info` key found (name without prefix) and its text.
    - `input`: a `Preprocess` with only the input's size, layout, dtype and channel count
      taken from the model (xaigraph's defaults for the rest), or None when the input is not
      an image: the base for CLI flags when the model records nothing.
    """

    preprocess: Preprocess | None
    labels: list[str] | None
    task: str | None
    raw: dict[str, str] = field(default_factory=dict)
    input: Preprocess | None = None


# -- reading ---------------------------------------------------------------------------------


def _is_onnx(model: Any) -> bool:
    return hasattr(model, "metadata_props") and hasattr(model, "graph")


def metadata(model: Any) -> dict[str, str]:
    """Every `model_info` key `model` (an `ov.Model` or an `onnx.ModelProto`) records, by
    name without prefix, in the order of precedence given in the module docstring."""
    if _is_onnx(model):
        return _onnx_keys({p.key: p.value for p in model.metadata_props})
    rt = model.get_rt_info()
    found = _section(rt, "model_info")
    for key, value in _onnx_keys(_section(rt, "framework")).items():
        found.setdefault(key, value)
    return found


def model_labels(model: Any) -> list[str] | None:
    """The labels `model` (an `ov.Model` or an `onnx.ModelProto`) carries, or None: its
    `model_info` `labels` as `metadata` finds them (IR `rt_info` `model_info`, ONNX
    `model_info.labels` or bare `labels`, and these keys of an ONNX file read by
    OpenVINO)."""
    return parse_labels(metadata(model).get("labels", "")) or None


def _section(rt: Any, name: str) -> dict[str, str]:
    if name not in list(rt.keys()) or not isinstance(rt[name], dict):
        return {}
    texts = {str(k): _text(v) for k, v in rt[name].items()}
    return {k: v for k, v in texts.items() if v is not None}


def _onnx_keys(props: dict[str, str]) -> dict[str, str]:
    """ONNX metadata keys by precedence: `model_info.KEY`, `model_info KEY`, bare `KEY`
    (known keys only)."""
    found: dict[str, str] = {}
    for prefix in ("model_info.", "model_info "):
        for key, value in props.items():
            if key.startswith(prefix):
                found.setdefault(key[len(prefix):], value)
    known = set(MODEL_API_KEYS + XAIGRAPH_KEYS)
    for key, value in props.items():
        if key in known:
            found.setdefault(key, value)
    return found


def _text(value: Any) -> str | None:
    if isinstance(value, dict):
        return None
    try:
        return str(value.astype(str))
    except (AttributeError, RuntimeError, TypeError):
        return str(value)


def _input_dims(model: Any) -> tuple[list[int | None] | None, str]:
    """The first input's dims (None for a dynamic one; None for a dynamic rank) and numpy's
    name of its element type."""
    if _is_onnx(model):
        from onnx import helper

        initializers = {t.name for t in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in initializers]
        if not inputs:
            return None, "float32"
        tensor = inputs[0].type.tensor_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
        if not tensor.HasField("shape"):
            return None, dtype
        return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in tensor.shape.dim], dtype
    port = model.inputs[0]
    dtype = np.dtype(port.get_element_type().to_dtype()).name
    shape = port.get_partial_shape()
    if shape.rank.is_dynamic:
        return None, dtype
    return [d.get_length() if d.is_static else None for d in shape], dtype


def input_preprocess(model: Any, size: tuple[int, int] | None = None) -> Preprocess | None:
    """A `Preprocess` with the size, layout, dtype and channel count of `model`'s first
    input and xaigraph's defaults otherwise; None when that input is not an image
    (`[N, C, H, W]` or `[N, H, W, C]` with C 3 or 1). `size` fills dynamic spatial dims
    (else `DEFAULT_SIZE`)."""
    dims, dtype = _input_dims(model)
    if dims is None or len(dims) != 4:
        return None
    if dims[1] in (1, 3) or (dims[1] is None and dims[3] not in (1, 3)):
        layout, channels, hw = "NCHW", dims[1], dims[2:]
    elif dims[3] in (1, 3):
        layout, channels, hw = "NHWC", dims[3], dims[1:3]
    else:
        return None
    fill = size or (DEFAULT_SIZE, DEFAULT_SIZE)
    shape = (hw[0] or fill[0], hw[1] or fill[1])
    if max(shape) > MAX_SIDE:
        raise BadInputError(f"the model's input is {shape[0]}x{shape[1]} pixels: height and "
                            f"width must be at most {MAX_SIDE}")
    return Preprocess(size=shape, layout=layout, dtype=dtype,
                      channels="GRAY" if channels == 1 else "RGB")


def read(model: Any) -> ModelInfo:
    """The preprocessing, labels and task `model` (an `ov.Model` or an `onnx.ModelProto`)
    records. `BadInputError` (one line naming the key) for a malformed value."""
    raw = metadata(model)
    size = _size(raw["xaigraph.size"]) if "xaigraph.size" in raw else None
    base = input_preprocess(model, size)
    labels = parse_labels(raw["labels"]) if raw.get("labels", "").strip() else None
    task = raw.get("model_type") or None
    preprocess = None
    if base is not None and any(k in raw for k in _PREPROCESS_KEYS):
        preprocess = _recorded(raw, base)
    return ModelInfo(preprocess=preprocess, labels=labels, task=task, raw=raw, input=base)


def _recorded(raw: dict[str, str], base: Preprocess) -> Preprocess:
    values: dict[str, Any] = {}
    resize = _choice(raw, "resize_type", _RESIZE_TYPES) if "resize_type" in raw else "stretch"
    if "xaigraph.resize" in raw:
        resize = _choice(raw, "xaigraph.resize", {m: m for m in RESIZE_MODES})
    values["resize"] = resize
    if "xaigraph.crop_fraction" in raw:
        values["crop_fraction"] = _number(raw, "xaigraph.crop_fraction", low=0.0, high=1.0)
    if "xaigraph.interpolation" in raw:
        values["interpolation"] = _choice(raw, "xaigraph.interpolation",
                                          {m: m for m in INTERPOLATIONS})
    scale = _number(raw, "xaigraph.scale", low=0.0) if "xaigraph.scale" in raw else 1.0
    values["scale"] = scale
    for field_name, key, default in (("mean", "mean_values", 0.0),
                                     ("std", "scale_values", 1.0)):
        if f"xaigraph.{field_name}" in raw:
            values[field_name] = _three(raw, f"xaigraph.{field_name}", nonzero=default == 1.0)
        elif key in raw:
            values[field_name] = tuple(v * scale for v in
                                       _three(raw, key, nonzero=default == 1.0))
    if "reverse_input_channels" in raw and base.channels != "GRAY":
        values["channels"] = "RGB" if _bool(raw, "reverse_input_channels") else "BGR"
    if "pad_value" in raw:
        pad = _number(raw, "pad_value", low=0.0, high=255.0, closed=True)
        if pad != int(pad):
            raise BadInputError(f"model_info pad_value: expected an integer 0..255, got "
                                f"'{raw['pad_value']}'")
        values["pad_value"] = int(pad)
    try:
        return dataclasses.replace(base, **values)
    except ValueError as exc:
        raise BadInputError(f"model_info: {exc}") from exc


def _bad(raw: dict[str, str], key: str, what: str) -> BadInputError:
    return BadInputError(f"model_info {key}: expected {what}, got '{raw[key]}'")


def _floats(raw: dict[str, str], key: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in raw[key].replace(",", " ").split()]
    except ValueError:
        raise _bad(raw, key, what) from None
    if not values or not all(math.isfinite(v) for v in values):
        raise _bad(raw, key, what)
    return values


def _three(raw: dict[str, str], key: str, nonzero: bool) -> tuple[float, float, float]:
    what = "1 or 3 numbers" + (", none 0" if nonzero else "")
    values = _floats(raw, key, what)
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or (nonzero and 0.0 in values):
        raise _bad(raw, key, what)
    return values[0], values[1], values[2]


def _number(raw: dict[str, str], key: str, low: float, high: float = math.inf,
            closed: bool = False) -> float:
    what = f"a number in {'[' if closed else '('}{low:g}, {high:g}]"
    values = _floats(raw, key, what)
    value = values[0]
    if len(values) != 1 or value > high or value < low or (value == low and not closed):
        raise _bad(raw, key, what)
    return value


def _choice(raw: dict[str, str], key: str, choices: dict[str, str]) -> str:
    value = raw[key].strip()
    if value not in choices:
        raise _bad(raw, key, "one of " + ", ".join(choices))
    return choices[value]


def _bool(raw: dict[str, str], key: str) -> bool:
    value = raw[key].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _bad(raw, key, "True or False")


def _size(text: str) -> tuple[int, int]:
    raw = {"xaigraph.size": text}
    values = _floats(raw, "xaigraph.size", "two positive integers H W")
    if len(values) != 2 or any(v < 1 or v != int(v) for v in values):
        raise _bad(raw, "xaigraph.size", "two positive integers H W")
    return int(values[0]), int(values[1])


# -- writing ---------------------------------------------------------------------------------


def _num(value: float) -> str:
    return repr(float(value))


def _entries(preprocess: Preprocess | None, labels: list[str] | None,
             task: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if preprocess is not None:
        p = preprocess
        out["mean_values"] = " ".join(_num(m / p.scale) for m in p.mean)
        out["scale_values"] = " ".join(_num(s / p.scale) for s in p.std)
        out["reverse_input_channels"] = "False" if p.channels == "BGR" else "True"
        out["resize_type"] = _RESIZE_TYPE_OF[p.resize]
        out["pad_value"] = str(p.pad_value)
        out["xaigraph.resize"] = p.resize
        out["xaigraph.crop_fraction"] = _num(p.crop_fraction)
        out["xaigraph.interpolation"] = p.interpolation
        out["xaigraph.scale"] = _num(p.scale)
        out["xaigraph.mean"] = " ".join(_num(m) for m in p.mean)
        out["xaigraph.std"] = " ".join(_num(s) for s in p.std)
        out["xaigraph.size"] = f"{p.size[0]} {p.size[1]}"
    if labels is not None:
        out["labels"] = format_labels(labels)
    if task is not None:
        out["model_type"] = task
    return out


def write(model: Any, preprocess: Preprocess | None, labels: list[str] | None, *,
          task: str | None = None) -> Any:
    """Record `preprocess`, `labels` and `task` in `model` (changed in place, and returned):
    `rt_info['model_info']` of an `ov.Model`, `metadata_props` `model_info.KEY` of an
    `onnx.ModelProto` (an entry with the same key is replaced). None records nothing for
    that part. `read` gives the values back; the layout and dtype are the input's own."""
    entries = _entries(preprocess, labels, task)
    if _is_onnx(model):
        keys = {f"model_info.{k}" for k in entries}
        kept = [(p.key, p.value) for p in model.metadata_props if p.key not in keys]
        del model.metadata_props[:]
        for key, value in kept + [(f"model_info.{k}", v) for k, v in entries.items()]:
            prop = model.metadata_props.add()
            prop.key, prop.value = key, value
    else:
        for key, value in entries.items():
            model.set_rt_info(value, ["model_info", key])
    return model


# -- flags -----------------------------------------------------------------------------------


def from_flags(base: Preprocess | None, *, size: tuple[int, int] | None = None,
               resize: str | None = None, crop_fraction: float | None = None,
               interpolation: str | None = None, scale: float | None = None,
               mean: tuple[float, float, float] | None = None,
               std: tuple[float, float, float] | None = None, channels: str | None = None,
               layout: str | None = None, dtype: str | None = None,
               pad_value: int | None = None) -> Preprocess:
    """`base` (the model's preprocessing, else `Preprocess()`) with each flag that is not
    None put over it. A bad value is `BadInputError` (one line naming it)."""
    flags = dict(size=size, resize=resize, crop_fraction=crop_fraction,
                 interpolation=interpolation, scale=scale, mean=mean, std=std,
                 channels=channels, layout=layout, dtype=dtype, pad_value=pad_value)
    given: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    try:
        return dataclasses.replace(base or Preprocess(), **given)
    except ValueError as exc:
        raise BadInputError(f"preprocessing: {exc}") from exc

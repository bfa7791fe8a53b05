"""Class names: the labels a model carries, and class names turned into class indices.

A model carries its labels in its metadata, space-separated, a space inside a label written
as `_` (the OpenVINO Model API convention): OpenVINO IR `rt_info` `model_info` / `labels`,
ONNX `metadata_props` `labels` (which OpenVINO keeps as `rt_info` `framework` / `labels` when
it reads the ONNX file). A model with 1000 classes and no labels of its own is taken to be an
ImageNet classifier: the bundled `xaigraph/data/imagenet_labels.txt` names its classes.

Names are matched without regard to case, and `_` matches a space: `tiger_cat`, `Tiger Cat`
and `tiger cat` are one name.
"""

from __future__ import annotations

import difflib
from importlib import resources
from typing import Any

from xaigraph.errors import BadInputError

__all__ = ["IMAGENET_CLASSES", "class_index", "imagenet_labels", "model_labels", "normal"]

IMAGENET_CLASSES = 1000
_RT_INFO_KEYS = (["model_info", "labels"], ["framework", "labels"])


def normal(name: str) -> str:
    """`name` as names are compared: lower case, `_` as a space, single spaces."""
    return " ".join(name.replace("_", " ").lower().split())


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names, in index order (bundled with xaigraph)."""
    text = resources.files("xaigraph.data").joinpath("imagenet_labels.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _split(text: str) -> list[str]:
    return [label.replace("_", " ") for label in text.split()]


def model_labels(model: Any) -> list[str] | None:
    """The labels `model` (an `ov.Model` or an `onnx.ModelProto`) carries, or None."""
    props = getattr(model, "metadata_props", None)
    if props is not None:  # ONNX
        text = next((p.value for p in props if p.key == "labels"), None)
        return _split(text) if text else None
    for key in _RT_INFO_KEYS:
        if model.has_rt_info(key):
            return _split(str(model.get_rt_info(key).astype(str))) or None
    return None


def class_index(name: str, labels: list[str], what: str) -> int:
    """The index of class `name` in `labels`; `BadInputError` (one line, starting with
    `what`) for an unknown or ambiguous name, listing near names with their indices."""
    key = normal(name)
    found = [i for i, label in enumerate(labels) if normal(label) == key]
    if len(found) == 1:
        return found[0]
    if found:
        raise BadInputError(f"{what}: class name '{name}' is ambiguous (indices "
                            f"{', '.join(map(str, found))}): give its index")
    normals = [normal(label) for label in labels]
    near = [n for n in normals if key in n.split() or n in key.split()][:5]
    near += [n for n in difflib.get_close_matches(key, normals, n=5, cutoff=0.6)
             if n not in near][: 5 - len(near)]
    hint = ", ".join(f"{labels[normals.index(n)]} ({normals.index(n)})" for n in near)
    raise BadInputError(f"{what}: unknown class name '{name}'"
                        + (f"; near names: {hint}" if hint else "; no near name"))

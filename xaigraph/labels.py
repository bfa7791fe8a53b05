"""Class names: the labels a model carries, and class names turned into class indices.

A model carries its labels in its metadata, space-separated, a space inside a label written
as `_` (the OpenVINO Model API convention): OpenVINO IR `rt_info` `model_info` / `labels`,
ONNX `metadata_props` `labels` (which OpenVINO keeps as `rt_info` `framework` / `labels`
when it reads the ONNX file); `xaigraph.model_info.model_labels` reads them. A model with
1000 classes and no labels of its own is taken to be an ImageNet classifier: the bundled
`xaigraph/data/imagenet_labels.txt` names its classes.

Names are matched by `normal`, the one rule for every comparison of class names (`--targets`
names, eval's ground truth against the model's classes, the report's flags): without regard
to case, `_` and `-` matching a space: `tiger_cat`, `Tiger Cat` and `tiger cat` are one
name, and so are `black-footed ferret` and `black footed ferret`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from importlib import resources

from xaigraph.errors import BadInputError
from xaigraph.textfile import read_text

__all__ = ["IMAGENET_CLASSES", "class_index", "format_labels", "imagenet_labels", "normal",
           "parse_labels", "read_labels_file"]

IMAGENET_CLASSES = 1000


def normal(name: str) -> str:
    """`name` as class names are compared: lower case, `_` and `-` as spaces, runs of spaces
    as one (no two ImageNet labels share a key)."""
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names, in index order (bundled with xaigraph)."""
    text = resources.files("xaigraph.data").joinpath("imagenet_labels.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_labels(text: str) -> list[str]:
    """Class names from a model's `labels` text: space separated, `_` for a space."""
    return [label.replace("_", " ") for label in text.split()]


def format_labels(labels: list[str]) -> str:
    """The `labels` text for class names (`parse_labels` inverts it, up to a `_` in a name
    coming back as a space and runs of spaces as one)."""
    return " ".join("_".join(label.split()) for label in labels)


def read_labels_file(path: str | os.PathLike[str]) -> list[str]:
    """Class names from a text file, one a line in index order (blank lines and the spaces
    around a name ignored). A missing or unreadable file, one that is not a regular file or
    is too large (`xaigraph.textfile`), or one with no name, is `BadInputError`."""
    text = read_text(path, where=f"--labels {path}")
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise BadInputError(f"--labels {path}: no class names in it (one a line)")
    return labels


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
    names = [f"'{labels[i]}' ({i})" for i in closest(key, labels)]
    suggestion = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    raise BadInputError(f"{what}: unknown class name '{name}'"
                        + (f"; did you mean {suggestion}?" if suggestion else
                           "; no class name is close (xaigraph inspect MODEL lists them)"))


def closest(key: str, labels: Sequence[str], most: int = 3) -> list[int]:
    """The indices of the class names nearest the normal name `key`: names that contain it
    as a word (`cat` in `tiger cat`), then those whose similarity (difflib's ratio, at least
    0.6) is within 0.1 of the best; at most `most`, nearest first."""
    normals = [normal(label) for label in labels]
    ratios = [(difflib.SequenceMatcher(None, key, n).ratio(), i) for i, n in enumerate(normals)]
    best = max((r for r, _ in ratios), default=0.0)
    near = [i for r, i in sorted(ratios, key=lambda ri: (-ri[0], ri[1]))
            if r >= max(0.6, best - 0.1)]
    words = [i for i, n in enumerate(normals) if key in n.split()]
    return (words + [i for i in near if i not in words])[:most]

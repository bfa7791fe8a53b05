"""Take an explanation out of an augmented model: the original graph back (`xaigraph.strip`).

`stripped` works on a clone, through the backend: the stamp's `undo` record puts back the
original ops the insertion removed or rewired (the head a shared ReciproCAM batch replaced,
the readers the channels-first transpose pair was put in front of), the outputs the stamp
says were added (`saliency_classes`, `saliency_map`) go, and with them every op that only
they needed; then the stamp goes. `check_stripped` proves the result computes the stamped
model's original outputs, on the same seeded inputs validation uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from xaigraph import model_io
from xaigraph.backends import Backend, get_backend
from xaigraph.errors import BadInputError
from xaigraph.stamp import Stamp, read
from xaigraph.validate import ValidationRun, validate_outputs

__all__ = ["check_stripped", "strip_loaded", "stripped"]


def _parsed(stamp: Stamp) -> dict[str, Any]:
    if stamp.undo is None:  # stamped before the record existed: outputs and their ops only
        return {}
    try:
        record = json.loads(stamp.undo)
    except ValueError:
        raise BadInputError("cannot strip: the stamp's undo record is not JSON") from None
    if not isinstance(record, dict):
        raise BadInputError("cannot strip: the stamp's undo record is not an object")
    return record


def _record(backend: Backend, stamp: Stamp) -> dict[str, Any]:
    record = _parsed(stamp)
    if not record:
        return record
    if record.get("format") != backend.name:
        raise BadInputError(
            f"cannot strip: the model was stamped as {record.get('format')} and is read as "
            f"{backend.name}; strip the model file it was written as"
        )
    if "error" in record:
        raise BadInputError(f"cannot strip: {record['error']}")
    return record


def stripped(backend: Backend, model: Any, stamp: Stamp) -> Any:
    """A clone of the augmented `model` (stamped `stamp`) without its explanation."""
    record = _record(backend, stamp)
    clone = backend.clone(model)
    try:
        backend.restore(clone, record, list(reversed(stamp.outputs)))
        backend.remove_stamp(clone)
        backend.verify(clone)
    except BadInputError:
        raise
    except Exception as exc:  # a record that does not fit the graph (edited, or spoofed)
        detail = str(exc).strip().splitlines()
        raise BadInputError(
            "cannot strip: the stamp's undo record does not fit this model "
            f"({type(exc).__name__}: {detail[-1] if detail else ''})"
        ) from exc
    return clone


def check_stripped(backend: Backend, original: Any, augmented: Any,
                   samples: Sequence[np.ndarray] = ()) -> list[ValidationRun]:
    """Compare the stripped `original` with the stamped `augmented` model on seeded inputs
    (and `samples`); raise `ValidationError` when an original output differs."""
    probe = backend.build_view(original).probe_inputs
    return validate_outputs(backend, original, augmented, probe, samples)


def strip_loaded(loaded: model_io.LoadedModel, backend: Backend, stamp: Stamp) -> Any:
    """`stripped` for a model as loaded. An ONNX file read by OpenVINO carries its ONNX
    stamp, whose record names ONNX nodes: the file is read again as ONNX, stripped there, and
    the result read by OpenVINO."""
    fmt = _parsed(stamp).get("format")
    path = loaded.path
    if backend.name == "ir" and fmt == "onnx" and path is not None \
            and path.suffix.lower() == ".onnx":
        again = model_io.load_model(path, "onnx")
        onnx_backend = get_backend("onnx", again.external_data)
        onnx_stamp = read(onnx_backend, again.model)
        if onnx_stamp is None:
            raise BadInputError(f"cannot strip {path.name}: its ONNX stamp does not check")
        return model_io.ov_from_onnx(stripped(onnx_backend, again.model, onnx_stamp))
    return stripped(backend, loaded.model, stamp)


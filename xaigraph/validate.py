"""Prove that the augmented model keeps the original's interface and outputs.

Both models are compiled on OpenVINO CPU with f32 inference precision and fed the same seeded
inputs: batch 1, and batch 2 when the batch is dynamic, plus any user samples. For every
original output the largest absolute difference must stay within
`ATOL + RTOL * max|original|` (exact equality for integer outputs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import openvino as ov

from xaigraph.errors import BadInputError, ValidationError
from xaigraph.model_io import core

__all__ = [
    "ATOL",
    "RTOL",
    "OutputDiff",
    "ValidationRun",
    "check_interface",
    "compile_f32",
    "make_inputs",
    "validate_outputs",
]

log = logging.getLogger(__name__)

ATOL = 1e-5
RTOL = 1e-4


@dataclass
class OutputDiff:
    name: str
    max_abs: float
    max_rel: float
    ok: bool


@dataclass
class ValidationRun:
    label: str
    shapes: list[list[int]]
    outputs: list[OutputDiff] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compile_f32(model: ov.Model) -> ov.CompiledModel:
    return core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def _port_desc(port: ov.Output) -> tuple[Any, ...]:
    return (
        tuple(sorted(port.get_names())),
        port.get_element_type().get_type_name(),
        str(port.get_partial_shape()),
    )


def check_interface(original: ov.Model, augmented: ov.Model) -> None:
    """Inputs identical, original outputs identical and first, in the same order."""
    if len(original.inputs) != len(augmented.inputs):
        raise ValidationError("the augmented model has a different number of inputs")
    for a, b in zip(original.inputs, augmented.inputs, strict=True):
        if _port_desc(a) != _port_desc(b):
            raise ValidationError(f"input changed: {_port_desc(a)} became {_port_desc(b)}")
    if len(augmented.outputs) <= len(original.outputs):
        raise ValidationError("the augmented model has no extra output")
    for a, b in zip(original.outputs, augmented.outputs[: len(original.outputs)], strict=True):
        if _port_desc(a) != _port_desc(b):
            raise ValidationError(f"output changed: {_port_desc(a)} became {_port_desc(b)}")


def _np_type(t: ov.Type) -> np.dtype[Any]:
    return np.dtype(t.to_dtype())


def make_inputs(model: ov.Model, shapes: Sequence[Sequence[int]], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for param, shape in zip(model.get_parameters(), shapes, strict=True):
        dtype = _np_type(param.get_element_type())
        if np.issubdtype(dtype, np.floating):
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype == np.bool_:
            arrays.append(rng.integers(0, 2, shape).astype(dtype))
        else:
            hi = 256 if np.iinfo(dtype).max >= 255 else int(np.iinfo(dtype).max) + 1
            arrays.append(rng.integers(0, hi, shape).astype(dtype))
    return arrays


def _diff(name: str, ref: np.ndarray, got: np.ndarray) -> OutputDiff:
    if ref.shape != got.shape:
        return OutputDiff(name, float("inf"), float("inf"), False)
    if not np.issubdtype(ref.dtype, np.floating):
        bad = float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64)), initial=0))
        return OutputDiff(name, bad, bad, bad == 0)
    r = ref.astype(np.float64)
    g = got.astype(np.float64)
    both_nan = np.isnan(r) & np.isnan(g)
    delta = np.where(both_nan, 0.0, np.abs(r - g))
    max_abs = float(np.max(delta, initial=0.0))
    if np.isnan(max_abs):
        return OutputDiff(name, max_abs, max_abs, False)
    scale = float(np.max(np.abs(np.where(np.isfinite(r), r, 0.0)), initial=0.0))
    max_rel = max_abs / scale if scale > 0 else max_abs
    return OutputDiff(name, max_abs, max_rel, max_abs <= ATOL + RTOL * scale)


def validate_outputs(
    original: ov.Model,
    augmented: ov.Model,
    probe_shapes: Sequence[Sequence[int]],
    samples: Sequence[np.ndarray] = (),
) -> list[ValidationRun]:
    """Run both models side by side; raise `ValidationError` on a difference."""
    check_interface(original, augmented)
    ref_model = compile_f32(original)
    aug_model = compile_f32(augmented)
    params = original.get_parameters()
    dynamic_batch = all(
        p.get_partial_shape().rank.is_static
        and p.get_partial_shape().rank.get_length() > 0
        and p.get_partial_shape()[0].is_dynamic
        for p in params
    )
    feeds: list[tuple[str, list[np.ndarray]]] = []
    batches = (1, 2) if dynamic_batch else (None,)
    for seed, batch in enumerate(batches):
        shapes = [list(s) for s in probe_shapes]
        if batch is not None:
            for s in shapes:
                s[0] = batch
        feeds.append((f"random batch {shapes[0][0] if shapes and shapes[0] else 1}",
                      make_inputs(original, shapes, seed)))
    for i, sample in enumerate(samples):
        if len(params) != 1:
            raise BadInputError("sample inputs are only supported for single-input models")
        want = _np_type(params[0].get_element_type())
        if not params[0].get_partial_shape().compatible(ov.PartialShape(list(sample.shape))):
            raise BadInputError(
                f"sample {i + 1} has shape {list(sample.shape)}, the model takes "
                f"{params[0].get_partial_shape()}"
            )
        feeds.append((f"sample {i + 1}", [sample.astype(want)]))

    runs = []
    names = [", ".join(sorted(o.get_names())) or f"output {i}" for i, o in
             enumerate(original.outputs)]
    for label, arrays in feeds:
        ref = ref_model(arrays)
        got = aug_model(arrays)
        run = ValidationRun(label, [list(a.shape) for a in arrays])
        for i, name in enumerate(names):
            run.outputs.append(_diff(name, np.asarray(ref[i]), np.asarray(got[i])))
        runs.append(run)
        log.debug("validation %s: %s", label, run.outputs)
    failed = [(r, d) for r in runs for d in r.outputs if not d.ok]
    if failed:
        r, d = failed[0]
        raise ValidationError(
            f"validation failed: output '{d.name}' differs on {r.label} by {d.max_abs:.3g} "
            f"(relative {d.max_rel:.3g}; tolerance {ATOL:g} + {RTOL:g} x max|original|); "
            "nothing written"
        )
    return runs

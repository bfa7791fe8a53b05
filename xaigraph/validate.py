"""Prove that the augmented model keeps the original's interface and outputs.

Both models run on the same runtime (a `xaigraph.session.Session` with its defaults: OpenVINO
CPU with f32 inference precision, or ONNX Runtime CPU without graph optimisations) and are fed
the same seeded inputs: batch 1, and batch 2 when the batch is dynamic, plus any user
samples. For every original output the largest absolute difference must stay within
`atol + rtol * max|original|` (exact equality for integer outputs), with a tolerance that fits
the precision the model computes in (`tolerance_for`, the loosest that applies):

- f32 (also FP16- or INT8-*compressed weights*, decompressed to f32 before use): atol 1e-5,
  rtol 1e-4;
- f16 (a tensor computed in half precision): atol 1e-4, rtol 4e-3 (4 units in the last
  place: the augmented graph may order or fuse the same sums differently);
- bf16: atol 1e-3, rtol 3e-2 (4 units in the last place);
- 8-bit quantised activations (FakeQuantize or QuantizeLinear on a computed tensor): atol
  1e-5, rtol 1/255 (one quantisation step of the output's range: a value that lands on a
  rounding boundary may round the other way when the runtime fuses differently).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from xaigraph.backends import Backend
from xaigraph.errors import SampleError, ValidationError
from xaigraph.graph_view import GraphView
from xaigraph.session import Session

__all__ = [
    "ATOL",
    "RTOL",
    "TOLERANCES",
    "OutputDiff",
    "Tolerance",
    "ValidationRun",
    "check_interface",
    "check_samples",
    "make_inputs",
    "tolerance_for",
    "validate_outputs",
]

log = logging.getLogger(__name__)

ATOL = 1e-5
RTOL = 1e-4


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    basis: str  # the precision it fits

    def text(self) -> str:
        return f"{self.atol:g} + {self.rtol:.3g} x max|original|, for {self.basis}"


TOLERANCES = {
    "f32": Tolerance(ATOL, RTOL, "f32"),
    "f16": Tolerance(1e-4, 4e-3, "f16 compute"),
    "bf16": Tolerance(1e-3, 3e-2, "bf16 compute"),
    "int8": Tolerance(ATOL, 1 / 255, "8-bit quantised activations"),
}
_QUANTISING = ("fake_quantize", "quantize")  # neutral names that round a computed tensor


def tolerance_for(view: GraphView) -> Tolerance:
    """The tolerance for the precision `view`'s model computes in: the loosest of those its
    computed (not constant-derived) tensors call for."""
    found = [TOLERANCES["f32"]]
    for op_id, op in view.ops.items():
        if op.kind == "const" or view.is_const_derived(op_id):
            continue  # weights, and their decompression
        if op.neutral in _QUANTISING:
            found.append(TOLERANCES["int8"])
        found.extend(TOLERANCES[t.dtype] for t in op.outputs if t.dtype in ("f16", "bf16"))
    return max(found, key=lambda t: t.rtol)


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


def check_interface(backend: Backend, original: Any, augmented: Any) -> None:
    """Inputs identical, original outputs identical and first, in the same order."""
    a_in, b_in = backend.inputs(original), backend.inputs(augmented)
    if len(a_in) != len(b_in):
        raise ValidationError("the augmented model has a different number of inputs")
    for a, b in zip(a_in, b_in, strict=True):
        if a.as_dict() != b.as_dict():
            raise ValidationError(f"input changed: {a.as_dict()} became {b.as_dict()}")
    a_out, b_out = backend.outputs(original), backend.outputs(augmented)
    if len(b_out) <= len(a_out):
        raise ValidationError("the augmented model has no extra output")
    for a, b in zip(a_out, b_out[: len(a_out)], strict=True):
        if a.as_dict() != b.as_dict():
            raise ValidationError(f"output changed: {a.as_dict()} became {b.as_dict()}")


def make_inputs(dtypes: Sequence[np.dtype[Any]], shapes: Sequence[Sequence[int]], seed: int
                ) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for dtype, shape in zip(dtypes, shapes, strict=True):
        if np.issubdtype(dtype, np.floating):
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype == np.bool_:
            arrays.append(rng.integers(0, 2, shape).astype(dtype))
        else:
            hi = 256 if np.iinfo(dtype).max >= 255 else int(np.iinfo(dtype).max) + 1
            arrays.append(rng.integers(0, hi, shape).astype(dtype))
    return arrays


def _diff(name: str, ref: np.ndarray, got: np.ndarray, tol: Tolerance) -> OutputDiff:
    if ref.shape != got.shape:
        return OutputDiff(name, float("inf"), float("inf"), False)
    if not np.issubdtype(ref.dtype, np.floating):
        bad = float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64)), initial=0))
        return OutputDiff(name, bad, bad, bad == 0)
    r = ref.astype(np.float64)
    g = got.astype(np.float64)
    same = (r == g) | (np.isnan(r) & np.isnan(g))  # equal infinities are no difference
    with np.errstate(invalid="ignore"):
        delta = np.where(same, 0.0, np.abs(r - g))
    max_abs = float(np.max(delta, initial=0.0))
    if np.isnan(max_abs):
        return OutputDiff(name, max_abs, max_abs, False)
    scale = float(np.max(np.abs(np.where(np.isfinite(r), r, 0.0)), initial=0.0))
    max_rel = max_abs / scale if scale > 0 else max_abs
    return OutputDiff(name, max_abs, max_rel, max_abs <= tol.atol + tol.rtol * scale)


def check_samples(backend: Backend, model: Any, samples: Sequence[np.ndarray]) -> None:
    """`SampleError` when a sample is not an input of `model` (one input, its shape)."""
    ports = backend.inputs(model)
    for i, sample in enumerate(samples):
        if len(ports) != 1:
            raise SampleError("sample inputs are only supported for single-input models")
        dims = ports[0].dims
        fits = dims is None or (len(dims) == sample.ndim and all(
            d is None or d == s for d, s in zip(dims, sample.shape, strict=True)))
        if not fits:
            raise SampleError(
                f"sample {i + 1} has shape {list(sample.shape)}, the model takes {ports[0].shape}"
            )


def validate_outputs(
    backend: Backend,
    original: Any,
    augmented: Any,
    probe_shapes: Sequence[Sequence[int]],
    samples: Sequence[np.ndarray] = (),
    tolerance: Tolerance = TOLERANCES["f32"],
) -> list[ValidationRun]:
    """Run both models side by side; raise `ValidationError` on a difference beyond
    `tolerance`."""
    check_interface(backend, original, augmented)
    ref_model = Session.open(original, backend.engine)
    aug_model = Session.open(augmented, backend.engine)
    ports = backend.inputs(original)
    dtypes = backend.input_dtypes(original)
    dynamic_batch = all(p.dims is not None and len(p.dims) > 0 and p.dims[0] is None
                        for p in ports)
    feeds: list[tuple[str, list[np.ndarray]]] = []
    batches = (1, 2) if dynamic_batch else (None,)
    for seed, batch in enumerate(batches):
        shapes = [list(s) for s in probe_shapes]
        if batch is not None:
            for s in shapes:
                s[0] = batch
        label = f"random batch {shapes[0][0] if shapes and shapes[0] else 1}"
        feeds.append((label, make_inputs(dtypes, shapes, seed)))
    check_samples(backend, original, samples)
    for i, sample in enumerate(samples):
        feeds.append((f"sample {i + 1}", [sample.astype(dtypes[0])]))

    runs = []
    names = [p.name for p in backend.outputs(original)]
    for label, arrays in feeds:
        ref = ref_model.run(arrays)
        got = aug_model.run(arrays, outputs=range(len(names)))
        run = ValidationRun(label, [list(a.shape) for a in arrays])
        for i, name in enumerate(names):
            run.outputs.append(_diff(name, ref[i], got[i], tolerance))
        runs.append(run)
        log.debug("validation %s: %s", label, run.outputs)
    failed = [(r, d) for r in runs for d in r.outputs if not d.ok]
    if failed:
        r, d = failed[0]
        raise ValidationError(
            f"validation failed: output '{d.name}' differs on {r.label} by {d.max_abs:.3g} "
            f"(relative {d.max_rel:.3g}; tolerance {tolerance.text()}); nothing written"
        )
    return runs

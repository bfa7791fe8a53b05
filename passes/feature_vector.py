"""feature-vector: add the `feature_vector` output, the pooled embedding the classifier reads.

The OpenVINO Model API returns a model's `feature_vector` output as
`ClassificationResult.feature_vector` (and OTX-exported models carry one): `[N, C]`, the
global average pooling of the last feature map that the classification layers read. Here it
is the output of the head's global average pooling (`xaigraph.head`), reshaped to `[N, C]`:
the very tensor the class scores are computed from, not a copy of it.

The pass checks what it built on seeded inputs (batch 1, and 2 when the batch is dynamic) and
on the run's samples, against an independent reference: the original model, with the
pooling's input as an extra output, run on the same inputs, and that map's spatial mean taken
in numpy. A difference beyond the tolerance of the original's precision
(`xaigraph.validate.tolerance_for`) is a `ValidationError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xaigraph.backends import output_port
from xaigraph.errors import MethodError, ValidationError, XaiGraphError
from xaigraph.graph_view import GraphView, Value
from xaigraph.head import Head
from xaigraph.pipeline import FeatureRecord, Model, Pass, PassContext, PassResult
from xaigraph.session import Session
from xaigraph.validate import make_inputs, tolerance_for

__all__ = ["FEATURE_OUTPUT", "FeatureVectorPass", "pooling"]

FEATURE_OUTPUT = "feature_vector"
_REFERENCE = "xaigraph_pool_input"  # the pooling's input, exposed in a copy of the original


def pooling(view: GraphView, head: Head) -> str | None:
    """The op id of the head's global average pooling of the target map, or None: the one
    the head's split found, else the first on the target's path to the scores."""
    if head.pool is not None:
        return head.pool
    return next((o for o in head.ops if view.ops[o].kind == "gap"), None)


class FeatureVectorPass(Pass):
    """Requires `ctx.target` and `ctx.head` of a classifier whose head pools the target map
    (global average pooling). Appends the output `feature_vector` `[N, C]` (the element
    type of the pooling) and checks it (see the module's docstring); `ctx.feature` records
    which pooling it reads and the check's figures. `MethodError` (one line) for a detector
    or a head without such a pooling."""

    name = "feature-vector"

    def requires(self, model: Model, ctx: PassContext) -> None:
        if ctx.target is None or ctx.head is None:
            raise XaiGraphError("needs detect-target to run first")
        if output_port(ctx.backend, model, FEATURE_OUTPUT) is not None:
            raise MethodError(f"the model already has an output named '{FEATURE_OUTPUT}'")
        if ctx.target.detector is not None:
            raise MethodError("--feature-vector is for classifiers: a detector's class maps "
                              "have no pooled embedding")
        if pooling(ctx.view(model), ctx.head) is None:
            raise MethodError("--feature-vector: the head has no global average pooling of "
                              f"the target map ({ctx.target.name}) to read the embedding from")

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        assert ctx.head is not None  # see `requires`
        view = ctx.view(model)
        pool = pooling(view, ctx.head)
        assert pool is not None
        pooled = Value(pool, 0)
        shape = view.tensor(pooled).shape
        channels = shape[1] if shape is not None and len(shape) > 1 else None
        batch = shape[0] if shape else None
        declared = [batch, channels]
        builder = ctx.backend.builder(model, view, prefix="xai/feature")
        flat = builder.reshape(builder.value(pooled), builder.const(np.array([0, -1], np.int64)))
        builder.add_output(flat, FEATURE_OUTPUT, declared)
        builder.finish()
        source = view.ops[view.ops[pool].inputs[0].op].name
        port = view.ops[pool].inputs[0].port
        ctx.feature = _check(model, ctx, view.ops[pool].name, f"{source}:{port}", declared)
        return PassResult(model, modified=True)

    def ensures(self, model: Model, ctx: PassContext) -> None:
        port = output_port(ctx.backend, model, FEATURE_OUTPUT)
        if port is None or port.dims is None or len(port.dims) != 2:
            raise XaiGraphError("feature_vector is missing or not rank 2")


def _feeds(ctx: PassContext, model: Model) -> list[tuple[str, list[np.ndarray]]]:
    """Seeded inputs at the probe shapes (batch 1, and 2 when every input's batch is
    dynamic), then the run's samples."""
    ports = ctx.backend.inputs(model)
    dtypes = ctx.backend.input_dtypes(model)
    probe = ctx.probe_inputs or ctx.view(model).probe_inputs
    dynamic = all(p.dims and p.dims[0] is None for p in ports)
    feeds = []
    for seed, batch in enumerate((1, 2) if dynamic else (None,)):
        shapes = [[batch if (i == 0 and batch is not None) else d for i, d in enumerate(s)]
                  for s in probe]
        feeds.append((f"random batch {shapes[0][0] if shapes and shapes[0] else 1}",
                      make_inputs(dtypes, shapes, seed + 100)))
    for i, sample in enumerate(ctx.samples):
        feeds.append((f"sample {i + 1}", [sample.astype(dtypes[0])]))
    return feeds


def _reference_session(ctx: PassContext, name: str) -> Session:
    """The original model with the tensor `name` (the pooling's input) as an extra output."""
    copy = ctx.backend.clone(ctx.original)
    view = ctx.backend.build_view(copy)
    value = view.find(name) or view.find(name.rpartition(":")[0])
    if value is None:
        raise XaiGraphError(f"feature-vector: the pooling's input {name} is not in the "
                            "original model, so the feature vector cannot be checked")
    builder = ctx.backend.builder(copy, view, prefix="xai/feature-check")
    builder.add_output(builder.value(value), _REFERENCE, list(view.tensor(value).shape or ()))
    builder.finish()
    return Session.open(copy, ctx.backend.engine)


def _check(model: Model, ctx: PassContext, pool: str, source: str,
           declared: Sequence[int | None]) -> FeatureRecord:
    tolerance = tolerance_for(ctx.original_view())
    got_session = Session.open(model, ctx.backend.engine)
    ref_session = _reference_session(ctx, source)
    record = FeatureRecord(pool, list(declared), tolerance.atol, tolerance.rtol)
    for label, arrays in _feeds(ctx, model):
        got = got_session.run(arrays, outputs=[FEATURE_OUTPUT])[0]
        pool_input = ref_session.run(arrays, outputs=[_REFERENCE])[0]
        ref = pool_input.astype(np.float64).mean(axis=(2, 3))
        run: dict[str, Any] = {"label": label, "shape": list(got.shape)}
        if got.shape != ref.shape:
            raise ValidationError(f"feature_vector is {list(got.shape)} on {label}, the "
                                  f"pooling's reference {list(ref.shape)}; nothing written")
        worst = float(np.max(np.abs(got.astype(np.float64) - ref), initial=0.0))
        scale = float(np.max(np.abs(ref), initial=0.0))
        run["max_abs"] = worst
        if not np.isfinite(worst) or worst > tolerance.atol + tolerance.rtol * scale:
            raise ValidationError(f"feature_vector differs from the spatial mean of the "
                                  f"pooling's input on {label} by {worst:.3g} (tolerance "
                                  f"{tolerance.text()}); nothing written")
        record.runs.append(run)
    return record

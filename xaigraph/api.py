"""The public Python API: `insert`, `inspect`, `save`. The CLI is a thin layer over these."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import openvino as ov

from xaigraph import model_io
from xaigraph.errors import BadInputError
from xaigraph.graph_view import GraphView
from xaigraph.head import extract_head
from xaigraph.methods import METHODS, get_method
from xaigraph.ov_view import build_view
from xaigraph.passes import build_pipeline
from xaigraph.pipeline import PassContext
from xaigraph.stamp import read_stamp
from xaigraph.target import Target, find_target
from xaigraph.version import __version__

__all__ = ["InsertResult", "insert", "inspect", "save"]

log = logging.getLogger(__name__)

ModelLike: TypeAlias = str | os.PathLike[str] | ov.Model | model_io.LoadedModel


@dataclass
class InsertResult:
    """The augmented model (or the input, when it was already augmented) and a report."""

    model: ov.Model
    report: dict[str, Any] = field(default_factory=dict)
    source: model_io.LoadedModel | None = None

    @property
    def changed(self) -> bool:
        return self.report.get("status") == "inserted"


def _load(model: ModelLike) -> model_io.LoadedModel:
    if isinstance(model, model_io.LoadedModel):
        return model
    if isinstance(model, ov.Model):
        return model_io.LoadedModel(model=model, path=None, format="memory")
    return model_io.load_model(model)


def _ports(ports: Sequence[ov.Output]) -> list[dict[str, Any]]:
    return [
        {
            "name": ", ".join(sorted(p.get_names())) or f"#{i}",
            "shape": str(p.get_partial_shape()),
            "type": p.get_element_type().get_type_name(),
        }
        for i, p in enumerate(ports)
    ]


def _shape_text(shape: Sequence[int | None]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def insert(
    model: ModelLike,
    method: str = "reciprocam",
    *,
    target_layer: str | None = None,
    scaling: bool = True,
    validate: bool = True,
    samples: Sequence[np.ndarray] = (),
    progress: Callable[[str], None] | None = None,
) -> InsertResult:
    """Return the model with a `saliency_map` output built by `method`.

    `model` is a path (`.xml` IR or `.onnx`) or an `ov.Model`; an `ov.Model` is modified in
    place. A model that already carries an xaigraph stamp is returned unchanged with
    `report["status"] == "already-augmented"`.
    """
    get_method(method)  # fail fast on an unknown name
    start = time.perf_counter()
    loaded = _load(model)
    load_time = time.perf_counter() - start
    ov_model = loaded.model
    report: dict[str, Any] = {
        "version": __version__,
        "input": str(loaded.path) if loaded.path else None,
        "method": method,
        "inputs": _ports(ov_model.inputs),
    }
    stamp = read_stamp(ov_model)
    if stamp is not None:
        report.update(
            status="already-augmented",
            stamp=stamp,
            outputs=_ports(ov_model.outputs),
            timings={"load": round(load_time, 4)},
        )
        return InsertResult(ov_model, report, loaded)

    manager = build_pipeline(method, target_layer=target_layer, scaling=scaling,
                             validate=validate)
    ctx = PassContext(original=ov_model.clone(), options={"samples": list(samples)})
    ov_model = manager.run(ov_model, ctx, progress)
    target: Target = ctx.target
    report.update(
        status="inserted",
        pipeline=manager.text(),
        target={
            "name": target.name,
            "shape": _shape_text(target.shape),
            "declared_shape": _shape_text(ctx.report["target_declared_shape"]),
            "forced": target.forced,
        },
        form=ctx.report["form"],
        outputs=_ports(ov_model.outputs),
        saliency_map=_ports(ov_model.outputs[-1:])[0],
        validation=ctx.report.get("validation", {"passed": None, "skipped": True}),
        timings={"load": round(load_time, 4),
                 **{k: round(v, 4) for k, v in ctx.timings.items()}},
    )
    return InsertResult(ov_model, report, loaded)


def save(result: InsertResult, out: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write the augmented model as IR (`out` `.xml` + `.bin`), atomically."""
    inputs = result.source.files if result.source is not None else []
    path = model_io.check_output_path(out, force=force, inputs=inputs)
    model_io.save_ir(result.model, path)
    return path


def inspect(model: ModelLike, target_layer: str | None = None) -> dict[str, Any]:
    """Inputs, outputs, the target, its head, other candidates, and which methods apply."""
    loaded = _load(model)
    ov_model = loaded.model
    view = build_view(ov_model)
    info: dict[str, Any] = {
        "model": str(loaded.path) if loaded.path else None,
        "inputs": _ports(ov_model.inputs),
        "outputs": _ports(ov_model.outputs),
        "probe_input_shapes": [list(s) for s in view.probe_inputs],
        "stamp": read_stamp(ov_model),
    }
    target = find_target(view, target_layer)
    head = extract_head(view, target.value, target.scores)
    info["classification_output"] = view.describe(target.output)
    info["class_scores"] = _describe_scores(view, target)
    info["num_classes"] = target.num_classes
    info["target"] = {
        "name": target.name,
        "shape": _shape_text(target.shape),
        "type": view.ops[target.value.op].type,
        "forced": target.forced,
    }
    info["head"] = head.describe_ops(view)
    info["candidates"] = [
        {"name": c.name, "shape": _shape_text(c.shape), "reason": c.reason or "chosen"}
        for c in target.candidates
    ]
    methods = {}
    for name, m in METHODS.items():
        reason = m.check(view, target, head)
        methods[name] = (
            {"applies": True, "form": m.form(view, target, head)}
            if reason is None
            else {"applies": False, "reason": reason}
        )
    info["methods"] = methods
    return info


def _describe_scores(view: GraphView, target: Target) -> str:
    if target.scores == target.output:
        return f"{view.describe(target.scores)} (the output itself)"
    readers = [view.ops[c].type for c, _ in view.consumers(target.scores)
               if view.ops[c].kind == "score"]
    final = readers[0] if readers else "activation"
    return f"{view.describe(target.scores)} (input of the final {final})"


def load_samples(paths: Sequence[str | os.PathLike[str]]) -> list[np.ndarray]:
    """Read `.npy` sample inputs."""
    out = []
    for p in paths:
        try:
            out.append(np.load(p, allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise BadInputError(f"cannot read sample {p}: {exc}") from exc
    return out

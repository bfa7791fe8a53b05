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
import onnx
import openvino as ov

from xaigraph import model_info, model_io, signals, torch_models
from xaigraph import stamp as stamp_mod
from xaigraph.backends import BACKENDS, Backend, backend_for_path, get_backend
from xaigraph.errors import BadInputError, TargetError
from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.methods import METHODS, get_method
from xaigraph.methods.base import why_not
from xaigraph.model_info import CLASSIFICATION_TASK
from xaigraph.passes import FEATURE_OUTPUT, analysis_pipeline, build_pipeline, parse
from xaigraph.pipeline import Pass, PassContext, PassManager
from xaigraph.preprocess import Preprocess
from xaigraph.samples import read_samples
from xaigraph.sanity import describe as describe_sanity
from xaigraph.stamp import UNDO_KEY, Stamp
from xaigraph.stamp_format import SANITY_KEY
from xaigraph.stripping import check_stripped, strip_loaded
from xaigraph.target import Target, classification_output_if_any
from xaigraph.version import __version__

__all__ = ["Analysed", "InsertResult", "analyse", "insert", "inspect", "load_samples", "save",
           "strip"]

log = logging.getLogger(__name__)

ModelLike: TypeAlias = (
    str | os.PathLike[str] | ov.Model | onnx.ModelProto | model_io.LoadedModel
)


@dataclass
class InsertResult:
    """The augmented model (or the input, when it was already augmented) and a report.

    `model` is an `ov.Model` for IR output, an `onnx.ModelProto` for ONNX output."""

    model: Any
    report: dict[str, Any] = field(default_factory=dict)
    source: model_io.LoadedModel | None = None
    backend: Backend = field(default_factory=lambda: get_backend("ir"))

    @property
    def changed(self) -> bool:
        return self.report.get("status") in ("inserted", "stripped")


@dataclass
class Analysed:
    """A plain model through the analysis passes (`analysis_pipeline`: detect-target, and
    channels-first when it asks), which `insert` augments without analysing it again.

    `model` is the clone the passes ran on (`insert` augments it in place), `ctx` what they
    found (`ctx.original` is the model as read), `manager` the analysis pipeline, `loaded`
    the model as read."""

    loaded: model_io.LoadedModel
    model: Any
    ctx: PassContext
    manager: PassManager

    @property
    def view(self) -> GraphView:
        return self.ctx.view(self.model)


def analyse(model: ModelLike, *, target_layer: str | None = None,
            num_anchors: int | None = None, class_output: str | None = None,
            output_format: str | None = None, example_input: Any = None) -> Analysed:
    """Run the analysis passes on a clone of a plain `model` (read as for `insert`): the
    target, its head, the class output. Raises what detect-target raises (`TargetError`
    when no target is found)."""
    loaded, backend = _load(model, output_format, example_input)
    manager = analysis_pipeline(target_layer, num_anchors, class_output)
    ctx = PassContext(backend=backend, original=loaded.model)
    clone = backend.clone(loaded.model)
    return Analysed(loaded, manager.run(clone, ctx), ctx, manager)


def _load(model: ModelLike, output_format: str | None, example_input: Any = None
          ) -> tuple[model_io.LoadedModel, Backend]:
    """`model` read (see `_read`) and its backend; `BadInputError` for an input with a
    zero-sized dimension."""
    loaded = _read(model, output_format, example_input)
    backend = get_backend(loaded.backend, loaded.external_data)
    for port in backend.inputs(loaded.model):  # OpenVINO corrupts its heap on empty batches
        if port.dims is not None and 0 in port.dims:
            raise BadInputError(f"input '{port.name}' has shape {port.shape}: a zero-sized "
                                "dimension, so the model takes no data")
    return loaded, backend


def _source(loaded: model_io.LoadedModel, backend: Backend) -> dict[str, Any]:
    """The report's first fields: xaigraph's version, the input's path and its format."""
    return {"version": __version__, "input": str(loaded.path) if loaded.path else None,
            "format": backend.name}


def _read(model: ModelLike, output_format: str | None, example_input: Any = None
          ) -> model_io.LoadedModel:
    if output_format is not None and output_format not in BACKENDS:
        raise BadInputError(f"unknown output format '{output_format}'; use 'ir' or 'onnx'")
    if isinstance(model, model_io.LoadedModel):
        return model
    if torch_models.is_torch(model) or torch_models.is_torch_file(model):
        return torch_models.load(model, example_input, output_format)
    if example_input is not None:
        raise BadInputError("example_input is for a PyTorch model (a module, or a .pt, .pth "
                            "or .pt2 file)")
    if isinstance(model, ov.Model):
        if output_format == "onnx":
            raise BadInputError("an ov.Model cannot be written as ONNX")
        return model_io.LoadedModel(model=model, path=None)
    if isinstance(model, onnx.ModelProto):
        if output_format == "ir":
            return model_io.LoadedModel(model=model_io.ov_from_onnx(model), path=None)
        return model_io.LoadedModel(model=model, path=None, backend="onnx")
    return model_io.load_model(model, output_format or "ir")


def _shape_text(shape: Sequence[int | None]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def insert(
    model: ModelLike | Analysed, method: str = "reciprocam", *,
    target_layer: str | None = None, scaling: bool = True, validate: bool = True,
    samples: Sequence[np.ndarray] = (),
    progress: Callable[[str], None] | None = None,
    output_format: str | None = None,
    targets: str | None = None,
    num_anchors: int | None = None,
    form: str | None = None,
    replace: bool = False,
    class_output: str | None = None,
    record_preprocess: Preprocess | None = None,
    record_labels: list[str] | None = None,
    feature_vector: bool = False,
    example_input: Any = None,
    sanity: str = "on",
) -> InsertResult:
    """Return the model with a `saliency_map` output built by `method`.

    `model` is a path (`.xml` IR or `.onnx`), an `ov.Model` or an `onnx.ModelProto`; an
    in-memory model is modified in place; a PyTorch one (`torch_models`) is converted, traced on
    `example_input` (`(1, 3, 224, 224)`, or a tensor). An `Analysed` model (`analyse`) is
    augmented without analysing it again: its analysis options must be this call's
    (`target_layer`, `num_anchors`, `class_output`), and it keeps its format. `output_format` is
    "ir" (an `ov.Model` comes back; the default for paths and `ov.Model`s) or "onnx" (an
    `onnx.ModelProto`; needs an ONNX model; the default for a `ModelProto`). A model that
    already carries an xaigraph stamp is returned unchanged with `report["status"] ==
    "already-augmented"` when it was made with this method and these options; otherwise
    `BadInputError`, unless `replace`, which takes the old explanation out (as `strip` does) and
    inserts this one (`report["replaced"]` holds the old stamp). `form` builds a method with
    several forms in that one ("mosaic" for reciprocam). `targets` chooses classes: "topk:K", or
    indices and names ("3,17", "tiger cat,tabby"); `class_output` names the output holding the
    class scores (detected by default). `record_preprocess` and `record_labels` are written into
    the output model's metadata (`xaigraph.model_info.write`; `report["model_info"]` lists
    them); labels whose number is not the model's class count are a `BadInputError`;
    `model_type` goes with them (`_record`). `feature_vector` adds that output, `[N, C]`
    (`report["feature_vector"]`). `sanity`: the sanity checks' level, "on", "warn", "strict" or
    "off" (`SanityPass`).
    """
    get_method(method)  # fail fast on an unknown name
    manager = build_pipeline(method, target_layer=target_layer, scaling=scaling,
                             validate=validate, targets=targets, num_anchors=num_anchors,
                             form=form, class_output=class_output,
                             feature_vector=feature_vector, sanity=sanity)
    if isinstance(model, Analysed):
        return _go_on(model, method, manager, samples, progress, record_preprocess,
                      record_labels)
    loaded, backend, report, load_time = _timed_load(model, output_format, method,
                                                     example_input)
    native, stamp = loaded.model, stamp_mod.read(backend, loaded.model)
    if stamp is not None and not replace:
        return _already_augmented(report, stamp, manager, loaded, backend, load_time)
    if stamp is not None:
        native, report["replaced"] = strip_loaded(loaded, backend, stamp), _readable(stamp)
    ctx = PassContext(backend=backend, original=backend.clone(native), samples=list(samples))
    native = manager.run(native, ctx, progress)
    return _finish(native, ctx, report, loaded, record_preprocess, record_labels,
                   timings={"load": load_time})


def _timed_load(model: ModelLike, output_format: str | None, method: str,
                example_input: Any = None
                ) -> tuple[model_io.LoadedModel, Backend, dict[str, Any], float]:
    """`_load`, the report's first fields, and the seconds loading took."""
    start = time.perf_counter()
    loaded, backend = _load(model, output_format, example_input)
    load_time = round(time.perf_counter() - start, 4)
    report = {**_source(loaded, backend), "method": method,
              "inputs": [p.as_dict() for p in backend.inputs(loaded.model)]}
    return loaded, backend, report, load_time


def _go_on(analysed: Analysed, method: str, manager: PassManager, samples: Sequence[np.ndarray],
           progress: Callable[[str], None] | None, preprocess: Preprocess | None,
           labels: list[str] | None) -> InsertResult:
    """`insert` of an `Analysed` model: `manager` resumed after its analysis."""
    ctx = analysed.ctx
    ctx.samples = list(samples) or ctx.samples
    native = manager.resume(analysed.model, ctx, analysed.manager, progress)
    report = {**_source(analysed.loaded, ctx.backend), "method": method,
              "inputs": [p.as_dict() for p in ctx.backend.inputs(native)]}
    return _finish(native, ctx, report, analysed.loaded, preprocess, labels, timings={})


def _finish(native: Any, ctx: PassContext, report: dict[str, Any],
            loaded: model_io.LoadedModel, preprocess: Preprocess | None,
            labels: list[str] | None, timings: dict[str, float]) -> InsertResult:
    """The `InsertResult` of a pipeline run: what it recorded, what the passes did."""
    if preprocess is not None or labels is not None:
        report["model_info"] = _record(native, ctx, preprocess, labels)
    report.update(status="inserted", **_inserted(ctx, ctx.backend.outputs(native)),
                  timings={**timings, **{k: round(v, 4) for k, v in ctx.timings.items()}})
    return InsertResult(native, report, loaded, ctx.backend)


def _already_augmented(report: dict[str, Any], stamp: Stamp, manager: PassManager,
                       loaded: model_io.LoadedModel, backend: Backend,
                       load_time: float) -> InsertResult:
    """The model unchanged, its report saying it is already augmented (by the stamped
    method); `BadInputError` when it was made by another pipeline than `manager`'s."""
    _refuse_other(stamp, manager, loaded)
    native = loaded.model
    report.update(
        method=stamp.method,
        status="already-augmented",
        stamp=_readable(stamp),
        outputs=[p.as_dict() for p in backend.outputs(native)],
        timings={"load": load_time},
    )
    return InsertResult(native, report, loaded, backend)


def _record(native: Any, ctx: PassContext, preprocess: Preprocess | None,
            labels: list[str] | None) -> dict[str, Any]:
    """Write `preprocess` and `labels` into `native`'s metadata; what was written. With
    them, `model_type`: the model's own, else `Classification` for a classifier (what the
    OpenVINO Model API's `create_model` reads to pick its wrapper)."""
    classes = ctx.target.num_classes if ctx.target is not None else None
    if labels is not None and classes is not None and len(labels) != classes:
        raise BadInputError(f"{len(labels)} class names to record (--labels, else the "
                            f"model's own) but the model has {classes} classes")
    # The task where the Model API reads it (an ONNX model read by OpenVINO keeps its own
    # in rt_info `framework`, which an IR written from it does not carry to `model_info`).
    task = model_info.metadata(native).get("model_type") or None
    if task is None and ctx.target is not None and ctx.target.detector is None:
        task = CLASSIFICATION_TASK
    model_info.write(native, preprocess, labels, task=task)
    return {"preprocess": preprocess.as_dict() if preprocess is not None else None,
            "labels": len(labels) if labels is not None else None}


_NOT_OPTIONS = ("channels-first", "validate", "sanity")  # a follow-up; checks of the result


def _refuse_other(stamp: Stamp, manager: PassManager, loaded: model_io.LoadedModel) -> None:
    """Raise when the stamped pipeline is not the one `manager` would run (the channels-first
    follow-up and validation aside)."""
    def made(passes: Sequence[Pass]) -> list[Pass]:
        return [p for p in passes if p.name not in _NOT_OPTIONS]

    if made(parse(stamp.pipeline).passes) == made(manager.passes):
        return
    name = loaded.path.name if loaded.path is not None else "the model"
    raise BadInputError(
        f"{name} is already augmented by xaigraph {stamp.fields['version']} "
        f"({stamp.pipeline}); this run asks for {manager.text()}: pass --replace to replace "
        "that explanation with this one"
    )


def _readable(stamp: Stamp) -> dict[str, str]:
    """The stamp's fields for a report: all but the undo record."""
    return {k: v for k, v in stamp.fields.items() if k != UNDO_KEY}


def strip(model: ModelLike, *, validate: bool = True, samples: Sequence[np.ndarray] = (),
          output_format: str | None = None) -> InsertResult:
    """Return the original model an augmented `model` was made from: the outputs the stamp
    says were added and every op only they needed removed, the original ops and edges the
    insertion removed or rewired put back, the stamp removed. With `validate`, the result
    runs beside `model` on seeded inputs (and `samples`): every original output must be the
    same (`ValidationError` otherwise). `BadInputError` when `model` carries no whole stamp.
    Paths, formats and `save` as for `insert`."""
    start = time.perf_counter()
    loaded, backend = _load(model, output_format)
    native = loaded.model
    stamp = stamp_mod.read(backend, native)
    if stamp is None:
        why = stamp_mod.problem(backend, native) or "it has no xaigraph stamp"
        raise BadInputError(f"{loaded.path.name if loaded.path else 'the model'} is not "
                            f"augmented by xaigraph ({why}); nothing to strip")
    plain = strip_loaded(loaded, backend, stamp)
    report: dict[str, Any] = {
        **_source(loaded, backend),
        "status": "stripped",
        "stamp": _readable(stamp),
        "removed_outputs": list(stamp.outputs),
        "outputs": [p.as_dict() for p in backend.outputs(plain)],
        "validation": {"passed": None, "skipped": True},
    }
    if validate:
        runs = check_stripped(backend, plain, native, samples)
        report["validation"] = {"passed": True, "runs": [r.as_dict() for r in runs]}
    report["timings"] = {"total": round(time.perf_counter() - start, 4)}
    return InsertResult(plain, report, loaded, backend)


def _inserted(ctx: PassContext, ports: Sequence[Any]) -> dict[str, Any]:
    """The report's fields on what the pipeline did, from what its passes recorded."""
    target, record = ctx.target, ctx.insert
    assert target is not None and record is not None  # the pipeline ran insert-saliency
    outputs = [p.as_dict() for p in ports]
    check = record.self_check
    return dict(
        pipeline=ctx.pipeline_text(),
        target={
            "name": target.name,
            "shape": _shape_text(target.shape),
            "declared_shape": _shape_text(record.declared_shape),
            "forced": target.forced,
            **_branches(target),
        },
        form=record.text,
        **({"self_check": check.as_dict()} if check is not None else {}),
        outputs=outputs,
        saliency_map=next(o for o in outputs if o["name"] == "saliency_map"),
        **({"feature_vector": {**next(o for o in outputs if o["name"] == FEATURE_OUTPUT),
                               **ctx.feature.as_dict()}} if ctx.feature is not None else {}),
        validation=(ctx.validation.as_dict() if ctx.validation is not None
                    else {"passed": None, "skipped": True}),
        sanity=ctx.sanity if ctx.sanity is not None else {"skipped": True},
    )


def _branches(target: Target) -> dict[str, Any]:
    """`branches`: every branch's token map (name, grid) when the model has several."""
    if not target.branches:
        return {}
    return {"branches": [{"name": br.name, "grid": f"{br.tokens.height}x{br.tokens.width}"}
                         for br in target.branches]}


def save(result: InsertResult, out: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write the augmented model to `out` atomically: IR for `.xml` (with its `.bin`), ONNX
    for `.onnx`. The suffix must match the result's format."""
    inputs = result.source.files if result.source is not None else []
    path = model_io.check_output_path(out, force=force, inputs=inputs, force_hint="force=True")
    if backend_for_path(path) != result.backend.name:
        raise BadInputError(
            f"{path.name}: this result is {result.backend.name} and is written with suffix "
            f"{result.backend.suffix}"
        )
    result.backend.save(result.model, path)
    return path


def inspect(model: ModelLike, target_layer: str | None = None,
            num_anchors: int | None = None, class_output: str | None = None) -> dict[str, Any]:
    """Inputs, outputs, the target, its head, other candidates, and which methods apply.

    Runs the analysis passes `insert` starts with (detect-target, and channels-first when
    the target map is channels-last) on a clone of the model, and reports what they found.
    An augmented model is analysed without its explanation (a stripped clone); its stamp is
    reported (`stamp`, and `stamp_text` to read), or why `xai` metadata is not a stamp
    (`stamp_problem`). A model without a target (no spatial feature map, and no
    `target_layer` given) is reported too: `target` None, `target_problem` why, every
    method's reason, and its class scores when an output holds them."""
    onnx_in = isinstance(model, onnx.ModelProto) or (
        isinstance(model, str | os.PathLike) and str(model).lower().endswith(".onnx"))
    loaded, backend = _load(model, "onnx" if onnx_in else None)
    native = loaded.model
    stamp = stamp_mod.read(backend, native)
    plain = backend.clone(native) if stamp is None else strip_loaded(loaded, backend, stamp)
    info: dict[str, Any] = {
        "model": str(loaded.path) if loaded.path else None,
        "inputs": [p.as_dict() for p in backend.inputs(native)],
        "outputs": [p.as_dict() for p in backend.outputs(native)],
        **_stamp_info(backend, native, stamp),
    }
    ctx = PassContext(backend=backend, original=plain)
    try:
        clone = analysis_pipeline(target_layer, num_anchors, class_output).run(plain, ctx)
    except TargetError as exc:
        signals.check()  # an interrupted run ends here, never goes on another way
        if target_layer is not None:
            raise
        return {**info, **_without_target(ctx.view(plain), class_output, str(exc))}
    return {**info, **_analysed(ctx, ctx.view(clone))}


def _analysed(ctx: PassContext, view: GraphView) -> dict[str, Any]:
    """inspect's fields on the target the analysis found."""
    target, head = ctx.target, ctx.head
    assert target is not None and head is not None
    info: dict[str, Any] = {"probe_input_shapes": [list(s) for s in ctx.probe_inputs]}
    if ctx.channels_last is not None:
        info["channels_last"] = (f"{ctx.channels_last}; insert explains it through a "
                                 "Transpose to [N, C, H, W] (and one back)")
    if target.detector is not None:
        info["detector"] = target.detector.describe()
    info["classification_output"] = view.describe(target.output)
    info["class_scores"] = _describe_scores(view, target)
    info["num_classes"] = target.num_classes
    info["target"] = {
        "name": target.name,
        "kind": target.kind,
        "shape": _shape_text(target.shape),
        "type": view.ops[target.value.op].type,
        "forced": target.forced,
        **_branches(target),
    }
    info["head"] = head.describe_ops(view)
    info["candidates"] = [
        {"name": c.name, "shape": _shape_text(c.shape), "reason": c.reason or "chosen"}
        for c in target.candidates
    ]
    info["methods"] = _methods(view, target, head)
    return info


def _without_target(view: GraphView, class_output: str | None, problem: str
                    ) -> dict[str, Any]:
    """inspect's fields for a model no in-graph method reads: why, and its class scores
    when an output holds them (what a black-box method explains)."""
    info: dict[str, Any] = {"target": None, "target_problem": problem, "head": [],
                            "candidates": [], "num_classes": None}
    found = classification_output_if_any(view, class_output)
    if found is not None:
        _, value, k = found
        info["classification_output"] = view.describe(value)
        info["class_scores"] = view.describe(value)
        info["num_classes"] = k
    info["methods"] = {name: {"applies": False, "reason": "no target (above)"}
                       for name in METHODS}
    return info


def _stamp_info(backend: Backend, model: Any, stamp: Stamp | None) -> dict[str, Any]:
    """inspect's `stamp` (fields), `stamp_text` (lines to read) and `stamp_problem`."""
    if stamp is None:
        problem = stamp_mod.problem(backend, model)
        return {"stamp": None, **({"stamp_problem": problem} if problem else {})}
    text = [stamp.describe(), f"pipeline {stamp.pipeline}"]
    if stamp.fields.get(SANITY_KEY):
        text.append("sanity " + describe_sanity(stamp.fields[SANITY_KEY]))
    return {"stamp": _readable(stamp),
            "stamp_text": [*text, "analysed below without it: the original model"]}


def _methods(view: GraphView, target: Target, head: Head) -> dict[str, dict[str, Any]]:
    """Per method: whether it applies, and how it would be built or why not."""
    methods: dict[str, dict[str, Any]] = {}
    for name, m in METHODS.items():
        reason = why_not(m, view, target, head)
        methods[name] = (
            {"applies": True, "form": m.form(view, target, head)}
            if reason is None
            else {"applies": False, "reason": reason}
        )
    return methods


def _describe_scores(view: GraphView, target: Target) -> str:
    if target.scores == target.output:
        return f"{view.describe(target.scores)} (the output itself)"
    readers = [view.ops[c].type for c, _ in view.consumers(target.scores)
               if view.ops[c].kind == "score"]
    final = readers[0] if readers else "activation"
    return f"{view.describe(target.scores)} (input of the final {final})"


def load_samples(paths: Sequence[str | os.PathLike[str]],
                 model: ModelLike | None = None) -> list[np.ndarray]:
    """Read sample inputs: `.npy` arrays, or images made into the input of `model` with its
    recorded preprocessing (see `xaigraph.samples`). Anything else is a `SampleError`."""
    if model is None:
        return [s.array for s in read_samples([Path(p) for p in paths])]
    loaded, backend = _load(model, None)
    return [s.array for s in read_samples([Path(p) for p in paths], backend, loaded.model)]

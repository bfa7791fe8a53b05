"""The per-batch functions both engines run: `decode`, `Explainer`, `write` (docs/runtime.md).

    spec = prepare("model.onnx", method="auto", targets="topk:3")   # once, on the driver
    explainer = Explainer(spec)                                      # once per actor / run
    decoded = decode(item, spec.preprocess)                          # worker thread / task
    out = explainer(batch([decoded]))                                # a batch dict in and out
    record = write(decoded, unbatch(out)[0], spec, out_dir)          # worker thread / task

`prepare` reads the model and decides what to run: an augmented model (recognised by its
stamp) is run as it is, its `saliency_map` (and `saliency_classes`) used as they are; a plain
model is augmented in memory with `xaigraph.insert` (nothing is written next to it), with the
in-graph `targets` when that computes fewer maps. The `ExplainSpec` it returns is plain,
picklable data (the augmented model as serialised bytes), so that a Ray actor can build its
`Explainer` from it; an `Explainer` compiles the model once in `__init__`.

Batch dict in: `index` `[B]` int64, `input` `[B, C, H, W]` (or NHWC). Batch dict out:
`index`, `scores` `[B, K]` float32 class probabilities, `targets` `[B, T]` int64 (-1
padding), `maps` `[B, T, h, w]` float32 in 0..1, `raw` `[B, T, h, w]` float32 with
`spec.raw` (the maps as the model gave them), `seconds` `[B]` float64 (inference time per
image).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from xaigraph.errors import BadInputError, MethodError, XaiGraphError, file_error
from xaigraph.explain import methods
from xaigraph.explain.io.record import Prediction, Record
from xaigraph.explain.io.record import Target as MapTarget
from xaigraph.explain.io.rundir import image_error, write_file
from xaigraph.explain.targets import Boxes, Classes, Outputs, Predicted, Target, parse
from xaigraph.preprocess import Preprocess

__all__ = [
    "PRECISIONS",
    "Decoded",
    "DetectorMethodError",
    "ExplainSpec",
    "Explainer",
    "batch",
    "decode",
    "file_safe",
    "prepare",
    "unbatch",
    "write",
]

log = logging.getLogger(__name__)

# OpenVINO inference precisions; "auto" is the device's default (bf16 on CPUs with AMX or
# AVX512-BF16, f32 elsewhere). f32 is the default: maps equal to the reference's.
PRECISIONS = ("f32", "bf16", "f16", "auto")
TOP_PREDICTIONS = 5
_EPS = 1e-12


# -- the spec -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExplainSpec:
    """What to run and how to write it; picklable (see the module's docstring).

    `payload` is the in-memory augmented model (`("onnx", bytes)` or `("ir", xml, bin)`);
    empty when the model file is run as it is (an augmented model, or a black-box method).
    """

    model: str
    sha256: str
    runtime: str
    method: str
    method_reason: str
    targets: Target | Boxes  # xaigraph.explain.targets; a black-box detector's: Boxes
    preprocess: Preprocess
    labels: tuple[str, ...] | None
    num_classes: int
    class_output: int
    activation: str | None  # "softmax", "log_softmax", "sigmoid" ending the class output
    detector: bool
    input_name: str
    static_batch: int | None  # the model's fixed batch, None when dynamic
    augmented: bool  # MODEL came augmented (its stamp)
    target_layer: str | None = None
    pipeline: str | None = None
    scaling: str = "minmax-u8"
    classes_output: bool = False  # the model has `saliency_classes`
    payload: tuple[Any, ...] = ()
    batch_size: int = 8
    requests: int = 0  # OpenVINO infer requests (0: its optimal number)
    raw: bool = False
    overlay: bool = True
    colormap: str = "jet"
    opacity: float = 0.5
    blackbox: Any = None  # BlackBoxOptions of a black-box method
    detector_reader: str | None = None  # black-box detector: its reader (detections.READERS)
    precision: str = "f32"  # OpenVINO's inference precision (PRECISIONS)

    @property
    def method_info(self) -> methods.MethodInfo:
        """The method's entry in the registry (`xaigraph.explain.methods`)."""
        return methods.get(self.method)

    @property
    def white_box(self) -> bool:
        return self.method_info.in_graph

    @property
    def blackbox_options(self) -> Any:
        """The black-box method's `BlackBoxOptions` (their defaults when none were given)."""
        from xaigraph.explain.blackbox import BlackBoxOptions

        return self.blackbox if self.blackbox is not None else BlackBoxOptions()

    @property
    def hint(self) -> str | None:
        """OpenVINO's INFERENCE_PRECISION_HINT (None: the device's default)."""
        return None if self.precision == "auto" else self.precision

    @property
    def class_free(self) -> bool:
        return not self.method_info.per_class

    @property
    def batch(self) -> int:
        """Images per batch: one for a black-box method (its batches are of masks, and a
        done image is written, shown and resumable at once), the fixed batch of a static
        model, else `batch_size`."""
        if not self.white_box:
            return 1
        return self.static_batch if self.static_batch is not None else self.batch_size

    def label(self, index: int) -> str:
        if self.labels is not None and 0 <= index < len(self.labels):
            return self.labels[index]
        return f"class {index}"

    def card(self) -> dict[str, Any]:
        """run.json's model card and options (without the digest); `detector_output` (the
        reader) for a black-box detector only, so that other runs keep their digest."""
        from xaigraph.version import __version__

        card: dict[str, Any] = {
            "model": {"path": self.model, "sha256": self.sha256, "augmented": self.augmented},
            "method": {"name": self.method, "why": self.method_reason},
            "target_layer": self.target_layer,
            "pipeline": self.pipeline,
            "xaigraph_version": __version__,
            "runtime": self.runtime,
            "preprocessing": self.preprocess.as_dict(),
            "labels": list(self.labels) if self.labels is not None else None,
            "num_classes": self.num_classes or None,
            "options": {
                "targets": self.targets.text(),
                "raw": self.raw,
                "overlay": self.overlay,
                "colormap": self.colormap,
                "opacity": self.opacity,
                "blackbox": (self.blackbox.settings(self.method)
                             if self.blackbox is not None and not self.white_box else None),
            },
        }
        if self.precision != "f32":  # f32 runs keep the digest they had before the option
            card["options"]["precision"] = self.precision
        if self.detector_reader is not None:
            card["detector_output"] = self.detector_reader
            if self.blackbox is not None:
                card["options"]["blackbox"]["score_threshold"] = self.blackbox.score_threshold
        return card


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _model_sha256(path: Path) -> str:
    """The digest of the model's files (an IR's .xml and .bin together)."""
    if path.suffix.lower() == ".xml":
        h = hashlib.sha256()
        for p in (path, path.with_suffix(".bin")):
            if p.exists():
                h.update(sha256_file(p).encode())
        return h.hexdigest()
    return sha256_file(path)


@dataclass
class _Analysis:
    stamp: Any
    kind: str | None  # "map", "tokens", "detector"; None when no target was found
    target_layer: str | None
    class_output: int
    activation: str | None
    num_classes: int | None
    applies: dict[str, str | None]  # method -> why it does not apply (None: it does)
    problem: str | None  # why no target was found


def _final_activation(view: Any, out: Any) -> str | None:
    """The Softmax / LogSoftmax / Sigmoid the class output ends in (through reshapes)."""
    v = out
    while True:
        op = view.ops[v.op]
        if op.kind == "score":
            return str(op.neutral)
        if op.kind == "shape" and op.inputs:
            v = op.inputs[0]
            continue
        return None


def _analyse(loaded: Any, class_output: str | None, target_layer: str | None) -> _Analysis:
    """What `inspect` finds, as data: the stamp, the target, the class output and its final
    activation, which methods apply."""
    from xaigraph import stamp as stamp_mod
    from xaigraph.backends import get_backend
    from xaigraph.methods import METHODS
    from xaigraph.methods.base import why_not
    from xaigraph.passes import analysis_pipeline
    from xaigraph.pipeline import PassContext
    from xaigraph.stripping import strip_loaded

    backend = get_backend(loaded.backend, loaded.external_data)
    native = loaded.model
    stamp = stamp_mod.read(backend, native)
    plain = backend.clone(native) if stamp is None else strip_loaded(loaded, backend, stamp)
    ctx = PassContext(backend=backend, original=plain)
    try:
        clone = analysis_pipeline(target_layer, None, class_output).run(plain, ctx)
    except XaiGraphError as exc:
        if target_layer is not None:
            raise
        return _without_target(ctx.view(plain), class_output, stamp, str(exc))
    target, head = ctx.target, ctx.head
    assert target is not None and head is not None
    view = ctx.view(clone)
    applies = {name: why_not(m, view, target, head) for name, m in METHODS.items()}
    return _Analysis(stamp, target.kind, target.name, target.output_index,
                     _final_activation(view, target.output), target.num_classes, applies, None)


def _without_target(view: Any, class_output: str | None, stamp: Any,
                    problem: str) -> _Analysis:
    """A model no white-box method reads (no target found): its class output still names
    the classes a black-box method explains, when an output holds class scores."""
    from xaigraph.target import classification_output

    try:
        index, value, k = classification_output(view, class_output)
    except XaiGraphError:
        if class_output is not None:
            raise
        return _Analysis(stamp, None, None, 0, None, None, {}, problem)
    return _Analysis(stamp, None, None, index, _final_activation(view, value), k, {}, problem)


class Cancelled(XaiGraphError):
    """An image given up because its run was stopped (never reported: the run's stop is)."""


class DetectorMethodError(MethodError):
    """A white-box method named for a detector it does not apply to (eval refuses
    detectors on this, without reading the model again)."""


def _choose(method: str, analysis: _Analysis) -> tuple[str, str]:
    """(method, why) for `--method` (`auto` or a name) on a plain model: the registry's
    auto pick for the target's kind when it applies, else its black-box fallback."""
    if method != "auto":
        if methods.get(method).black_box:
            return method, "--method"
        if analysis.kind is None:
            raise MethodError(f"--method {method}: {analysis.problem}")
        reason = analysis.applies.get(method)
        if reason is not None:
            error = DetectorMethodError if analysis.kind == "detector" else MethodError
            raise error(f"--method {method} does not apply to this model: {reason}")
        return method, "--method"
    fallback = methods.auto_fallback()
    if analysis.kind is None:
        return fallback.name, (f"auto: no white-box method applies ({analysis.problem}); "
                               f"black-box {fallback.title}")
    chosen = methods.auto_pick(analysis.kind).name
    reason = analysis.applies.get(chosen)
    if reason is None:
        return chosen, (f"auto: {methods.TARGET_KINDS[analysis.kind]} "
                        f"(target {analysis.target_layer})")
    return fallback.name, f"auto: {chosen} does not apply ({reason}); black-box {fallback.title}"


def _serialise(model: Any) -> tuple[Any, ...]:
    """An augmented in-memory model as bytes a `Session` can be opened from."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return ("onnx", model.SerializeToString())
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="xaigraph-explain-") as tmp:
        xml = Path(tmp) / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        return ("ir", xml.read_bytes(), xml.with_suffix(".bin").read_bytes())


def _native(spec: ExplainSpec) -> Any:
    """What `Session.open` compiles for `spec`."""
    if not spec.payload:
        return Path(spec.model)
    if spec.payload[0] == "onnx":
        import onnx

        return onnx.load_from_string(spec.payload[1])
    import openvino as ov

    from xaigraph.model_io import core

    weights = ov.Tensor(np.frombuffer(spec.payload[2], dtype=np.uint8).copy())
    return core().read_model(spec.payload[1].decode("utf-8"), weights)


def _labels(analysis_labels: list[str] | None, labels_file: Path | None,
            num_classes: int | None) -> tuple[str, ...] | None:
    """`--labels FILE` (one a line), else the model's labels, else ImageNet's for K = 1000,
    else None (files then name classes by index)."""
    from xaigraph.labels import IMAGENET_CLASSES, imagenet_labels

    if labels_file is not None:
        from xaigraph.labels import read_labels_file

        names = read_labels_file(labels_file)
        if num_classes is not None and len(names) != num_classes:
            raise BadInputError(f"--labels {labels_file}: {len(names)} names for a model of "
                                f"{num_classes} classes")
        return tuple(names)
    if analysis_labels:
        return tuple(analysis_labels)
    if num_classes == IMAGENET_CLASSES:
        return tuple(imagenet_labels())
    return None


def _model_info(native: Any) -> tuple[Preprocess | None, list[str] | None]:
    """The preprocessing the model records (else its input's size and layout), and its
    labels (`xaigraph.model_info`)."""
    from xaigraph import model_info

    info = model_info.read(native)
    return info.preprocess or info.input, info.labels


def _overridden(base: Preprocess | None, flags: dict[str, Any] | None) -> Preprocess | None:
    """`base` with the preprocessing flags given (`model_info.from_flags`)."""
    if not flags or all(v is None for v in flags.values()):
        return base
    from xaigraph import model_info

    return model_info.from_flags(base, **flags)


def _input_preprocess(preprocess: Preprocess | None, dims: tuple[int | None, ...] | None
                      ) -> Preprocess:
    """The given preprocessing, else one sized to the model input (stretch, pixels 0..1)."""
    if preprocess is not None:
        return preprocess
    if dims is None or len(dims) != 4:
        raise BadInputError("the model's input is not an image [N, C, H, W]; give the "
                            "preprocessing (--size ...)")
    nhwc = dims[3] in (1, 3) and dims[1] not in (1, 3)
    h, w = (dims[1], dims[2]) if nhwc else (dims[2], dims[3])
    if h is None or w is None:
        raise BadInputError("the model's input size is dynamic; give it (--size H,W)")
    return Preprocess(size=(h, w), resize="stretch", scale=1 / 255,
                      layout="NHWC" if nhwc else "NCHW")


def prepare(
    model: str | os.PathLike[str],
    *,
    method: str = "auto",
    targets: str | Target | Boxes = "predicted",
    runtime: str | None = None,
    preprocess: Preprocess | None = None,
    preprocess_flags: dict[str, Any] | None = None,
    labels: str | os.PathLike[str] | None = None,
    class_output: str | None = None,
    target_layer: str | None = None,
    batch_size: int = 8,
    raw: bool = False,
    overlay: bool = True,
    colormap: str = "jet",
    opacity: float = 0.5,
    blackbox: Any = None,
    precision: str = "f32",
) -> ExplainSpec:
    """Read `model`, choose the method, augment a plain model in memory; the `ExplainSpec`.

    `runtime`: "openvino" (default for `.xml`; also runs `.onnx`) or "onnxruntime"
    (default for `.onnx`). `preprocess`: None for the model's own (its `model_info`, else
    sized to its input); `preprocess_flags`: keyword arguments of `model_info.from_flags`
    applied over it. `targets`: `--targets` text (`targets.parse`) or a target object.
    `labels`: a file of class names, one a line. `blackbox`: the
    `BlackBoxOptions` of a black-box method. `precision`: OpenVINO's inference precision,
    one of `PRECISIONS` ("auto": the device's default; bf16 on CPUs that have it).
    """
    from xaigraph import api, model_io
    from xaigraph.explain.render import COLORMAPS

    path = Path(model)
    if not path.exists():
        raise BadInputError(f"model not found: {path}")
    if colormap not in COLORMAPS:
        raise BadInputError(f"unknown colormap '{colormap}'; use one of {', '.join(COLORMAPS)}")
    if not 0.0 <= opacity <= 1.0:
        raise BadInputError(f"--opacity {opacity}: give a number from 0 to 1")
    if batch_size < 1:
        raise BadInputError("--batch-size must be at least 1")
    onnx_file = path.suffix.lower() == ".onnx"
    engine_given = runtime is not None
    if precision not in PRECISIONS:
        raise BadInputError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if runtime is None:  # a precision other than f32 is OpenVINO's: it picks the engine
        runtime = "onnxruntime" if onnx_file and precision == "f32" else "openvino"
    if runtime not in ("openvino", "onnxruntime"):
        raise BadInputError(f"unknown runtime '{runtime}'; use openvino or onnxruntime")
    if runtime == "onnxruntime" and precision != "f32":
        raise BadInputError(f"--precision {precision} is OpenVINO's; ONNX Runtime runs f32")
    if runtime == "onnxruntime" and not onnx_file:
        raise BadInputError(f"ONNX Runtime runs .onnx models only, not {path.name}")
    fmt = "onnx" if runtime == "onnxruntime" else "ir"
    loaded = model_io.load_model(path, "onnx" if onnx_file else "ir")
    analysis = _analyse(loaded, class_output, target_layer)
    recorded, model_labels = _model_info(loaded.model)
    preprocess = _overridden(preprocess or recorded, preprocess_flags)
    names = _labels(model_labels, Path(labels) if labels is not None else None,
                    analysis.num_classes)
    wanted: Target | Boxes = parse(targets, names) if isinstance(targets, str) else targets
    if isinstance(wanted, Classes) and analysis.num_classes is not None:
        bad = [c for c in wanted.indices if c >= analysis.num_classes]
        if bad:
            given = targets if isinstance(targets, str) else wanted.text()
            raise BadInputError(f"--targets '{given}': class {bad[0]} is out of range (the "
                                f"model has {analysis.num_classes} classes)")

    stamp = analysis.stamp
    payload: tuple[Any, ...] = ()
    pipeline = None
    classes_output = False
    scaling = "minmax-u8"
    if method != "auto":
        methods.get(method)  # an unknown name: one line naming the choices
    if stamp is not None:
        if method not in ("auto", stamp.method):
            raise BadInputError(f"{path.name} is augmented with {stamp.method}; --method "
                                f"{method} needs the plain model (xaigraph strip)")
        chosen, why = stamp.method, f"the model's stamp ({stamp.describe()})"
        pipeline = stamp.pipeline
        scaling = stamp.fields["scaling"]
        classes_output = len(stamp.outputs) == 2
        layer = stamp.fields["target_layer"]
    else:
        chosen, why = _choose(method, analysis)
        layer = analysis.target_layer
        info = methods.get(chosen)
        if info.black_box and not engine_given:
            runtime = "openvino"  # the faster engine for thousands of small runs (README)
        if info.in_graph:
            result, in_graph = _augment(path, chosen, wanted, raw, fmt, analysis, class_output,
                                        target_layer, api)
            payload = _serialise(result.model)
            pipeline = result.report.get("pipeline")
            scaling = "none" if raw else "minmax-u8"
            classes_output = in_graph
            layer = result.report.get("target", {}).get("name", layer)
    reader = None
    info = methods.get(chosen)
    if stamp is None and info.black_box:
        reader = _detector_reader(loaded, blackbox, analysis, path.name)
    if reader is not None:
        over = info.detector_title
        why = f"{why}; a detector ({reader} outputs){f': {over}' if over else ''}"
        from xaigraph.explain.blackbox import BlackBoxOptions

        options = blackbox if blackbox is not None else BlackBoxOptions()
        wanted = Boxes.of(wanted, options.score_threshold)
    spec_native_dims = _input_dims(loaded)
    static = spec_native_dims[0] if spec_native_dims and spec_native_dims[0] else None
    num_classes = analysis.num_classes
    if num_classes is None and reader is None:
        raise BadInputError(f"{path.name}: no classification output found "
                            f"({analysis.problem}); name it with --class-output")
    sized = _input_preprocess(preprocess, spec_native_dims)
    if info.black_box:
        from xaigraph.explain.blackbox import BlackBoxOptions

        (blackbox or BlackBoxOptions()).check(info.masks, sized.size)
    return ExplainSpec(
        model=str(path), sha256=_model_sha256(path), runtime=runtime, method=chosen,
        method_reason=why, targets=wanted,
        preprocess=sized, labels=names,
        num_classes=num_classes or 0, class_output=analysis.class_output,
        activation=analysis.activation, detector=analysis.kind == "detector" or bool(reader),
        input_name=_input_name(loaded), static_batch=static, augmented=stamp is not None,
        target_layer=layer, pipeline=pipeline, scaling=scaling, classes_output=classes_output,
        payload=payload, batch_size=batch_size, raw=raw, overlay=overlay, colormap=colormap,
        opacity=opacity, blackbox=blackbox, detector_reader=reader, precision=precision,
    )


def _output_infos(loaded: Any) -> list[Any]:
    """The model's outputs as `session.TensorInfo`s (what the detector readers look at)."""
    from xaigraph.backends import get_backend
    from xaigraph.session import TensorInfo

    infos = []
    for port in get_backend(loaded.backend, loaded.external_data).outputs(loaded.model):
        names = tuple(n.strip() for n in port.name.split(",") if n.strip()) or (port.name,)
        infos.append(TensorInfo(names[0], names, None, port.dims))
    return infos


def _detector_reader(loaded: Any, options: Any, analysis: _Analysis, name: str) -> str | None:
    """The detector reader of a model a black-box method runs: the one `--detector-output`
    / `--postprocess` force (it must fit), else the one that recognises the outputs; None for
    a classifier. A model that is neither is a `BadInputError` naming the readers."""
    from xaigraph.explain.detections import find_reader

    outputs = _output_infos(loaded)
    forced = options is not None and (options.detector_output or options.postprocess)
    if forced:
        return find_reader(outputs, options.detector_output, options.postprocess).name
    try:
        return find_reader(outputs).name
    except BadInputError as exc:
        if analysis.num_classes is not None:
            return None
        raise BadInputError(f"{name}: no classification output found and {exc}") from exc


def _input_dims(loaded: Any) -> tuple[int | None, ...] | None:
    from xaigraph.backends import get_backend

    ports = get_backend(loaded.backend, loaded.external_data).inputs(loaded.model)
    if len(ports) != 1:
        raise BadInputError(f"explain runs models of one image input; this one has "
                            f"{len(ports)} inputs")
    dims = ports[0].dims
    return tuple(dims) if dims is not None else None


def _input_name(loaded: Any) -> str:
    from xaigraph.backends import get_backend

    return str(get_backend(loaded.backend, loaded.external_data).inputs(loaded.model)[0].name)


def _augment(path: Path, method: str, wanted: Target | Boxes, raw: bool, fmt: str,
             analysis: _Analysis, class_output: str | None, target_layer: str | None,
             api: Any) -> tuple[Any, bool]:
    """The model augmented in memory; whether it carries the in-graph targets."""
    in_graph = (wanted.in_graph() is not None and methods.get(method).per_class
                and analysis.kind != "detector")
    kwargs = dict(scaling=not raw, output_format=fmt, class_output=class_output,
                  target_layer=target_layer)
    if in_graph:
        try:
            return api.insert(path, method, targets=wanted.in_graph(), **kwargs), True
        except XaiGraphError as exc:  # e.g. a head where select-classes does not apply
            log.info("in-graph targets not used (%s); computing every class's map", exc)
    return api.insert(path, method, **kwargs), False


# -- decode -------------------------------------------------------------------------------------

@dataclass
class Decoded:
    """One item decoded and preprocessed (or why it could not be)."""

    item: Any  # xaigraph.explain.inputs.Item
    image: Any = None  # the original as an RGB PIL image
    input: np.ndarray | None = None  # [C, H, W] (or [H, W, C]): one model input
    placement: Any = None  # Preprocess.placement of the original
    error: str | None = None
    seconds: float = 0.0

    @property
    def width(self) -> int:
        return int(self.image.size[0]) if self.image is not None else 0

    @property
    def height(self) -> int:
        return int(self.image.size[1]) if self.image is not None else 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def decode(item: Any, preprocess: Preprocess) -> Decoded:
    """Read and preprocess one item; a file that is not a readable image gives a `Decoded`
    with `error` (one line) instead of an exception."""
    from xaigraph.explain import images

    start = time.perf_counter()
    try:
        image = item.image if getattr(item, "image", None) is not None else images.load(
            item.path)
        x = preprocess.apply(image)[0]
        placement = preprocess.placement(*image.size)
    except (XaiGraphError, OSError, ValueError, SyntaxError, MemoryError) as exc:
        message = _one_line(exc)
        if not isinstance(exc, XaiGraphError):
            message = f"{item.path}: cannot read the image: {message}"
        return Decoded(item, error=message, seconds=time.perf_counter() - start)
    except Exception as exc:  # Pillow raises many types for broken files
        return Decoded(item, error=f"{item.path}: cannot read the image: {_one_line(exc)}",
                       seconds=time.perf_counter() - start)
    return Decoded(item, image, x, placement, seconds=time.perf_counter() - start)


def batch(decoded: Sequence[Decoded]) -> dict[str, np.ndarray]:
    """The batch dict of decoded items (all without error)."""
    return {"index": np.asarray([d.item.index for d in decoded], dtype=np.int64),
            "input": np.stack([d.input for d in decoded if d.input is not None])}


def unbatch(out: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One dict per image of a batch dict out: the same keys, each image's row."""
    n = len(out["index"])
    return [{k: v[i] for k, v in out.items()} for i in range(n)]


# -- the explainer ------------------------------------------------------------------------------

def probabilities(logits: np.ndarray, activation: str | None, detector: bool) -> np.ndarray:
    """Class probabilities `[B, K]` from the class output: softmax of logits unless the
    output ends in a Softmax or Sigmoid (LogSoftmax: exp). A detector's `[B, M, K]`: each
    class's best probability over the M anchors."""
    x = np.asarray(logits, dtype=np.float64)
    if activation in ("softmax", "sigmoid"):
        p = x
    elif activation == "log_softmax":
        p = np.exp(x)
    else:
        z = np.exp(x - x.max(axis=-1, keepdims=True))
        p = z / z.sum(axis=-1, keepdims=True)
    if detector and p.ndim == 3:
        p = p.max(axis=1)
    return p.reshape(p.shape[0], -1).astype(np.float32)


def unit_maps(maps: np.ndarray) -> np.ndarray:
    """Maps in 0..1: a u8 map / 255; a float map min-max scaled per `[h, w]` map."""
    if maps.dtype == np.uint8:
        return maps.astype(np.float32) / np.float32(255.0)
    m = maps.astype(np.float64)
    lo = m.min(axis=(-2, -1), keepdims=True)
    hi = m.max(axis=(-2, -1), keepdims=True)
    return ((m - lo) / np.maximum(hi - lo, _EPS)).astype(np.float32)


class Explainer:
    """The model compiled once; a batch dict in, a batch dict out (docs/runtime.md)."""

    def __init__(self, spec: ExplainSpec) -> None:
        from xaigraph.session import Session

        self.spec = spec
        config = {"PERFORMANCE_HINT": "THROUGHPUT"} if spec.runtime == "openvino" else None
        self.session = Session.open(_native(spec), spec.runtime, config=config,
                                    precision=spec.hint)
        outputs: list[int | str] = [spec.class_output]
        if spec.white_box:
            if spec.classes_output:
                outputs.append("saliency_classes")
            outputs.append("saliency_map")
        self.outputs = outputs
        self._black: np.ndarray | None = None
        self._masked: Any = None  # explain.masked.MaskedModel, False when it cannot be used
        # RISE / D-RISE: called with the number of masks of each batch done (a progress bar)
        self.on_masks: Callable[[int], None] | None = None
        # set by an engine that stops the run: a black-box image in progress is given up
        self.cancel = threading.Event()

    def _progress(self, count: int) -> None:
        """The samplers' progress: the masks bar, and the point where a stopped run's
        image in progress is given up."""
        if self.cancel.is_set():
            raise Cancelled("the run was stopped")
        if self.on_masks is not None:
            self.on_masks(count)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.spec.detector_reader is not None:
            return self._detect(batch)
        start = time.perf_counter()
        x = batch["input"]
        outs = self._infer(x)
        return self._finish(batch["index"], x, outs, time.perf_counter() - start)

    def stream(self, batches: Iterable[dict[str, np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        """`self(b)` for each batch in order, with inferences overlapping (OpenVINO's
        asynchronous requests); the batches are read lazily, a few ahead."""
        if not self.spec.white_box or (self.spec.static_batch is not None
                                       and self.spec.static_batch != 1):
            for b in batches:
                yield self(b)
            return
        sent: deque[tuple[dict[str, np.ndarray], float]] = deque()

        def feeds() -> Iterator[list[np.ndarray]]:
            for b in batches:
                sent.append((b, time.perf_counter()))
                yield [b["input"]]

        for outs in self.session.stream(feeds(), self.outputs, self.spec.requests):
            b, started = sent.popleft()
            yield self._finish(b["index"], b["input"], outs, time.perf_counter() - started)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities `[B, K]` of model inputs `x` (the black-box samplers' view)."""
        spec = self.spec
        if spec.static_batch is None:
            logits = self.session.run([x], [spec.class_output])[0]
        else:
            logits = np.concatenate([o[0] for o in self.session.stream(
                ([part] for part in _chunks(x, spec.static_batch)), [spec.class_output],
                spec.requests)])[: len(x)]
        return probabilities(logits, spec.activation, spec.detector)

    def _infer(self, x: np.ndarray) -> list[np.ndarray]:
        spec = self.spec
        if not spec.white_box:
            return [self.predict(x)]
        if spec.static_batch is None:
            return self.session.run([x], self.outputs)
        parts = self.session.run_many(([p] for p in _chunks(x, spec.static_batch)),
                                      self.outputs, spec.requests)
        return [np.concatenate([p[i] for p in parts])[: len(x)]
                for i in range(len(self.outputs))]

    def _finish(self, index: np.ndarray, x: np.ndarray, outs: list[np.ndarray],
                seconds: float) -> dict[str, np.ndarray]:
        spec = self.spec
        n = len(index)
        scores = outs[0] if not spec.white_box else probabilities(
            outs[0], spec.activation, spec.detector)
        classes = outs[1] if spec.white_box and spec.classes_output else None
        chosen = [self._targets(scores[b], None if classes is None else classes[b])
                  for b in range(n)]
        if spec.white_box:
            model_maps = outs[-1]
            per_image = [self._select(model_maps[b], chosen[b][1]) for b in range(n)]
        else:
            sampling = time.perf_counter()
            per_image = [self._blackbox(x[b:b + 1], chosen[b][0]) for b in range(n)]
            seconds += time.perf_counter() - sampling  # the samplers' time is the inference
        t = max((len(c[0]) for c in chosen), default=0)
        h, w = per_image[0].shape[-2:] if per_image and per_image[0].size else (1, 1)
        targets = np.full((n, t), -1, dtype=np.int64)
        raw = np.zeros((n, t, h, w), dtype=np.float32)
        maps = np.zeros((n, t, h, w), dtype=np.float32)
        for b, ((cls, _), m) in enumerate(zip(chosen, per_image, strict=True)):
            targets[b, : len(cls)] = cls
            if len(cls):
                raw[b, : len(cls)] = m.astype(np.float32)
                maps[b, : len(cls)] = unit_maps(m) if spec.white_box else unit_maps(
                    m.astype(np.float32))
        out: dict[str, np.ndarray] = {
               "index": np.asarray(index, dtype=np.int64), "scores": scores.astype(np.float32),
               "targets": targets, "maps": maps,
               "seconds": np.full(n, seconds / max(n, 1), dtype=np.float64)}
        if spec.raw:
            out["raw"] = raw
        return out

    def _targets(self, scores: np.ndarray, classes: np.ndarray | None
                 ) -> tuple[list[int], list[int]]:
        """(target classes, the positions of their maps in the model's maps): `spec.targets`
        over the classes the model has maps of; one map per image: the predicted class."""
        spec = self.spec
        if not spec.method_info.per_class:
            return Predicted().classes(Outputs(scores)), [0]
        available = ([int(c) for c in classes] if classes is not None
                     else list(range(spec.num_classes)))
        out = Outputs(scores, available)
        assert not isinstance(spec.targets, Boxes)
        wanted = spec.targets.classes(out)
        return wanted, out.positions(wanted)

    def _select(self, model_maps: np.ndarray, positions: list[int]) -> np.ndarray:
        """The chosen maps `[T, h, w]` of one image's model maps (`[M, h, w]` or `[h, w]`)."""
        if model_maps.ndim == 2:
            return np.repeat(model_maps[None], len(positions), axis=0)
        return model_maps[positions]

    def _blackbox(self, x: np.ndarray, classes: list[int]) -> np.ndarray:
        """The hook for black-box methods: `blackbox.explain_one` runs the sampler over the
        plain model as a function (`predict`); maps `[T, H, W]` in input pixels."""
        from xaigraph.explain import blackbox

        spec = self.spec
        options = spec.blackbox_options
        found = blackbox.explain_one(x, self.predict, spec.method, options, classes,
                                     baseline=self._baseline(), runner=self._mask_runner(x),
                                     progress=self._progress)
        return np.asarray(found.maps, dtype=np.float32)

    def _mask_runner(self, x: np.ndarray) -> Any:
        """RISE's masks made inside the model (`explain.masked`) when the engine is OpenVINO
        and the model takes them; None: made on the host."""
        spec = self.spec
        if (not spec.method_info.masks or spec.runtime != "openvino"
                or spec.preprocess.layout != "NCHW"):
            return None
        if self._masked is None:
            from xaigraph.explain.masked import MaskedModel
            from xaigraph.model_io import core

            native = _native(spec)
            model = core().read_model(str(native)) if isinstance(native, Path) else native
            if MaskedModel.supports(model) is not None:
                self._masked = False
                return None
            self._masked = MaskedModel(
                model, layout="NCHW", baseline=self._baseline(), output=spec.class_output,
                post=lambda z: probabilities(z, spec.activation, spec.detector),
                precision=spec.hint)
        return self._masked.runner(x) if self._masked else None

    @functools.cached_property
    def _det_predict(self) -> Any:
        """The session as a `DetPredict` (`blackbox.det_predict`), built once."""
        from xaigraph.explain import blackbox

        options = self.spec.blackbox_options
        return blackbox.det_predict(self.session, options, requests=self.spec.requests or None)[0]

    def _detect(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A black-box detector's batch dict out: one map per chosen box; `boxes` `[B, T, 5]`
        x1 y1 x2 y2 score (input pixels, NaN rows pad); `scores` `[B, K]` each label's best
        box score; `targets` the boxes' labels."""
        start = time.perf_counter()
        x = batch["input"]
        n = len(x)
        found = [self._blackbox_detector(x[b:b + 1]) for b in range(n)]
        t = max((len(f[1].classes) for f in found), default=0)
        h, w = next((f[1].maps.shape[1:] for f in found if len(f[1].maps)), (1, 1))
        k = max([int(f[0].labels.max()) + 1 for f in found if len(f[0])] + [1])
        scores = np.zeros((n, k), np.float32)
        targets = np.full((n, t), -1, np.int64)
        boxes = np.full((n, t, 5), np.nan, np.float32)
        raw = np.zeros((n, t, h, w), np.float32)
        for b, (dets, res) in enumerate(found):
            np.maximum.at(scores[b], dets.labels, dets.scores)
            m = len(res.classes)
            targets[b, :m] = res.classes
            if m:
                assert res.boxes is not None
                boxes[b, :m] = res.boxes
                raw[b, :m] = res.maps
        out: dict[str, np.ndarray] = {
            "index": np.asarray(batch["index"], np.int64), "scores": scores,
            "targets": targets, "maps": unit_maps(raw), "boxes": boxes,
            "seconds": np.full(n, (time.perf_counter() - start) / max(n, 1), np.float64)}
        if self.spec.raw:
            out["raw"] = raw
        return out

    def _blackbox_detector(self, x: np.ndarray) -> tuple[Any, Any]:
        """One input's detections (unmasked) and its `BlackBoxResult` (`explain_one` with
        `detector=True`) of the boxes `spec.targets` (a `targets.Boxes`) chooses."""
        from xaigraph.explain import blackbox

        spec = self.spec
        assert isinstance(spec.targets, Boxes)
        dets = self._det_predict(x)[0]
        res = blackbox.explain_one(x, self._det_predict, spec.method, spec.blackbox_options,
                                   spec.targets.select(dets), detector=True,
                                   baseline=self._baseline(), progress=self._progress)
        return dets, res

    def _baseline(self) -> np.ndarray:
        """The model input of a black image (the samplers' masked-out value)."""
        if self._black is None:
            from PIL import Image

            h, w = self.spec.preprocess.size
            self._black = self.spec.preprocess.apply(Image.new("RGB", (w, h)))
        return self._black


def _chunks(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """`x` in batches of exactly `size` (the last one padded by repeating its last image)."""
    for start in range(0, len(x), size):
        part = x[start:start + size]
        if len(part) < size:
            part = np.concatenate([part, np.repeat(part[-1:], size - len(part), axis=0)])
        yield part


# -- write --------------------------------------------------------------------------------------

def file_safe(name: str) -> str:
    """A class name as a file-name part: characters other than letters, digits, `-`, `_`
    and `.` replaced by `_` (`tiger cat` -> `tiger_cat`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def target_files(spec: ExplainSpec, key: str, cls: int, score: float,
                 box: int | None = None) -> dict[str, str | None]:
    """The relative paths of one target's files (docs/runtime.md); a detector's box `box`
    (its position among the image's targets) is in the name, `KEY_CLASS_bBOX_SCORE`, so
    that two boxes of a class do not share files."""
    name = file_safe(spec.labels[cls]) if spec.labels is not None and 0 <= cls < len(
        spec.labels) else str(cls)
    if box is not None:
        name = f"{name}_b{box}"
    stem = f"{key}_{name}_{score:.2f}"
    return {"map": f"maps/{stem}.png",
            "overlay": f"overlays/{stem}.png" if spec.overlay else None,
            "raw": f"raw/{key}_{name}.npy" if spec.raw else None}


def predictions(spec: ExplainSpec, scores: np.ndarray) -> list[dict[str, Any]]:
    top = np.argsort(-scores, kind="stable")[:TOP_PREDICTIONS]
    return [{"class": int(c), "label": spec.label(int(c)), "score": round(float(scores[c]), 4)}
            for c in top]


def ground_truth(item: Any) -> dict[str, Any] | None:
    boxes = getattr(item, "boxes", ())
    labels = getattr(item, "labels", ())
    if not boxes and not labels:
        return None
    return {"boxes": [{"box": [float(v) for v in b.box], "label": b.label, "name": b.name}
                      for b in boxes],
            "labels": list(labels)}


def error_record(item: Any, message: str, run: str) -> Record:
    return Record(int(item.index), str(item.path), item.key, "error", run, error=message)


def write(decoded: Decoded, explained: dict[str, Any], spec: ExplainSpec,
          out_dir: str | os.PathLike[str], run: str = "") -> Record:
    """Render and write one image's maps, overlays and raw maps under `out_dir`; its
    results.jsonl record. `explained` is one image's row of the batch dict out.

    A file of this image that cannot be written for a reason of its own (`image_error`: a
    name too long, ...) makes the record an error record, with the image's files written so
    far removed; a full disk or an unwritable OUT_DIR raises (`FileError`): the run's end."""
    start = time.perf_counter()
    out = Path(out_dir)
    written: list[Path] = []
    try:
        entries = _write_targets(decoded, explained, spec, out, written)
    except _WriteError as failed:
        for path in written:
            path.unlink(missing_ok=True)
        error = file_error(failed.error, out / failed.name, "cannot write")
        if not image_error(failed.error):
            raise error from failed.error
        return error_record(decoded.item, f"{decoded.item.path}: {error}", run)
    item = decoded.item
    boxes = explained.get("boxes")
    top = [Prediction(p["class"], p["label"], p["score"])
           for p in predictions(spec, np.asarray(explained["scores"]))
           if boxes is None or p["score"] > 0]
    return Record(
        int(item.index), str(item.path), item.key, "ok", run, width=decoded.width,
        height=decoded.height, predictions=tuple(top), targets=tuple(entries),
        ground_truth=ground_truth(item), method=spec.method, method_reason=spec.method_reason,
        detector_output=spec.detector_reader, timings={
            "decode": round(decoded.seconds, 4),
            "infer": round(float(explained.get("seconds", 0.0)), 4),
            "write": round(time.perf_counter() - start, 4)})


class _WriteError(Exception):
    """One of an image's files could not be written: its relative name, the `OSError`."""

    def __init__(self, name: str, error: OSError) -> None:
        super().__init__(name, error)
        self.name = name
        self.error = error


def _put(out: Path, name: str, save: Callable[[Path], object], written: list[Path]) -> None:
    try:
        write_file(out / name, save)
    except OSError as exc:
        raise _WriteError(name, exc) from exc
    written.append(out / name)


def _write_targets(decoded: Decoded, explained: dict[str, Any], spec: ExplainSpec, out: Path,
                   written: list[Path]) -> list[MapTarget]:
    """Each target's files written; its entry of the record's `targets`."""
    from xaigraph.explain import render

    item = decoded.item
    scores = np.asarray(explained["scores"])
    targets = [int(c) for c in explained["targets"] if c >= 0]
    boxes = explained.get("boxes")
    entries = []
    for t, cls in enumerate(targets):
        box = None if boxes is None else _original_box(boxes[t], decoded)
        score = float(scores[cls]) if boxes is None else float(boxes[t][4])
        files = target_files(spec, item.key, cls, score, None if boxes is None else t)
        unit = np.asarray(explained["maps"][t])
        coloured = render.colour(unit, decoded.placement, decoded.width, decoded.height,
                                 spec.preprocess.size, spec.colormap)
        _put(out, str(files["map"]), functools.partial(_save_bytes, coloured.png()), written)
        if files["overlay"] is not None:
            blended = render.overlay(decoded.image, coloured, spec.opacity)
            if box is not None:
                render.draw_box(blended, box, f"{spec.label(cls)} {score:.2f}")
            png = render.encode_png(np.asarray(blended), photo=True)
            _put(out, files["overlay"], functools.partial(_save_bytes, png), written)
        if files["raw"] is not None:
            raw = np.asarray(explained["raw"][t], dtype=np.float32)
            _put(out, files["raw"], functools.partial(_save_npy, raw), written)
        entries.append(MapTarget(cls, spec.label(cls), round(score, 4), files["map"],
                              files["overlay"], files["raw"], box))
    return entries


def _original_box(row: np.ndarray, decoded: Decoded) -> list[float]:
    """A `boxes` row (x1 y1 x2 y2 score, input pixels) as [x1, y1, x2, y2] in the original's
    pixels, to 0.01 px."""
    from xaigraph.explain import render

    box = render.box_to_original(row[:4], decoded.placement, decoded.width, decoded.height)
    return [round(v, 2) for v in box]


def _save_bytes(data: bytes, path: Path) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _save_npy(array: np.ndarray, path: Path) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def with_options(spec: ExplainSpec, **changes: Any) -> ExplainSpec:
    """`spec` with some writer options changed (colormap, opacity, overlay)."""
    return replace(spec, **changes)

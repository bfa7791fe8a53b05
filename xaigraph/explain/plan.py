"""The plan of a run: `prepare(model, ...) -> ExplainSpec`, what to run and how to write it.

    spec = prepare("model.onnx", method="auto", targets="topk:3")   # once, on the driver

`prepare` reads the model once and decides what to run: an augmented model (recognised by
its stamp) is run as it is, its `saliency_map` (and `saliency_classes`) used as they are; a
plain model is augmented in memory with `xaigraph.insert` (nothing is written next to it),
with the in-graph `targets` when that computes fewer maps. Every check that can refuse the
run happens here, before anything is written. The `ExplainSpec` is plain, picklable data
(the augmented model as serialised bytes), so that a Ray actor can build its `Explainer`
from it; the run card (`card()`) and its digest are the spec's.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from xaigraph import signals
from xaigraph.errors import BadInputError, MethodError, XaiGraphError
from xaigraph.explain import methods, scales
from xaigraph.explain.targets import (
    All,
    AndTruth,
    Boxes,
    Classes,
    GroundTruth,
    Predicted,
    Target,
    TopK,
    parse,
)
from xaigraph.preprocess import Preprocess

__all__ = ["PRECISIONS", "DetectorMethodError", "ExplainSpec", "model_of", "prepare",
           "sha256_file", "with_options"]

log = logging.getLogger(__name__)


# OpenVINO inference precisions; "auto" is the device's default (bf16 on CPUs with AMX or
# AVX512-BF16, f32 elsewhere). f32 is the default: maps equal to the reference's.
PRECISIONS = ("f32", "bf16", "f16", "auto")




@dataclass(frozen=True)
class ExplainSpec:
    """What to run and how to write it; picklable (see the module's docstring).

    `payload` is the in-memory augmented model (`("model", native)`; pickled as `("onnx",
    bytes)` or `("ir", xml, bin)`);
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
    fixed_classes: tuple[int, ...] | None = None  # the only classes an augmented model maps
    map_scale: str = scales.DEFAULT  # the overlays' colour scale (scales.WRITTEN)
    legend: bool = True  # overlays carry their colour scale in a margin below
    low_confidence: float = scales.LOW_CONFIDENCE  # maps of classes scoring below: marked

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (for Ray's actors): the in-memory model as bytes."""
        state = dict(self.__dict__)
        if self.payload and self.payload[0] == "model":
            state["payload"] = _serialise(self.payload[1])
        return state

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

    @property
    def maps_per_image(self) -> int | None:
        """The maps each image gets at most (None: as many as it has boxes or ground-truth
        classes). A wrong prediction's extra maps (`AndTruth`) are not counted: a few at
        most, the predicted and the ground-truth classes."""
        t = self.targets.base if isinstance(self.targets, AndTruth) else self.targets
        if isinstance(t, TopK | Classes):
            return t.k if isinstance(t, TopK) else len(t.indices)
        if isinstance(t, Predicted) or not self.method_info.per_class:
            return 1
        if isinstance(t, All):
            return len(self.fixed_classes) if self.fixed_classes is not None else (
                self.num_classes)
        return None

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
                "map_scale": self.map_scale,
                "legend": self.legend,
                "low_confidence": self.low_confidence,
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
    analysed: Any = None  # api.Analysed of a plain model, for insert to go on from


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


def _analyse(loaded: Any, fmt: str, class_output: str | None,
             target_layer: str | None) -> _Analysis:
    """What `inspect` finds, as data: the stamp, the target, the class output and its final
    activation, which methods apply. A plain model is analysed in the format `fmt` it is to
    be augmented in (`api.analyse`), so that the augmentation does not analyse it again."""
    from xaigraph import api
    from xaigraph import stamp as stamp_mod
    from xaigraph.backends import get_backend
    from xaigraph.methods import METHODS
    from xaigraph.methods.base import why_not
    from xaigraph.model_io import LoadedModel
    from xaigraph.stripping import strip_loaded

    backend = get_backend(loaded.backend, loaded.external_data)
    stamp = stamp_mod.read(backend, loaded.model)
    subject = _in_format(loaded, fmt) if stamp is None else LoadedModel(
        strip_loaded(loaded, backend, stamp), loaded.path, loaded.backend, loaded.data_files)
    try:
        analysed = api.analyse(subject, target_layer=target_layer, class_output=class_output)
    except XaiGraphError as exc:
        signals.check()  # an interrupted run ends here, never goes on another way
        if target_layer is not None:
            raise
        view = get_backend(subject.backend, subject.external_data).build_view(subject.model)
        return _without_target(view, class_output, stamp, str(exc))
    target, head, view = analysed.ctx.target, analysed.ctx.head, analysed.view
    assert target is not None and head is not None
    applies = {name: why_not(m, view, target, head) for name, m in METHODS.items()}
    return _Analysis(stamp, target.kind, target.name, target.output_index,
                     _final_activation(view, target.output), target.num_classes, applies, None,
                     analysed if stamp is None and subject.backend == fmt else None)


def _in_format(loaded: Any, fmt: str) -> Any:
    """`loaded` as a model of format `fmt` ("ir" or "onnx") when it can be converted in
    memory (an ONNX model without external data, for OpenVINO); else `loaded` itself."""
    from xaigraph.model_io import LoadedModel, ov_from_onnx

    if loaded.backend == fmt or fmt != "ir" or loaded.external_data:
        return loaded
    return LoadedModel(ov_from_onnx(loaded.model), None)


def _without_target(view: Any, class_output: str | None, stamp: Any,
                    problem: str) -> _Analysis:
    """A model no white-box method reads (no target found): its class output still names
    the classes a black-box method explains, when an output holds class scores."""
    from xaigraph.target import classification_output_if_any

    found = classification_output_if_any(view, class_output)
    if found is None:
        return _Analysis(stamp, None, None, 0, None, None, {}, problem)
    index, value, k = found
    return _Analysis(stamp, None, None, index, _final_activation(view, value), k, {}, problem)


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
    return methods.auto_choice(analysis.kind, analysis.applies, analysis.problem,
                               analysis.target_layer)


def _serialise(model: Any) -> tuple[Any, ...]:
    """An augmented in-memory model as bytes a `Session` can be opened from (when a spec is
    pickled for Ray)."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return ("onnx", model.SerializeToString())
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="xaigraph-explain-") as tmp:
        xml = Path(tmp) / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        return ("ir", xml.read_bytes(), xml.with_suffix(".bin").read_bytes())


def model_of(spec: ExplainSpec) -> Any:
    """What `Session.open` compiles for `spec`: the model augmented in memory (in this
    process, or as the bytes it was pickled to), else the file."""
    if not spec.payload:
        return Path(spec.model)
    if spec.payload[0] == "model":
        return spec.payload[1]
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
    """The given preprocessing, else one sized to the model input (stretch, pixels 0..1);
    refused (before anything is written) when it makes inputs of another shape."""
    if preprocess is not None:
        _check_fits(preprocess, dims)
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


def _check_fits(preprocess: Preprocess, dims: tuple[int | None, ...] | None) -> None:
    """`BadInputError` when the inputs `preprocess` makes ([1, C, H, W] or [1, H, W, C])
    cannot be the model's, whose dims (None: dynamic) are `dims`."""
    h, w = preprocess.size
    c = 1 if preprocess.channels == "GRAY" else 3
    made = (1, c, h, w) if preprocess.layout == "NCHW" else (1, h, w, c)
    if dims is None or (len(dims) == 4 and all(
            d is None or d == m for d, m in zip(dims[1:], made[1:], strict=True))):
        return
    shown = ", ".join("?" if d is None else str(d) for d in dims)
    raise BadInputError(f"the preprocessing makes {preprocess.layout} inputs of shape "
                        f"{list(made)} ({preprocess.channels}), but the model's input is "
                        f"[{shown}]: check --size, --layout and the channels")


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
    map_scale: str = scales.DEFAULT, legend: bool = True,
    low_confidence: float = scales.LOW_CONFIDENCE, truth: bool = False,
) -> ExplainSpec:
    """Read `model`, choose the method, augment a plain model in memory; the `ExplainSpec`.

    `runtime`: "openvino" (default for `.xml`; also runs `.onnx`) or "onnxruntime" (default
    for `.onnx`). `preprocess`: None for the model's own (its `model_info`, else sized to its
    input), `preprocess_flags` (`model_info.from_flags`) over it. `targets`: `--targets`
    text or a target object. `labels`: a file of class names, one a line. `blackbox`: a
    black-box method's `BlackBoxOptions`. `precision`: in `PRECISIONS`. `truth`: `_wanted`."""
    from xaigraph import model_io

    path = Path(model)
    _check_writing(path, colormap, opacity, batch_size, map_scale, low_confidence)
    given, runtime = runtime, _runtime(path, runtime, precision)
    loaded = model_io.load_model(path, "onnx" if path.suffix.lower() == ".onnx" else "ir")
    analysis = _analyse(loaded, _format(method, path, runtime), class_output, target_layer)
    recorded, model_labels = _model_info(loaded.model)
    names = _labels(model_labels, Path(labels) if labels is not None else None,
                    analysis.num_classes)
    wanted, asked = _wanted(targets, names, analysis, truth)
    made = _decide(loaded, path, method, asked, runtime, analysis, class_output, target_layer)
    fixed = (_check_honoured(analysis.stamp, wanted, names, path.name)
             if analysis.stamp is not None and made.classes_output else None)
    info = methods.get(made.method)  # black-box: OpenVINO, faster for many small runs
    runtime = "openvino" if info.black_box and given is None else runtime
    reader, why, wanted = _as_detector(loaded, path, blackbox, analysis, made, wanted, asked)
    dims = _input_dims(loaded)
    sized = _input_preprocess(_overridden(preprocess or recorded, preprocess_flags), dims)
    _check_made(info, made, blackbox, sized.size, map_scale, path.name)
    return ExplainSpec(
        model=str(path), sha256=_model_sha256(path), runtime=runtime, method=made.method,
        method_reason=why, targets=wanted, preprocess=sized, labels=names,
        num_classes=analysis.num_classes or 0, class_output=analysis.class_output,
        activation=analysis.activation, detector=analysis.kind == "detector" or bool(reader),
        input_name=_input_name(loaded), static_batch=dims[0] if dims and dims[0] else None,
        augmented=analysis.stamp is not None, target_layer=made.layer, pipeline=made.pipeline,
        scaling=made.scaling, classes_output=made.classes_output, payload=made.payload,
        batch_size=batch_size, raw=raw, overlay=overlay, colormap=colormap, opacity=opacity,
        blackbox=blackbox, detector_reader=reader, precision=precision, fixed_classes=fixed,
        map_scale=map_scale, legend=legend, low_confidence=low_confidence,
    )


def _with_truth(wanted: Target | Boxes, names: Sequence[str] | None,
                analysis: _Analysis) -> Target | Boxes:
    """A classifier's targets on inputs with ground truth (`prepare(truth=True)`):
    `AndTruth(wanted)`, a wrong prediction's class and its ground truth explained too, the
    truth matched against the class names as eval does (`class N` without names). A detector's
    targets stay as they are (boxes: a wrong detection is not one class; nothing added), as
    do eval's own (already `AndTruth`) and a model without a known class count."""
    k = analysis.num_classes
    if analysis.kind == "detector" or not k or isinstance(wanted, Boxes | AndTruth):
        return wanted
    labels = tuple(names[i] if names is not None and i < len(names) else f"class {i}"
                   for i in range(k))
    return AndTruth(wanted, labels)


def _as_detector(loaded: Any, path: Path, blackbox: Any, analysis: _Analysis,
                 made: _Decision, wanted: Target | Boxes, asked: Target | Boxes
                 ) -> tuple[str | None, str, Any]:
    """(the detector reader, the method's reason, the targets) of a black-box method on a
    detector (its targets are boxes, of `wanted`); (None, reason, targets) otherwise: `asked`
    (`wanted` with ground truth, `_with_truth`), but `wanted` for a stamped model's fixed
    maps. A model that is neither a classifier nor a detector is refused."""
    from xaigraph.explain.options import BlackBoxOptions

    info = methods.get(made.method)
    reader = (_detector_reader(loaded, blackbox, analysis, path.name)
              if analysis.stamp is None and info.black_box else None)
    if reader is not None:
        over = info.detector_title
        why = f"{made.why}; a detector ({reader} outputs){f': {over}' if over else ''}"
        options = blackbox if blackbox is not None else BlackBoxOptions()
        return reader, why, Boxes.of(wanted, options.score_threshold)
    if analysis.num_classes is None:
        raise BadInputError(f"{path.name}: no classification output found "
                            f"({analysis.problem}); name it with --class-output")
    return None, made.why, wanted if made.classes_output else asked


def _format(method: str, path: Path, runtime: str) -> str:
    """The format a plain model is analysed (and augmented) in: the runtime's ("onnx" for
    ONNX Runtime, else "ir"); the file's own for a black-box method (nothing inserted)."""
    if method != "auto" and methods.get(method).black_box:
        return "onnx" if path.suffix.lower() == ".onnx" else "ir"
    return "onnx" if runtime == "onnxruntime" else "ir"


def _stamped_selection(stamp: Any) -> tuple[str, tuple[int, ...]]:
    """What an augmented model's select-classes chose: ("topk", (K,)) for each image's K
    best classes, ("list", classes) for fixed classes."""
    from xaigraph.passes import parse as parse_pipeline
    from xaigraph.passes.select_classes import SelectClassesPass

    for p in parse_pipeline(stamp.pipeline).passes:
        if isinstance(p, SelectClassesPass):
            return p.kind, tuple(int(i) for i in p.items)
    raise BadInputError(f"the stamp's pipeline has no select-classes ({stamp.pipeline})")


def _check_honoured(stamp: Any, wanted: Target | Boxes, names: Sequence[str] | None,
                    model: str) -> tuple[int, ...] | None:
    """Refuse targets an augmented model's fixed set of maps (`insert --targets`) cannot
    give: never a map of another class under the requested class's name. The model's
    fixed classes (None: each image's best)."""
    kind, items = _stamped_selection(stamp)
    if kind == "topk":
        k = items[0]
        if isinstance(wanted, Predicted) or (isinstance(wanted, TopK) and wanted.k <= k):
            return None
        has, ask = f"the maps of each image's {k} best classes only", (
            f"predicted or topk:K with K <= {k}")
    else:
        if isinstance(wanted, All) or (isinstance(wanted, Classes)
                                       and set(wanted.indices) <= set(items)):
            return items
        shown = ", ".join(names[c] if names is not None and c < len(names) else str(c)
                          for c in items)
        has, ask = f"the maps of {shown} only", f"all, or some of {','.join(map(str, items))}"
    asked = "eval's ground-truth classes" if isinstance(wanted, GroundTruth) else (
        f"--targets {wanted.text()}")
    raise BadInputError(f"{asked}: {model} computes {has} (insert --targets); ask for {ask}, "
                        "or explain the plain model (xaigraph strip)")


def _check_writing(path: Path, colormap: str, opacity: float, batch_size: int,
                   map_scale: str = scales.DEFAULT,
                   low_confidence: float = scales.LOW_CONFIDENCE) -> None:
    """The model file and the writer's options, before anything is read."""
    from xaigraph.explain.render import COLORMAPS

    _check_scale(map_scale, low_confidence)

    if not path.exists():
        raise BadInputError(f"model not found: {path}")
    if colormap not in COLORMAPS:
        raise BadInputError(f"unknown colormap '{colormap}'; use one of {', '.join(COLORMAPS)}")
    if not 0.0 <= opacity <= 1.0:
        raise BadInputError(f"--opacity {opacity}: give a number from 0 to 1")
    if batch_size < 1:
        raise BadInputError("--batch-size must be at least 1")


def _check_made(info: methods.MethodInfo, made: _Decision, blackbox: Any,
                size: tuple[int, int], map_scale: str, name: str) -> None:
    """What can be checked once the method is chosen: a black-box method's options against
    the input's `size`; `--map-scale image` needs float maps (not u8 scaled in the graph)."""
    from xaigraph.explain.options import BlackBoxOptions

    if info.black_box:
        (blackbox if blackbox is not None else BlackBoxOptions()).check(info.masks, size)
    if map_scale in scales.NEEDS_RANGE and info.in_graph and made.scaling != "none":
        raise BadInputError(
            f"--map-scale {map_scale} needs each map's raw range, which {name} lost (its "
            f"maps are scaled to u8 in the graph): give the plain model, or one augmented with "
            f"xaigraph insert --no-scaling, or use --map-scale score or map")


def _check_scale(map_scale: str, low_confidence: float) -> None:
    """`--map-scale` and `--low-confidence`: one line naming what is wrong."""
    if map_scale == "run":
        raise BadInputError("--map-scale run: one scale for a whole run is known only at its "
                             "end; the report shows it (xaigraph report OUT_DIR, scale: run). "
                             f"Write with one of {', '.join(scales.WRITTEN)}")
    if map_scale not in scales.WRITTEN:
        raise BadInputError(f"unknown --map-scale '{map_scale}'; use one of "
                            f"{', '.join(scales.WRITTEN)}")
    if not 0.0 <= low_confidence <= 1.0:
        raise BadInputError(f"--low-confidence {low_confidence}: give a number from 0 to 1")


def _runtime(path: Path, runtime: str | None, precision: str) -> str:
    """The engine that runs `path`: `runtime` as given (checked), else ONNX Runtime for an
    `.onnx` at f32 and OpenVINO otherwise (a precision other than f32 is OpenVINO's)."""
    onnx_file = path.suffix.lower() == ".onnx"
    if precision not in PRECISIONS:
        raise BadInputError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if runtime is None:
        runtime = "onnxruntime" if onnx_file and precision == "f32" else "openvino"
    if runtime not in ("openvino", "onnxruntime"):
        raise BadInputError(f"unknown runtime '{runtime}'; use openvino or onnxruntime")
    if runtime == "onnxruntime" and precision != "f32":
        raise BadInputError(f"--precision {precision} is OpenVINO's; ONNX Runtime runs f32")
    if runtime == "onnxruntime" and not onnx_file:
        raise BadInputError(f"ONNX Runtime runs .onnx models only, not {path.name}")
    return runtime


def _wanted(targets: str | Target | Boxes, names: Sequence[str] | None,
            analysis: _Analysis, truth: bool) -> tuple[Target | Boxes, Target | Boxes]:
    """The target object of `targets` (text parsed with the class names), its classes in
    the model's range; and the target asked of the model: with `truth` (inputs with ground
    truth), `_with_truth`'s."""
    num_classes = analysis.num_classes
    wanted: Target | Boxes = parse(targets, names) if isinstance(targets, str) else targets
    if isinstance(wanted, Classes) and num_classes is not None:
        bad = [c for c in wanted.indices if c >= num_classes]
        if bad:
            given = targets if isinstance(targets, str) else wanted.text()
            raise BadInputError(f"--targets '{given}': class {bad[0]} is out of range (the "
                                f"model has {num_classes} classes)")
    return wanted, _with_truth(wanted, names, analysis) if truth else wanted


@dataclass(frozen=True)
class _Decision:
    """The method and what it takes: the model's own (a stamp) or an augmentation."""

    method: str
    why: str
    layer: str | None
    pipeline: str | None = None
    scaling: str = "minmax-u8"
    classes_output: bool = False
    payload: tuple[Any, ...] = ()


def _decide(loaded: Any, path: Path, method: str, wanted: Target | Boxes,
            runtime: str, analysis: _Analysis, class_output: str | None,
            target_layer: str | None) -> _Decision:
    """The method of an augmented model (its stamp), or the one chosen for a plain model,
    which an in-graph method augments in memory."""
    from xaigraph import api
    from xaigraph.passes import CLASSES_OUTPUT

    if method != "auto":
        methods.get(method)  # an unknown name: one line naming the choices
    stamp = analysis.stamp
    if stamp is not None:
        if method not in ("auto", stamp.method):
            raise BadInputError(f"{path.name} is augmented with {stamp.method}; --method "
                                f"{method} needs the plain model (xaigraph strip)")
        return _Decision(stamp.method, f"the model's stamp ({stamp.describe()})",
                         stamp.fields["target_layer"], stamp.pipeline,
                         stamp.fields["scaling"], CLASSES_OUTPUT in stamp.outputs)
    chosen, why = _choose(method, analysis)
    if not methods.get(chosen).in_graph:
        return _Decision(chosen, why, analysis.target_layer)
    fmt = "onnx" if runtime == "onnxruntime" else "ir"
    result, in_graph, note = _augment(loaded, chosen, wanted, fmt, analysis,
                                      class_output, target_layer, api)
    layer = result.report.get("target", {}).get("name", analysis.target_layer)
    return _Decision(chosen, why if note is None else f"{why}; {note}", layer,
                     result.report.get("pipeline"), "none", in_graph,
                     ("model", result.model))


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


def _augment(loaded: Any, method: str, wanted: Target | Boxes, fmt: str,
             analysis: _Analysis, class_output: str | None, target_layer: str | None,
             api: Any) -> tuple[Any, bool, str | None]:
    """The model augmented in memory, from the model `prepare` read and analysed (neither
    read nor analysed again); whether it carries the in-graph targets; the fallback taken,
    if one was (said in the method's reason: a fallback is never silent)."""
    in_graph = (wanted.in_graph() is not None and methods.get(method).per_class
                and analysis.kind != "detector")
    # no in-graph u8 scaling: the float maps keep their raw range (the record's `range`,
    # the `image` / `run` colour scales); the host min-max scales them (`unit_maps`). Sanity
    # off: the insert-time checks cost a second per start and would refuse maps that
    # explain is asked to show; eval's sanity metrics judge the maps instead
    kwargs = dict(scaling=False, output_format=fmt, class_output=class_output,
                  target_layer=target_layer, sanity="off")
    analysed = analysis.analysed
    if in_graph:
        try:
            return api.insert(analysed if analysed is not None else _copy(loaded, fmt),
                              method, targets=wanted.in_graph(), **kwargs), True, None
        except XaiGraphError as exc:  # e.g. a head where select-classes does not apply
            signals.check()  # an interrupted run ends here, never goes on another way
            note = f"in-graph targets not used ({exc}); every class's map computed"
            log.info(note)
            return api.insert(_copy(loaded, fmt), method, **kwargs), False, note
    return api.insert(analysed if analysed is not None else _copy(loaded, fmt), method,
                      **kwargs), False, None


def _copy(loaded: Any, fmt: str) -> Any:
    """What `api.insert` reads and augments (in place): a copy of the read model in format
    `fmt`; the file itself for an ONNX model with external data run by OpenVINO."""
    from xaigraph.backends import get_backend
    from xaigraph.model_io import LoadedModel

    if loaded.backend == fmt:
        backend = get_backend(loaded.backend, loaded.external_data)
        return LoadedModel(backend.clone(loaded.model), loaded.path, loaded.backend,
                           list(loaded.data_files))
    subject = _in_format(loaded, fmt)
    return subject.path if subject is loaded else subject


def with_options(spec: ExplainSpec, **changes: Any) -> ExplainSpec:
    """`spec` with some writer options changed (colormap, opacity, overlay)."""
    return replace(spec, **changes)

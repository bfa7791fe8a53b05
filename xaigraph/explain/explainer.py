"""The per-batch callable both engines run: `Explainer(spec)` compiles the model once; a batch
dict in, a batch dict out (docs/runtime.md).

    explainer = Explainer(spec)                                      # once per actor / run
    out = explainer(batch([decoded]))                                # a batch dict in and out

Batch dict in: `index` `[B]` int64, `input` `[B, C, H, W]` (or NHWC), and for a target that
reads the input (`targets.GroundTruth`, eval's) `classes` `[B, T]` int64 (-1 padding): the
classes each image brought (`targets.item_classes`, filled by `batch`), which the target
reads (`Outputs.given`): a white-box method's maps of those classes are selected, a black-box
sampler computes maps of those classes only; a method with one map per image labels it with
each of them. Batch dict out:
`index`, `scores` `[B, K]` float32 class probabilities, `targets` `[B, T]` int64 (-1
padding), `maps` `[B, T, h, w]` float32 in 0..1, `raw` `[B, T, h, w]` float32 with
`spec.raw` (the maps as the model gave them), `ranges` `[B, T, 2]` float32 (each map's raw
minimum and maximum, NaN for u8 maps, whose raw range the model's scaling lost),
`seconds` `[B]` float64 (inference time per image).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xaigraph.errors import XaiGraphError
from xaigraph.explain.io.decode import Decoded
from xaigraph.explain.model import ModelFn, probabilities
from xaigraph.explain.plan import ExplainSpec, model_of
from xaigraph.explain.targets import Boxes, Outputs, Predicted, Target, item_classes

__all__ = ["Cancelled", "Explainer", "batch", "raw_ranges", "unbatch", "unit_maps"]


_EPS = 1e-12


class Cancelled(XaiGraphError):
    """An image given up because its run was stopped (never reported: the run's stop is)."""


def batch(decoded: Sequence[Decoded], target: Target | Boxes | None = None
          ) -> dict[str, np.ndarray]:
    """The batch dict of decoded items (all without error); with `classes` when `target`
    (the spec's) reads the items (`targets.item_classes`)."""
    out = {"index": np.asarray([d.item.index for d in decoded], dtype=np.int64),
           "input": np.stack([d.input for d in decoded if d.input is not None])}
    classes = None if target is None else item_classes(target, [d.item for d in decoded])
    if classes is not None:
        out["classes"] = classes
    return out


def unbatch(out: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One dict per image of a batch dict out: the same keys, each image's row."""
    n = len(out["index"])
    return [{k: v[i] for k, v in out.items()} for i in range(n)]


def unit_maps(maps: np.ndarray) -> np.ndarray:
    """Maps in 0..1: a u8 map / 255; a float map min-max scaled per `[h, w]` map."""
    if maps.dtype == np.uint8:
        return maps.astype(np.float32) / np.float32(255.0)
    m = maps.astype(np.float64)
    lo = m.min(axis=(-2, -1), keepdims=True)
    hi = m.max(axis=(-2, -1), keepdims=True)
    return ((m - lo) / np.maximum(hi - lo, _EPS)).astype(np.float32)


def raw_ranges(maps: np.ndarray) -> np.ndarray:
    """`[..., 2]` float32: each `[h, w]` map's minimum and maximum as the model gave it; NaN
    for u8 maps (already min-max scaled to 0..255 in the graph: the raw range is lost)."""
    if maps.dtype == np.uint8:
        return np.full((*maps.shape[:-2], 2), np.nan, dtype=np.float32)
    m = np.asarray(maps, dtype=np.float32)
    if m.size == 0:
        return np.zeros((*m.shape[:-2], 2), dtype=np.float32)
    return np.stack([m.min(axis=(-2, -1)), m.max(axis=(-2, -1))], axis=-1)


class Explainer:
    """The model compiled once; a batch dict in, a batch dict out (docs/runtime.md)."""

    def __init__(self, spec: ExplainSpec) -> None:
        from xaigraph.session import Session

        self.spec = spec
        config = {"PERFORMANCE_HINT": "THROUGHPUT"} if spec.runtime == "openvino" else None
        self.session = Session.open(model_of(spec), spec.runtime, config=config,
                                    precision=spec.hint)
        self.fn = ModelFn(self.session, requests=spec.requests, what="explain runs")
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
        return self._finish(batch["index"], x, outs, time.perf_counter() - start,
                            batch.get("classes"))

    def stream(self, batches: Iterable[dict[str, np.ndarray] | None]
               ) -> Iterator[dict[str, np.ndarray]]:
        """`self(b)` for each batch in order, with inferences overlapping (OpenVINO's
        asynchronous requests); the batches are read lazily, a few ahead. A `None` batch is
        a tick: the batches done by then are yielded, so that a caller waiting for results
        before it sends its next batch is never left waiting (`Session.stream`)."""
        if not self.spec.white_box or (self.spec.static_batch is not None
                                       and self.spec.static_batch != 1):
            for b in batches:
                if b is not None:
                    yield self(b)
            return
        sent: deque[tuple[dict[str, np.ndarray], float]] = deque()

        def feeds() -> Iterator[np.ndarray | None]:
            for b in batches:
                if b is not None:
                    sent.append((b, time.perf_counter()))
                yield None if b is None else b["input"]

        for outs in self.fn.stream(feeds(), self.outputs):
            b, started = sent.popleft()
            yield self._finish(b["index"], b["input"], outs, time.perf_counter() - started,
                               b.get("classes"))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities `[B, K]` of model inputs `x` (the black-box samplers' view)."""
        spec = self.spec
        logits = self.fn(x, [spec.class_output])[0]
        return probabilities(logits, spec.activation, spec.detector)

    def _infer(self, x: np.ndarray) -> list[np.ndarray]:
        if not self.spec.white_box:
            return [self.predict(x)]
        return self.fn(x, self.outputs)

    def _finish(self, index: np.ndarray, x: np.ndarray, outs: list[np.ndarray],
                seconds: float, given: np.ndarray | None = None) -> dict[str, np.ndarray]:
        spec = self.spec
        n = len(index)
        scores = outs[0] if not spec.white_box else probabilities(
            outs[0], spec.activation, spec.detector)
        classes = outs[1] if spec.white_box and spec.classes_output else None
        chosen = [self._targets(scores[b], None if classes is None else classes[b],
                                None if given is None else given[b]) for b in range(n)]
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
        ranges = np.full((n, t, 2), np.nan, dtype=np.float32)
        for b, ((cls, _), m) in enumerate(zip(chosen, per_image, strict=True)):
            targets[b, : len(cls)] = cls
            if len(cls):
                raw[b, : len(cls)] = m.astype(np.float32)
                maps[b, : len(cls)] = unit_maps(m) if spec.white_box else unit_maps(
                    m.astype(np.float32))
                ranges[b, : len(cls)] = raw_ranges(m)
        out: dict[str, np.ndarray] = {
               "index": np.asarray(index, dtype=np.int64), "scores": scores.astype(np.float32),
               "targets": targets, "maps": maps, "ranges": ranges,
               "seconds": np.full(n, seconds / max(n, 1), dtype=np.float64)}
        if spec.raw:
            out["raw"] = raw
        return out

    def _targets(self, scores: np.ndarray, classes: np.ndarray | None,
                 given: np.ndarray | None = None) -> tuple[list[int], list[int]]:
        """(target classes, the positions of their maps in the model's maps): `spec.targets`
        over the classes the model has maps of (and the classes the image brought, `given`);
        one map per image: the predicted class, or each class the image brought."""
        spec = self.spec
        assert not isinstance(spec.targets, Boxes)
        brought = None if given is None else [int(c) for c in given if c >= 0]
        if not spec.method_info.per_class:
            rule = spec.targets if brought is not None else Predicted()
            wanted = rule.classes(Outputs(scores, given=brought))
            return wanted, [0] * len(wanted)
        available = ([int(c) for c in classes] if classes is not None
                     else list(range(spec.num_classes)))
        out = Outputs(scores, available, given=brought)
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

            native = model_of(spec)
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
            "ranges": raw_ranges(raw),
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



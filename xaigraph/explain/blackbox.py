"""The black-box methods' one entry point, their options and presets, and model adapters.

The runner calls `explain_one(x, predict, method, options, targets)` once per image (see
docs/runtime.md, "Black-box samplers"); it dispatches to the method's sampler in the method
registry (`xaigraph.explain.methods`). `predict` is a plain function over batches of model
inputs: `class_predict(session)` for a classifier, `det_predict(session, options)` for a
detector (which also names the detector reader it found). `blackbox_options`
(`xaigraph.explain.cli_options`) adds the command-line options; `BlackBoxOptions.from_cli`
reads them back.
The options and presets live in `xaigraph.explain.options`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.explain import methods
from xaigraph.explain.detections import Detections, find_reader
from xaigraph.explain.drise import DetPredict, select_targets
from xaigraph.explain.model import ModelFn
from xaigraph.explain.options import PRESETS, BlackBoxOptions, Preset
from xaigraph.explain.rise import Predict, Runner
from xaigraph.session import OutputKey, Session

__all__ = [
    "PRESETS",
    "BlackBoxOptions",
    "BlackBoxResult",
    "Preset",
    "class_predict",
    "det_predict",
    "explain_one",
]

class BlackBoxResult(NamedTuple):
    """`maps` `[T, H, W]` float32 raw; `classes` `[T]` int64; `boxes` `[T, 5]` x1 y1 x2 y2
    score (input pixels) for detectors, else None."""

    maps: np.ndarray
    classes: np.ndarray
    boxes: np.ndarray | None


def explain_one(x: np.ndarray, predict: Predict | DetPredict, method: str,
                options: BlackBoxOptions, targets: Sequence[int] | Detections | None, *,
                detector: bool = False, baseline: np.ndarray | float = 0.0,
                runner: Runner | None = None,
                progress: Callable[[int], None] | None = None) -> BlackBoxResult:
    """Black-box maps of one input `x` `[1, C, H, W]` by `method`'s sampler (docs/runtime.md).
    `targets`: class indices (None: a classifier's top-1 class, a detector's boxes over the
    score threshold); for a detector also the boxes themselves (`Detections` of `x`, chosen
    by a `targets.Boxes`). `runner`: RISE's masked inputs run another way than through
    `predict` (`explain.masked`). `progress`: called with the number of RISE / D-RISE masks
    of each batch done."""
    sampler = methods.black_box(method).sampler
    assert sampler is not None
    if detector:
        det = _as_det(predict)
        if isinstance(targets, Detections):
            chosen = targets
        else:
            found = det(x)
            if not isinstance(found, list) or len(found) != 1:
                raise BadInputError("the detector must give one list of detections per input")
            chosen = select_targets(found[0], score_threshold=options.score_threshold,
                                    classes=targets)
        boxes = np.concatenate([chosen.boxes, chosen.scores[:, None]], axis=1)
        maps = sampler.boxes(x, det, chosen, options, baseline=baseline, progress=progress)
        return BlackBoxResult(maps, chosen.labels.astype(np.int64), boxes.astype(np.float32))
    if isinstance(targets, Detections):
        raise BadInputError("boxes are the targets of a detector only")
    classify = _as_class(predict)
    if targets is None:
        targets = [int(np.argmax(np.asarray(classify(x))[0]))]
    picks = [int(t) for t in targets]
    maps = sampler.classes(x, classify, picks, options, baseline=baseline, runner=runner,
                           progress=progress)
    return BlackBoxResult(maps, np.asarray(picks, np.int64), None)


def _as_det(predict: Any) -> DetPredict:
    return cast(DetPredict, predict)


def _as_class(predict: Any) -> Predict:
    return cast(Predict, predict)


def class_predict(session: Session, *, output: OutputKey = 0, softmax: bool | None = None,
                  batch_size: int = 0, requests: int | None = None) -> Predict:
    """A classifier session as a `Predict`: `[B, ...]` inputs to `[B, K]` probabilities.

    Inputs go through in chunks of the model's static batch, else of `batch_size` (0: the
    whole batch at once), `requests` at a time (OpenVINO's asynchronous requests; None: the
    session's default). `softmax`: None applies it when the first rows seen are not
    probabilities already (not all in [0, 1] summing to 1)."""
    fn = ModelFn(session, chunk=batch_size, requests=requests, what="black-box methods run")
    decided: list[bool] = [] if softmax is None else [softmax]

    def predict(inputs: np.ndarray) -> np.ndarray:
        found = fn(inputs, [output])[0]
        scores = found.reshape(len(found), -1).astype(np.float32, copy=False)
        if not decided:
            probs = bool(np.all(scores >= 0) and np.all(scores <= 1) and
                         np.allclose(scores.sum(axis=1), 1.0, atol=1e-3))
            decided.append(not probs)
        if decided[0]:
            z = scores - scores.max(axis=1, keepdims=True)
            e = np.exp(z)
            scores = e / e.sum(axis=1, keepdims=True)
        return scores

    return predict


def det_predict(session: Session, options: BlackBoxOptions, *, batch_size: int = 0,
                requests: int | None = None) -> tuple[DetPredict, str]:
    """A detector session as a `DetPredict`, and the name of the reader found for its outputs
    (or forced by `options.detector_output` / `options.postprocess`)."""
    fn = ModelFn(session, chunk=batch_size, requests=requests, what="black-box methods run")
    reader = find_reader(session.outputs, options.detector_output, options.postprocess)

    def predict(inputs: np.ndarray) -> list[Detections]:
        size = (int(inputs.shape[2]), int(inputs.shape[3]))
        found: list[Detections] = []
        for arrays in fn.chunks(inputs, None):
            found.extend(reader.read(arrays, size))
        if len(found) != len(inputs):
            raise BadInputError(f"the {reader.name} reader found results for {len(found)} "
                                f"images in a batch of {len(inputs)}")
        return found[:len(inputs)]

    return predict, reader.name

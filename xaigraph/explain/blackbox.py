"""The black-box methods' one entry point, their options and presets, and model adapters.

The runner calls `explain_one(x, predict, method, options, targets)` once per image (see
docs/runtime.md, "Black-box samplers"). `predict` is a plain function over batches of model
inputs: `class_predict(session)` for a classifier, `det_predict(session, options)` for a
detector (which also names the detector reader it found). `blackbox_options`
(`xaigraph.explain.cli_options`) adds the command-line options; `BlackBoxOptions.from_cli`
reads them back.

Presets (`PRESETS`) for users who do not want to choose numbers; explicit options win:

| preset | masks (RISE, D-RISE) | cells | p | AISE widths (of the short side) | AISE evals |
|---|---|---|---|---|---|
| speed | 1000 | 7 | 0.5 | 0.15, 0.3 | 16 |
| balance | 2000 | 7 | 0.5 | 0.1, 0.2, 0.35 | 24 |
| quality | 5000 | 8 | 0.5 | 0.08, 0.15, 0.25, 0.4 | 40 |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, NamedTuple, cast

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.explain.aise import aise
from xaigraph.explain.detections import READERS, Detections, find_reader
from xaigraph.explain.drise import DetPredict, det_weights, drise, select_targets
from xaigraph.explain.masks import check_grid
from xaigraph.explain.rise import Predict, Runner, rise
from xaigraph.session import OutputKey, Session

__all__ = [
    "METHODS",
    "PRESETS",
    "BlackBoxOptions",
    "BlackBoxResult",
    "Preset",
    "class_predict",
    "det_predict",
    "explain_one",
]

METHODS = ("rise", "aise")


@dataclass(frozen=True)
class Preset:
    num_masks: int
    cells: int
    prob: float
    widths: tuple[float, ...]
    evals: int


PRESETS = {
    "speed": Preset(1000, 7, 0.5, (0.15, 0.3), 16),
    "balance": Preset(2000, 7, 0.5, (0.1, 0.2, 0.35), 24),
    "quality": Preset(5000, 8, 0.5, (0.08, 0.15, 0.25, 0.4), 40),
}


@dataclass(frozen=True)
class BlackBoxOptions:
    """The black-box methods' options (docs/runtime.md); None takes the preset's value.
    Invalid values raise `BadInputError` (one line)."""

    num_masks: int | None = None
    cells: int | None = None
    prob: float | None = None
    seed: int = 0
    preset: str = "balance"
    batch_size: int = 0
    detector_output: str | None = None
    postprocess: str | None = None
    score_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise BadInputError(f"unknown --preset '{self.preset}'; use one of "
                                f"{', '.join(PRESETS)}")
        if self.num_masks is not None and self.num_masks < 1:
            raise BadInputError(f"--num-masks must be a positive integer, not {self.num_masks}")
        if self.cells is not None and self.cells < 1:
            raise BadInputError(f"--mask-cells must be a positive integer, not {self.cells}")
        if self.prob is not None and not 0.0 < self.prob <= 1.0:
            raise BadInputError(f"--mask-prob must be in (0, 1], not {self.prob}")
        if not 0 <= self.seed < 2**64:
            raise BadInputError(f"--seed must be in 0 .. 2**64 - 1, not {self.seed}")
        if self.batch_size < 0:
            raise BadInputError(f"the batch size must be >= 0, not {self.batch_size}")
        if self.detector_output is not None and self.detector_output not in READERS:
            raise BadInputError(f"unknown --detector-output '{self.detector_output}'; "
                                f"readers: {', '.join(READERS)}")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise BadInputError(f"the score threshold must be in [0, 1], not "
                                f"{self.score_threshold}")

    @classmethod
    def from_cli(cls, kwargs: dict[str, Any]) -> BlackBoxOptions:
        """The options `cli_options.blackbox_options` added, popped from a command's
        `kwargs`."""
        values = {name: kwargs.pop(key) for key, name in _CLI.items() if key in kwargs}
        return cls(**{k: v for k, v in values.items() if v is not None})

    @property
    def resolved(self) -> BlackBoxOptions:
        """These options with the preset's numbers filled in."""
        p = PRESETS[self.preset]
        return replace(self, num_masks=self.num_masks or p.num_masks,
                       cells=self.cells or p.cells,
                       prob=self.prob if self.prob is not None else p.prob)

    def check(self, method: str, size: tuple[int, int]) -> None:
        """What can only be checked against the model input's `size` (H, W): a
        `BadInputError` before any image runs."""
        if method == "rise":
            r = self.resolved
            assert r.cells is not None and r.prob is not None
            check_grid(r.cells, r.prob, size)

    def settings(self, method: str) -> dict[str, Any]:
        """The effective numbers of `method`, for run.json."""
        r = self.resolved
        out: dict[str, Any] = {"preset": self.preset, "seed": self.seed}
        if method == "aise":
            p = PRESETS[self.preset]
            out.update(kernel_widths=list(p.widths), evaluations_per_width=p.evals)
        else:
            out.update(num_masks=r.num_masks, cells=r.cells, prob=r.prob)
        if self.detector_output or self.postprocess:
            out.update(detector_output=self.detector_output, postprocess=self.postprocess)
        return out


# click parameter name -> BlackBoxOptions field
_CLI = {"num_masks": "num_masks", "mask_cells": "cells", "mask_prob": "prob", "seed": "seed",
        "preset": "preset", "detector_output": "detector_output",
        "postprocess": "postprocess", "score_threshold": "score_threshold"}
assert set(_CLI.values()) <= {f.name for f in fields(BlackBoxOptions)}

class BlackBoxResult(NamedTuple):
    """`maps` `[T, H, W]` float32 raw; `classes` `[T]` int64; `boxes` `[T, 5]` x1 y1 x2 y2
    score (input pixels) for detectors, else None."""

    maps: np.ndarray
    classes: np.ndarray
    boxes: np.ndarray | None


def explain_one(x: np.ndarray, predict: Predict | DetPredict, method: str,
                options: BlackBoxOptions, targets: Sequence[int] | None, *,
                detector: bool = False, baseline: np.ndarray | float = 0.0,
                runner: Runner | None = None,
                progress: Callable[[int], None] | None = None) -> BlackBoxResult:
    """Black-box maps of one input `x` `[1, C, H, W]` (docs/runtime.md). `runner`: RISE's
    masked inputs run another way than through `predict` (`explain.masked`). `progress`:
    called with the number of RISE / D-RISE masks of each batch done."""
    if method not in METHODS:
        raise BadInputError(f"unknown black-box method '{method}'; use one of "
                            f"{', '.join(METHODS)}")
    r = options.resolved
    assert r.num_masks is not None and r.cells is not None and r.prob is not None
    preset = PRESETS[options.preset]
    if detector:
        found = predict(x)
        if not isinstance(found, list) or len(found) != 1:
            raise BadInputError("the detector must give one list of detections per input")
        chosen = select_targets(found[0], score_threshold=options.score_threshold,
                                classes=targets)
        boxes = np.concatenate([chosen.boxes, chosen.scores[:, None]], axis=1)
        det = _as_det(predict)
        if method == "rise":
            maps = drise(x, det, targets=chosen, num_masks=r.num_masks, cells=r.cells,
                         prob=r.prob, seed=options.seed, batch_size=options.batch_size,
                         baseline=baseline, progress=progress)
        else:
            ones = Detections(chosen.boxes, chosen.labels,
                              np.ones(len(chosen), np.float32), chosen.probs)
            maps, _ = aise(x, det_weights(det, ones), targets=len(chosen),
                           widths=preset.widths, evals=preset.evals, baseline=baseline)
        return BlackBoxResult(maps, chosen.labels.astype(np.int64), boxes.astype(np.float32))
    classify = _as_class(predict)
    if targets is None:
        targets = [int(np.argmax(np.asarray(classify(x))[0]))]
    picks = [int(t) for t in targets]
    if method == "rise":
        maps = rise(x, classify, targets=picks, num_masks=r.num_masks, cells=r.cells,
                    prob=r.prob, seed=options.seed, batch_size=options.batch_size,
                    baseline=baseline, runner=runner, progress=progress)
    else:
        maps, _ = aise(x, lambda inputs: np.asarray(classify(inputs))[:, picks],
                       targets=len(picks), widths=preset.widths, evals=preset.evals,
                       baseline=baseline)
    return BlackBoxResult(maps, np.asarray(picks, np.int64), None)


def _as_det(predict: Any) -> DetPredict:
    return cast(DetPredict, predict)


def _as_class(predict: Any) -> Predict:
    return cast(Predict, predict)


def _chunks(inputs: np.ndarray, size: int, pad: bool) -> list[np.ndarray]:
    out = []
    for start in range(0, len(inputs), size):
        part = inputs[start:start + size]
        if pad and len(part) < size:
            fill = np.repeat(part[-1:], size - len(part), axis=0)
            part = np.concatenate([part, fill])
        out.append(part)
    return out


def _single_input(session: Session) -> tuple[int | None, str]:
    if len(session.inputs) != 1:
        raise BadInputError(f"black-box methods run models with one input; this one has "
                            f"{len(session.inputs)} ({', '.join(session.input_names)})")
    dims = session.inputs[0].dims
    return (None if not dims else dims[0]), session.inputs[0].name


def _run(session: Session, inputs: np.ndarray, chunk: int, outputs: Sequence[OutputKey] | None,
         requests: int | None) -> list[list[np.ndarray]]:
    """The session's outputs for `inputs`, in chunks of `chunk` (padded for a static batch),
    trimmed back to `len(inputs)` rows."""
    static, _ = _single_input(session)
    size = static if static is not None else (chunk or len(inputs))
    parts = _chunks(inputs, size, pad=static is not None)
    results = session.run_many([[p] for p in parts], outputs, requests=requests)
    if static is not None and len(inputs) % size:
        last = len(inputs) % size
        results[-1] = [a[:last] if a.ndim and a.shape[0] == size else a for a in results[-1]]
    return results


def class_predict(session: Session, *, output: OutputKey = 0, softmax: bool | None = None,
                  batch_size: int = 0, requests: int | None = None) -> Predict:
    """A classifier session as a `Predict`: `[B, ...]` inputs to `[B, K]` probabilities.

    Inputs go through in chunks of the model's static batch, else of `batch_size` (0: the
    whole batch at once), `requests` at a time (OpenVINO's asynchronous requests; None: the
    session's default). `softmax`: None applies it when the first rows seen are not
    probabilities already (not all in [0, 1] summing to 1)."""
    _single_input(session)
    decided: list[bool] = [] if softmax is None else [softmax]

    def predict(inputs: np.ndarray) -> np.ndarray:
        results = _run(session, inputs, batch_size, [output], requests)
        scores = np.concatenate([r[0].reshape(len(r[0]), -1) for r in results])
        scores = scores.astype(np.float32, copy=False)
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
    _single_input(session)
    reader = find_reader(session.outputs, options.detector_output, options.postprocess)

    def predict(inputs: np.ndarray) -> list[Detections]:
        size = (int(inputs.shape[2]), int(inputs.shape[3]))
        found: list[Detections] = []
        for arrays in _run(session, inputs, batch_size, None, requests):
            found.extend(reader.read(arrays, size))
        if len(found) != len(inputs):
            raise BadInputError(f"the {reader.name} reader found results for {len(found)} "
                                f"images in a batch of {len(inputs)}")
        return found[:len(inputs)]

    return predict, reader.name

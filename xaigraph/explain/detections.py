"""Detector output readers: a detector's raw outputs to boxes, labels and scores per image.

Readers (`READERS`), each found from the outputs' names and shapes or forced by name
(`--detector-output NAME`):

- `modelapi` (OpenVINO Model API convention): an output `boxes` `[N, M, 5]` (x1 y1 x2 y2
  score) and an output `labels` `[N, M]`. Rows with a score <= 0 or a negative label are
  padding and dropped.
- `boxes_labels_scores` (post-processed exports, as torchvision's detectors export to ONNX):
  outputs named `boxes` `[M, 4]`, `labels` `[M]`, `scores` `[M]`, each with or without a
  leading batch dim.
- `yolo` (raw YOLO-style head): one output `[N, 4 + K, A]`: per anchor point the box centre
  and size (cx, cy, w, h, input pixels) then K class scores. Kept: anchors whose best class
  score is >= `YOLO_SCORE`, then class-wise non-maximum suppression at IoU `YOLO_IOU` (numpy).
  The K scores of a kept box are its class-probability vector (`probs`).
- `postprocess` (`--postprocess module:function`): the user's function, called once per
  image with a dict of that image's outputs (output name -> array with a leading batch dim of
  1) and returning `(boxes [M, 4] x1 y1 x2 y2 input pixels, labels [M], scores [M])`.

Boxes are in input pixels; boxes whose coordinates are all within [0, 1.5] are taken as
normalised (0..1) and scaled by the input's width and height. An output that no reader
recognises is a `BadInputError` naming the readers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.session import TensorInfo

__all__ = ["READERS", "Detections", "Reader", "box_iou", "find_reader", "nms", "similarity"]

READERS = ("modelapi", "boxes_labels_scores", "yolo", "postprocess")
YOLO_SCORE = 0.05
YOLO_IOU = 0.5


@dataclass(frozen=True)
class Detections:
    """One image's detections: `boxes` `[M, 4]` float32 x1 y1 x2 y2 (input pixels), `labels`
    `[M]` int64, `scores` `[M]` float32, `probs` `[M, K]` float32 or None."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    probs: np.ndarray | None = None

    @classmethod
    def make(cls, boxes: Any, labels: Any, scores: Any, probs: Any = None,
             size: tuple[int, int] | None = None) -> Detections:
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        lab = np.asarray(labels).reshape(-1).astype(np.int64)
        s = np.asarray(scores, np.float32).reshape(-1)
        if not len(b) == len(lab) == len(s):
            raise BadInputError(f"detections disagree: {len(b)} boxes, {len(lab)} labels, "
                                f"{len(s)} scores")
        if size is not None and len(b) and float(np.abs(b).max()) <= 1.5:
            b = b * np.array([size[1], size[0], size[1], size[0]], np.float32)
        p = None if probs is None else np.asarray(probs, np.float32).reshape(len(b), -1)
        return cls(b, lab, s, p)

    def __len__(self) -> int:
        return len(self.boxes)

    def keep(self, mask: np.ndarray) -> Detections:
        return Detections(self.boxes[mask], self.labels[mask], self.scores[mask],
                          None if self.probs is None else self.probs[mask])


Read = Callable[[list[np.ndarray], tuple[int, int]], list[Detections]]


@dataclass(frozen=True)
class Reader:
    """`name` (one of `READERS`) and `read(arrays, size) -> one Detections per image`, where
    `arrays` are the model's outputs in output order and `size` is the input's (H, W)."""

    name: str
    read: Read


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes `a` `[P, 4]` and `b` `[Q, 4]` (x1 y1 x2 y2): `[P, Q]`."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by class-wise greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    suppressed = np.zeros(len(boxes), bool)
    overlaps = box_iou(boxes, boxes)
    for i in order:
        if suppressed[i]:
            continue
        kept.append(int(i))
        suppressed |= (overlaps[i] > iou) & (labels == labels[i])
    return np.asarray(kept, np.int64)


def similarity(target: Detections, found: Detections) -> np.ndarray:
    """D-RISE's weights: for each target box t, `max_j IoU(t, j) * cos(P_t, P_j) * O_j` over
    the detections `found` of a masked image (`[T]`, 0 when nothing was found).

    Class vectors: the readers' `probs` when both sides have them, else one-hot labels (the
    cosine is then 1 for the same label, 0 otherwise). Objectness `O_j`: the detection's
    score (the readers give no separate objectness); the targets' objectness is 1."""
    if len(found) == 0 or len(target) == 0:
        return np.zeros(len(target), np.float64)
    iou = box_iou(target.boxes, found.boxes)
    if target.probs is not None and found.probs is not None and \
            target.probs.shape[1] == found.probs.shape[1]:
        pt = target.probs.astype(np.float64)
        pf = found.probs.astype(np.float64)
        nt = np.linalg.norm(pt, axis=1, keepdims=True)
        nf = np.linalg.norm(pf, axis=1, keepdims=True)
        cos = (pt / np.where(nt > 0, nt, 1)) @ (pf / np.where(nf > 0, nf, 1)).T
    else:
        cos = (target.labels[:, None] == found.labels[None, :]).astype(np.float64)
    return np.max(iou * cos * found.scores.astype(np.float64)[None, :], axis=1)


def _batched(a: np.ndarray, rank: int) -> np.ndarray:
    """`a` with a leading batch dim (added when it has rank `rank` - 1)."""
    return a[None] if a.ndim == rank - 1 else a


def _read_modelapi(ib: int, il: int) -> Read:
    def read(arrays: list[np.ndarray], size: tuple[int, int]) -> list[Detections]:
        boxes, labels = _batched(arrays[ib], 3), _batched(arrays[il], 2)
        out = []
        for b, lab in zip(boxes, labels, strict=True):
            d = Detections.make(b[:, :4], lab, b[:, 4], size=size)
            out.append(d.keep((d.scores > 0) & (d.labels >= 0)))
        return out
    return read


def _read_bls(ib: int, il: int, is_: int) -> Read:
    def read(arrays: list[np.ndarray], size: tuple[int, int]) -> list[Detections]:
        boxes = _batched(arrays[ib], 3)
        labels, scores = _batched(arrays[il], 2), _batched(arrays[is_], 2)
        return [Detections.make(b, lab, s, size=size)
                for b, lab, s in zip(boxes, labels, scores, strict=True)]
    return read


def _read_yolo(i: int) -> Read:
    def read(arrays: list[np.ndarray], size: tuple[int, int]) -> list[Detections]:
        out = []
        for raw in _batched(arrays[i], 3):
            cx, cy, w, h = raw[0], raw[1], raw[2], raw[3]
            cls = raw[4:].T  # [A, K]
            best = cls.max(axis=1)
            keep = best >= YOLO_SCORE
            boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)[keep]
            probs, scores = cls[keep], best[keep]
            labels = probs.argmax(axis=1)
            order = nms(boxes, scores, labels, YOLO_IOU)
            out.append(Detections.make(boxes[order], labels[order], scores[order],
                                       probs[order], size=size))
        return out
    return read


def _read_user(spec: str, names: list[str]) -> Read:
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise BadInputError(f"--postprocess takes module:function, not '{spec}'")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise BadInputError(f"--postprocess {spec}: cannot import it ({exc})") from exc

    def read(arrays: list[np.ndarray], size: tuple[int, int]) -> list[Detections]:
        batch = arrays[0].shape[0] if arrays and arrays[0].ndim else 1
        out = []
        for n in range(batch):
            one = {name: a[n:n + 1] if a.ndim and a.shape[0] == batch else a
                   for name, a in zip(names, arrays, strict=True)}
            try:
                boxes, labels, scores = function(one)
            except Exception as exc:
                raise BadInputError(f"--postprocess {spec} failed: {exc}") from exc
            out.append(Detections.make(boxes, labels, scores, size=size))
        return out
    return read


def _named(outputs: Sequence[TensorInfo], word: str) -> int | None:
    for i, t in enumerate(outputs):
        if any(word in n.lower() for n in t.names or (t.name,)):
            return i
    return None


def _rank(t: TensorInfo) -> int | None:
    return None if t.dims is None else len(t.dims)


def _match(name: str, outputs: Sequence[TensorInfo]) -> Read | None:
    """The reader `name` for these outputs, or None when they do not fit it."""
    ib, il, is_ = _named(outputs, "box"), _named(outputs, "label"), _named(outputs, "score")
    if name == "modelapi" and ib is not None and il is not None:
        dims = outputs[ib].dims
        if dims is not None and len(dims) == 3 and dims[2] == 5:
            return _read_modelapi(ib, il)
    if name == "boxes_labels_scores" and None not in (ib, il, is_):
        assert ib is not None and il is not None and is_ is not None
        dims = outputs[ib].dims
        if dims is not None and len(dims) in (2, 3) and dims[-1] == 4:
            return _read_bls(ib, il, is_)
    if name == "yolo":
        for i, t in enumerate(outputs):
            d = t.dims
            if d is not None and len(d) == 3 and d[1] is not None and d[1] > 4 and (
                    d[2] is None or d[2] > d[1]):
                return _read_yolo(i)
    return None


def find_reader(outputs: Sequence[TensorInfo], name: str | None = None,
                postprocess: str | None = None) -> Reader:
    """The reader for a detector with these outputs: `name` when given (it must fit), the
    `postprocess` function when given, else the first of `READERS` that fits."""
    if name is not None and name not in READERS:
        raise BadInputError(f"unknown --detector-output '{name}'; readers: "
                            f"{', '.join(READERS)}")
    if postprocess is not None or name == "postprocess":
        if postprocess is None:
            raise BadInputError("--detector-output postprocess needs --postprocess "
                                "module:function")
        return Reader("postprocess", _read_user(postprocess, [t.name for t in outputs]))
    shapes = ", ".join(f"{t.name} {t.shape_text}" for t in outputs)
    for candidate in [name] if name else READERS[:3]:
        read = _match(candidate, outputs)
        if read is not None:
            return Reader(candidate, read)
    if name:
        raise BadInputError(f"--detector-output {name} does not fit the outputs ({shapes}); "
                            f"readers: {', '.join(READERS)}")
    raise BadInputError(f"no detector reader recognises the outputs ({shapes}); readers: "
                        f"{', '.join(READERS)} (--detector-output, --postprocess "
                        f"module:function)")

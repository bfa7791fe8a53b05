"""The results.jsonl record: one JSON object per image, one schema for the writer, resume,
eval and the report (docs/runtime.md, "Files in OUT_DIR"; a test checks that page's example
against this type).

    Record.ok(...).to_json()          # what `runner.write` appends
    Record.error(item, message, run)  # an image that could not be read or written
    Record.from_json(obj)             # a line read back; `RecordError` says what is wrong
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from xaigraph.errors import BadInputError

__all__ = ["ROLES", "Prediction", "Record", "RecordError", "Target"]

ROLES = ("predicted", "truth", "both")  # a target's "role" (Target)


class RecordError(BadInputError):
    """A results.jsonl line that is not a record: what is wrong with it."""


@dataclass(frozen=True)
class Prediction:
    """One of the model's top classes: index, name, probability (4 decimals)."""

    cls: int
    label: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"class": self.cls, "label": self.label, "score": self.score}


@dataclass(frozen=True)
class Target:
    """One map of an image: its class, name and score (a detector's: the box's), its files
    relative to OUT_DIR (`overlay`, `raw` None when not written) and, for a detector, its
    box `[x1, y1, x2, y2]` in the original's pixels. `range`: the map's raw minimum and
    maximum (None when the model's maps came scaled to u8); `low_confidence`: the score is
    below the run's `--low-confidence`. On an image with ground truth that names a model class
    (`targets.AndTruth`), `role`: "predicted" (the model's best class), "truth" (a
    ground-truth class), "both" or None (neither), and `extra`: a map made only because the
    prediction is wrong (eval leaves it out of its metrics). Records of older runs have none
    of them (None, False, None, False)."""

    cls: int
    label: str
    score: float
    map: str | None
    overlay: str | None = None
    raw: str | None = None
    box: list[float] | None = None
    range: list[float] | None = None
    low_confidence: bool = False
    role: str | None = None
    extra: bool = False

    def to_json(self) -> dict[str, Any]:
        out = {"class": self.cls, "label": self.label, "score": self.score, "map": self.map,
               "overlay": self.overlay, "raw": self.raw, "box": self.box,
               "range": self.range, "low_confidence": self.low_confidence}
        if self.role is not None:
            out["role"] = self.role
        if self.extra:
            out["extra"] = True
        return out

    def files(self) -> list[str]:
        return [f for f in (self.map, self.overlay, self.raw) if f]


@dataclass(frozen=True)
class Record:
    """One image's line. `status` "ok": the fields from `width` on are set; "error":
    `error` is the one-line reason and the rest stays empty."""

    index: int
    path: str
    key: str
    status: str
    run: str
    error: str | None = None
    width: int = 0
    height: int = 0
    predictions: tuple[Prediction, ...] = ()
    targets: tuple[Target, ...] = ()
    ground_truth: dict[str, Any] | None = None
    method: str | None = None
    method_reason: str | None = None
    detector_output: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    map_scale: str | None = None  # the overlays' colour scale; None: an older run's ("map")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def files(self) -> list[str]:
        """The relative paths of the files the record names."""
        return [f for t in self.targets for f in t.files()]

    def to_json(self) -> dict[str, Any]:
        """The line's object, keys in the documented order; optional keys only when set."""
        head: dict[str, Any] = {"index": self.index, "path": self.path, "key": self.key,
                                "status": self.status}
        if not self.ok:
            return {**head, "error": self.error, "run": self.run}
        out: dict[str, Any] = {
            **head, "width": self.width, "height": self.height,
            "predictions": [p.to_json() for p in self.predictions],
            "targets": [t.to_json() for t in self.targets]}
        if self.ground_truth is not None:
            out["ground_truth"] = self.ground_truth
        out.update(method=self.method, method_reason=self.method_reason)
        if self.detector_output is not None:
            out["detector_output"] = self.detector_output
        if self.map_scale is not None:
            out["map_scale"] = self.map_scale
        out.update(run=self.run, timings=self.timings)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Record:
        """A record read back; `RecordError` naming what is wrong with a malformed one."""
        if not isinstance(obj, dict):
            raise RecordError("not a JSON object")
        key = obj.get("key")
        if not isinstance(key, str) or not key:
            raise RecordError('no "key"')
        status = obj.get("status")
        index = obj.get("index", 0)
        index = index if isinstance(index, int) else 0
        path, run = str(obj.get("path")), str(obj.get("run", ""))
        if status == "error":
            return cls(index, path, key, "error", run, error=str(obj.get("error", "")))
        if status != "ok":
            raise RecordError(f'"status" is {status!r}, not "ok" or "error"')
        return cls(index, path, key, "ok", run, width=_int(obj.get("width")),
                   height=_int(obj.get("height")),
                   predictions=tuple(_prediction(p) for p in _objects(obj, "predictions")),
                   targets=tuple(_target(t) for t in _objects(obj, "targets")),
                   ground_truth=obj.get("ground_truth"), method=obj.get("method"),
                   method_reason=obj.get("method_reason"),
                   detector_output=obj.get("detector_output"),
                   timings=obj.get("timings") or {},
                   map_scale=obj["map_scale"] if isinstance(obj.get("map_scale"), str)
                   else None)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _objects(obj: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = obj.get(name)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise RecordError(f'"{name}" is not a list of objects')
    return value


def _prediction(p: dict[str, Any]) -> Prediction:
    score = p.get("score")
    if "score" not in p or (score is not None and (not isinstance(score, (int, float))
                                                   or isinstance(score, bool))):
        raise RecordError('a prediction without a numeric "score"')
    return Prediction(_int(p.get("class")), str(p.get("label", "")), _score(score))


def _score(value: Any) -> float:
    """A score read back: `null` (a score the model left undefined, written for NaN) is
    NaN again, so that the record writes the same line."""
    return float(value) if isinstance(value, (int, float)) else math.nan


def _target(t: dict[str, Any]) -> Target:
    files = [t.get(k) for k in ("map", "overlay", "raw")]
    if not all(isinstance(f, (str, type(None))) for f in files):
        raise RecordError('a target whose "map" is not a path')
    box = t.get("box")
    score = t.get("score")
    span = t.get("range")
    span_ok = (isinstance(span, list) and len(span) == 2
               and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in span))
    role = t.get("role")
    if role is not None and role not in ROLES:
        raise RecordError(f'a target whose "role" is {role!r}, not one of {", ".join(ROLES)}')
    return Target(_int(t.get("class")), str(t.get("label", "")),
                  _score(score) if score is None or isinstance(score, (int, float)) else 0.0,
                  files[0], files[1], files[2],
                  [float(v) for v in box] if isinstance(box, list) else None,
                  [float(span[0]), float(span[1])] if span_ok and span is not None else None,
                  t.get("low_confidence") is True, role if role in ROLES else None,
                  t.get("extra") is True)

"""One image's files and its results.jsonl record (`write`), in a worker thread or a Ray
task: each map rendered (`render.colour`), its overlay, its raw map, each written to a
temporary name and renamed (`rundir.write_file`).

    record = write(decoded, unbatch(out)[0], spec, out_dir, run)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xaigraph.errors import file_error
from xaigraph.explain import legend, render, scales
from xaigraph.explain.io.decode import Decoded
from xaigraph.explain.io.names import file_safe
from xaigraph.explain.io.record import Prediction, Record
from xaigraph.explain.io.record import Target as MapTarget
from xaigraph.explain.io.rundir import image_error, write_file
from xaigraph.explain.plan import ExplainSpec
from xaigraph.explain.targets import AndTruth, Outputs

__all__ = ["caption", "error_record", "file_safe", "overlay_picture", "predictions",
           "target_files", "write"]

TOP_PREDICTIONS = 5  # the predictions a record lists


def target_files(spec: ExplainSpec, key: str, cls: int, score: float,
                 box: int | None = None) -> dict[str, str | None]:
    """The relative paths of one target's files (docs/runtime.md); a detector's box `box`
    (its position among the image's targets) is in the name, `KEY_CLASS_bBOX_SCORE`, so
    that two boxes of a class do not share files."""
    name = file_safe(spec.labels[cls]) if spec.labels is not None and 0 <= cls < len(
        spec.labels) else str(cls)
    if box is not None:
        name = f"{name}_b{box}"
    stem = f"{key}_{name}_{score_text(score)}"
    return {"map": f"maps/{stem}.png",
            "overlay": f"overlays/{stem}.png" if spec.overlay else None,
            "raw": f"raw/{key}_{name}.npy" if spec.raw else None}


def score_text(score: float) -> str:
    """A score as file names carry it: two decimals (`0.41`), `noscore` when the model's
    score is not a number (NaN: the record has `null`)."""
    return f"{score:.2f}" if math.isfinite(score) else "noscore"


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
        map_scale=spec.map_scale,
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

    item = decoded.item
    scores = np.asarray(explained["scores"])
    targets = [int(c) for c in explained["targets"] if c >= 0]
    boxes = explained.get("boxes")
    ranges = [_range(explained, t) for t in range(len(targets))]
    common = scales.extremes(ranges)  # the image's extremes (`image` scale)
    marks = (spec.targets.marks(Outputs(scores, item=item))
             if isinstance(spec.targets, AndTruth) and boxes is None else {})
    entries = []
    for t, cls in enumerate(targets):
        box = None if boxes is None else _original_box(boxes[t], decoded)
        score = float(scores[cls]) if boxes is None else float(boxes[t][4])
        files = target_files(spec, item.key, cls, score, None if boxes is None else t)
        unit = np.asarray(explained["maps"][t])
        coloured = render.colour(unit, decoded.placement, decoded.width, decoded.height,
                                 spec.preprocess.size, spec.colormap)
        low = not score >= spec.low_confidence  # a score that is not a number is low too
        png = coloured.png(text=map_text(spec.label(cls), score, ranges[t], low))
        _put(out, str(files["map"]), functools.partial(_save_bytes, png), written)
        if files["overlay"] is not None:
            png = _overlay_png(decoded, coloured, spec, cls, score, box, low,
                               scales.scale_of(spec.map_scale, score, ranges[t], common))
            _put(out, files["overlay"], functools.partial(_save_bytes, png), written)
        if files["raw"] is not None:
            raw = np.asarray(explained["raw"][t], dtype=np.float32)
            _put(out, files["raw"], functools.partial(_save_npy, raw), written)
        role, extra = marks.get(cls, (None, False))
        entries.append(MapTarget(cls, spec.label(cls), round(score, 4), files["map"],
                                 files["overlay"], files["raw"], box,
                                 _as_list(ranges[t]), low, role, extra))
    return entries


def map_text(label: str, score: float, span: tuple[float, float] | None, low: bool
             ) -> dict[str, str]:
    """A map file's colour scale, as a tEXt chunk `xaigraph-scale` (ASCII JSON): the map is
    on its own min-max (`mode` "map"), `range` its raw min and max (null: unknown)."""
    return {"xaigraph-scale": json.dumps(
        {"mode": "map", "range": _as_list(span), "label": label,
         "score": score if math.isfinite(score) else None, "low_confidence": low},
        ensure_ascii=True, separators=(",", ":"))}


def _as_list(span: tuple[float, float] | None) -> list[float] | None:
    return None if span is None else [span[0], span[1]]


def _range(explained: dict[str, Any], t: int) -> tuple[float, float] | None:
    """Map `t`'s raw range (float32 values as Python floats), None when unknown."""
    got = explained.get("ranges")
    if got is None:
        return None
    lo, hi = (float(v) for v in np.asarray(got[t], dtype=np.float32))
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def overlay_picture(decoded: Decoded, coloured: render.Coloured, spec: ExplainSpec, cls: int,
                    score: float, box: list[float] | None, low: bool,
                    scale: scales.Scale) -> Any:
    """One target's overlay (a PIL RGB image): the map in `scale`'s colours over the photo,
    a detector's box drawn, and with `spec.legend` the colour scale in a margin below."""
    shown = coloured if scale.identity else dataclasses.replace(
        coloured, index=scale.apply(coloured.index))
    blended = render.overlay(decoded.image, shown, spec.opacity)
    if box is not None:
        render.draw_box(blended, box, f"{spec.label(cls)} {score:.2f}")
    if spec.legend:
        blended = legend.with_legend(blended, spec.colormap, scale,
                                     caption(spec.label(cls), score, scale.mode, low))
    return blended


def caption(label: str, score: float, mode: str, low: bool) -> str:
    """The legend's caption: class, score, scale mode, and "low confidence" when marked."""
    text = f"{label} {score_text(score).replace('noscore', 'no score')} | {mode} scale"
    return f"{text} | low confidence" if low else text


def _overlay_png(decoded: Decoded, coloured: render.Coloured, spec: ExplainSpec, cls: int,
                 score: float, box: list[float] | None, low: bool,
                 scale: scales.Scale) -> bytes:
    picture = overlay_picture(decoded, coloured, spec, cls, score, box, low, scale)
    return render.encode_png(np.asarray(picture), photo=True)


def _original_box(row: np.ndarray, decoded: Decoded) -> list[float]:
    """A `boxes` row (x1 y1 x2 y2 score, input pixels) as [x1, y1, x2, y2] in the original's
    pixels, to 0.01 px."""

    box = render.box_to_original(row[:4], decoded.placement, decoded.width, decoded.height)
    return [round(v, 2) for v in box]


def _save_bytes(data: bytes, path: Path) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _save_npy(array: np.ndarray, path: Path) -> None:
    with open(path, "wb") as f:
        np.save(f, array)

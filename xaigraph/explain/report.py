"""`xaigraph report`: one static folder (HTML, CSS, JS, images) built from an `explain` OUT_DIR
or an `eval` DIR (docs/runtime.md), that works from the file system with nothing fetched.

Contract of `build_report(source, out=None)`:

- `source` is an explain OUT_DIR (`run.json`, `results.jsonl`, `maps/`) or an eval DIR
  (`metrics.json`, one explain OUT_DIR per method in `<method>/`). Anything else, a
  results.jsonl line that is not a JSON object with `key` and `status`, or a malformed
  `metrics.json` / `run.json` is a `BadInputError` (one line) and nothing is written. A line
  with `"status": "error"` is a failed image, shown as such.
- `out` defaults to `source/report`. The report is built in a hidden temporary folder beside
  `out` and renamed into place at the end, so `out` is either absent, the old report, or the
  complete new one. An existing `out` is replaced only with `force=True` and only when it is
  a report (it holds the marker file `.xaigraph-report`); anything else is refused. What a
  build stopped on the way left beside `out` (its stage; an old report moved aside between
  the two renames) is put back or removed by the next build (`report_stage.recover`).
- Nothing outside the run is read (`report_paths`): the files records name must lie inside
  their run's folder, originals inside the folders run.json `inputs` names; anything else is
  a `BadInputError`, found before anything is written.
- Files: the originals are always copied into `images/` (byte for byte when the browser shows
  them as the model saw them, else re-encoded as JPEG with EXIF rotation applied), so the
  report never depends on where the inputs were. The colour maps are referenced by relative
  paths when `out` lies inside `source` (the default), and copied into `maps/` otherwise.
  Thumbnails (`thumbs/`, JPEG, longest side `THUMB_SIZE`) are made of each image's
  predicted class's overlay per method (a target of role "predicted" or "both"), else its
  first, else of the original.
- Flags (`flag_labels`): the predicted labels of an image are its top `k` predictions, `k`
  = `top_k` when given, else the number of ground-truth labels (at least 1). A predicted
  label found among the ground-truth labels is TP, one not found is FP; a ground-truth label
  not predicted is FN. Names match after `xaigraph.labels.normal` (case, `_`, `-` and
  spaces: the rule eval matches ground truth by), and a prediction such as "tabby, tabby
  cat" matches any of its comma-separated names. An image without ground truth gets no
  flags.
- Disagreement (`disagreement`) between methods, per image: the mean over pairs of methods
  of 1 - Pearson correlation of their maps of the same class (the first method's first
  target; a method without that class uses its first target), on a `DIS_SIZE` square grid
  where both maps are defined. 0 = the same map up to scale, 1 = unrelated, 2 = opposite.
  The maps are read from `raw/` when the run kept them, else from the colour PNG by
  inverting `xaigraph.overlay.colorize`. The pair of methods that disagree most is named
  (`disagreeing_pair`).
- Why was it wrong (issue 22): an image whose top prediction is FP (`flag_labels` with
  k = 1) is wrong (`wrong`: its label and score, the gallery's "errors only" and its sort);
  each target's `role` ("predicted", "truth", "both") is the record's, or, for a record of
  an older xaigraph, found by the same rules (`roles_of`). Methods side by side: for each
  class that two or more methods have a map of, the Spearman rank correlation of each pair
  of maps (`spearman`) on the same `DIS_SIZE` grid.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from PIL import Image, ImageOps

from xaigraph import jsontext
from xaigraph.errors import BadInputError, NotFoundError, file_error
from xaigraph.explain.io.record import Record, RecordError
from xaigraph.explain.render import lookup
from xaigraph.explain.report_paths import (
    TARGET_FILES,
    Resolver,
    check_target,
    find_original,
    input_roots,
    plain_name,
    public_card,
    shown_path,
)
from xaigraph.explain.report_scale import Views, run_range, scale_data
from xaigraph.explain.report_stage import MARKER, Stage, check_out, place, recover
from xaigraph.labels import normal
from xaigraph.overlay import colorize
from xaigraph.version import __version__

__all__ = [
    "ASSETS",
    "DIS_SIZE",
    "MARKER",
    "THUMB_SIZE",
    "Built",
    "Method",
    "Source",
    "build",
    "build_report",
    "colormap_of",
    "disagreeing_pair",
    "disagreement",
    "flag_labels",
    "map_values",
    "read_source",
    "role_flag",
    "roles_of",
    "spearman",
    "wrong",
]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("report_assets")
THUMB_SIZE = 160
DIS_SIZE = 24
_SHOWN_AS_IS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}


# --- reading the source ------------------------------------------------------------------

@dataclass
class Method:
    """One explain OUT_DIR: its method name, its model card and its results.jsonl lines."""

    name: str
    folder: Path
    card: dict[str, Any]
    records: list[dict[str, Any]]
    originals: dict[str, Path] = field(default_factory=dict)
    """The original image of each ok record, by key, where found in the run's inputs."""


@dataclass
class Source:
    """What a report is built from: an explain OUT_DIR (one method) or an eval DIR."""

    folder: Path
    kind: str  # "explain" or "eval"
    methods: list[Method]
    metrics: dict[str, Any] | None = None
    rows: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    """metrics.json's per-image rows by (method, key)."""


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise file_error(exc, path, "cannot read") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadInputError(f"{path}: {what} is not valid JSON ({exc})") from None


def _read_results(path: Path, resolver: Resolver) -> list[tuple[str, dict[str, Any]]]:
    """The records of a results.jsonl, each with where it is (`FILE line N`); the files
    their targets name checked to lie inside the run's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise file_error(exc, path, "cannot read") from None
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: not UTF-8 text") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise BadInputError(f"{where}: not valid JSON ({exc})") from None
        try:
            Record.from_json(record)
        except RecordError as exc:
            raise BadInputError(f"{where}: {exc}") from None
        for t_index, target in enumerate(record.get("targets") or []):
            for name in TARGET_FILES:
                check_target(path.parent, target.get(name),
                             f"{where}: targets[{t_index}].{name}", resolver)
        records.append((where, record))
    return records


def _read_card(folder: Path) -> dict[str, Any]:
    if not (folder / "run.json").is_file():
        log.warning("%s: no run.json; the model card will be empty", folder)
        return {}
    card = _read_json(folder / "run.json", "run.json")
    if not isinstance(card, dict):
        raise BadInputError(f"{folder / 'run.json'}: not a JSON object")
    return card


def _originals(folder: Path, card: dict[str, Any], records: list[tuple[str, dict[str, Any]]],
               resolver: Resolver) -> dict[str, Path]:
    """The original of each ok record found in the run's recorded inputs (none for a run
    that recorded none)."""
    roots = input_roots(folder, card)
    if roots is None:
        log.warning("%s: run.json records no inputs (a run of an older xaigraph); the report "
                    "shows the maps without their originals", folder)
        return {}
    bases = [Path.cwd(), folder.parent, folder]
    found = {}
    for where, record in records:
        if record.get("status") == "ok":
            original = find_original(record.get("path"), bases, roots, where, resolver)
            if original is not None:
                found[str(record["key"])] = original
    return found


def _read_method(folder: Path, name: str | None) -> Method:
    results = folder / "results.jsonl"
    if not results.is_file():
        raise BadInputError(f"{folder}: no results.jsonl (not an explain output)")
    resolver = Resolver()
    lines = _read_results(results, resolver)
    card = _read_card(folder)
    records = [record for _, record in lines]
    if name is None:
        first = next((r.get("method") for r in records if r.get("method")), None)
        given = card.get("method")  # run.json writes {"name": ..., "why": ...}
        if isinstance(given, dict):
            given = given.get("name")
        name = str(given or first or folder.name)
    return Method(name, folder, card, records, _originals(folder, card, lines, resolver))


def read_source(folder: str | os.PathLike[str]) -> Source:
    """Read an explain OUT_DIR or an eval DIR (see the module docstring); raises
    `BadInputError` for anything else."""
    root = Path(folder)
    if not root.exists():
        raise NotFoundError(f"{root}: no such folder")
    if not root.is_dir():
        raise BadInputError(f"{root}: not a folder (give an explain or eval output folder)")
    if (root / "metrics.json").is_file():
        return _read_eval(root)
    if (root / "results.jsonl").is_file():
        return Source(root, "explain", [_read_method(root, None)])
    raise BadInputError(f"{root}: neither results.jsonl (an explain output) nor metrics.json "
                        "(an eval output)")


def _read_eval(root: Path) -> Source:
    metrics = _read_json(root / "metrics.json", "metrics.json")
    names = metrics.get("methods") if isinstance(metrics, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise BadInputError(f"{root / 'metrics.json'}: no \"methods\" list")
    for part in ("metrics", "summary", "per_class"):
        if not isinstance(metrics.get(part, {}), dict):
            raise BadInputError(f"{root / 'metrics.json'}: \"{part}\" is not an object")
    images = metrics.get("images", [])
    if not isinstance(images, list) or not all(isinstance(r, dict) for r in images):
        raise BadInputError(f"{root / 'metrics.json'}: \"images\" is not a list of objects")
    methods = []
    for name in names:
        plain_name(name, str(root / "metrics.json"))
        if not (root / name).is_dir():
            raise BadInputError(f"{root}: metrics.json names the method {name!r} but there is "
                                f"no folder {name}/")
        methods.append(_read_method(root / name, name))
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in images:
        rows.setdefault((str(row.get("method")), str(row.get("key"))), []).append(row)
    return Source(root, "eval", methods, metrics, rows)


# --- flags and disagreement (pure functions) ---------------------------------------------

def _names(label: str) -> set[str]:
    keys = {normal(label)} | {normal(part) for part in label.split(",")}
    return {k for k in keys if k}


def flag_labels(predictions: Sequence[tuple[str, float]], truth: Sequence[str],
                top_k: int | None = None) -> tuple[list[tuple[str, float, str]], list[str]]:
    """The predicted labels with their flag ("TP"/"FP", or "" without ground truth) and the
    ground-truth labels that were not predicted (FN), by the rule in the module docstring.

    `predictions` are (label, score) pairs, best first."""
    truth = list(dict.fromkeys(t for t in truth if t))
    k = top_k if top_k is not None else max(1, len(truth))
    shown = list(predictions[:k])
    if not truth:
        return [(label, score, "") for label, score in shown], []
    truth_keys = [normal(t) for t in truth]
    found: set[int] = set()
    flagged = []
    for label, score in shown:
        hits = [i for i, key in enumerate(truth_keys) if key in _names(label)]
        found.update(hits)
        flagged.append((label, score, "TP" if hits else "FP"))
    missed = [t for i, t in enumerate(truth) if i not in found]
    return flagged, missed


_LUTS: dict[str, np.ndarray] = {}


def _lut(colormap: str) -> np.ndarray:
    """The `[256, 3]` table of a colour map explain can write (`render.COLORMAPS`); jet is
    `xaigraph.overlay.colorize`."""
    if colormap not in _LUTS:
        if colormap == "jet":
            table = colorize(np.arange(256, dtype=np.uint8)[None, :])[0]
        else:
            table = lookup(colormap)
        _LUTS[colormap] = np.asarray(table, dtype=np.int32)
    return _LUTS[colormap]


def colormap_of(card: dict[str, Any]) -> str:
    """The colour map a run wrote its maps with (run.json `colormap`, at the top or in
    `options`), jet when it does not say."""
    options = card.get("options")
    name = card.get("colormap") or (options.get("colormap") if isinstance(options, dict)
                                    else None)
    return name if isinstance(name, str) and name else "jet"


def map_values(path: Path, size: int = DIS_SIZE, colormap: str = "jet") -> np.ndarray:
    """A map file as `[size, size]` float values (NaN where the map is not defined): a raw
    `.npy` resized bilinearly, or a colour RGBA PNG sampled at the grid's cell centres and
    mapped back through the colour map (alpha 0 is NaN)."""
    if path.suffix == ".npy":
        raw = np.load(path).astype(np.float32)
        return np.asarray(Image.fromarray(raw).resize((size, size), Image.Resampling.BILINEAR),
                          dtype=np.float64)
    with Image.open(path) as im:
        rgba = np.asarray(im.convert("RGBA").resize((size, size), Image.Resampling.NEAREST))
    rgb = rgba[..., :3].reshape(-1, 1, 3).astype(np.int32)
    lut = _lut(colormap)
    nearest = np.argmin(((rgb - lut[None]) ** 2).sum(-1), axis=1).astype(np.float64)
    nearest[rgba[..., 3].reshape(-1) == 0] = np.nan
    return nearest.reshape(size, size) / 255.0


def disagreement(maps: Sequence[np.ndarray]) -> float | None:
    """Mean over pairs of 1 - Pearson correlation, on the cells where both maps are defined;
    None for fewer than two maps. A constant map correlates 0 with anything but itself."""
    values = []
    for i in range(len(maps)):
        for j in range(i + 1, len(maps)):
            a, b = maps[i].ravel(), maps[j].ravel()
            both = ~(np.isnan(a) | np.isnan(b))
            a, b = a[both], b[both]
            if a.size < 2:
                continue
            da, db = a - a.mean(), b - b.mean()
            norm = math.sqrt(float((da * da).sum()) * float((db * db).sum()))
            if norm == 0:
                r = 1.0 if np.array_equal(a, b) else 0.0
            else:
                r = float((da * db).sum()) / norm
            values.append(1.0 - r)
    return float(np.mean(values)) if values else None


def disagreeing_pair(maps: Sequence[np.ndarray], names: Sequence[str]
                     ) -> tuple[str, str, float] | None:
    """The two methods (by `names`) whose maps disagree most (1 - Pearson, `disagreement`
    of the pair) and that value; None for fewer than two comparable maps. Ties: the first
    pair in the methods' order."""
    best: tuple[str, str, float] | None = None
    for i in range(len(maps)):
        for j in range(i + 1, len(maps)):
            value = disagreement([maps[i], maps[j]])
            if value is not None and (best is None or value > best[2]):
                best = (names[i], names[j], value)
    return best


def _read_values(read: dict[Path, np.ndarray], path: Path, colormap: str) -> np.ndarray:
    """`map_values(path)`, read once per image (`read`: the maps read so far, by path)."""
    if path not in read:
        read[path] = map_values(path, colormap=colormap)
    return read[path]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values`, ties given the mean of their ranks (scipy's "average")."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = np.empty(len(values), bool)  # where a run of equal values starts
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(values))
    mean_rank = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends, their mean
    out = np.empty(len(values), np.float64)
    out[order] = np.repeat(mean_rank, ends - starts)
    return out


def _rank_pearson(rx: np.ndarray, ry: np.ndarray) -> float | None:
    dx, dy = rx - rx.mean(), ry - ry.mean()
    norm = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    if norm == 0:
        return None
    return max(-1.0, min(1.0, float((dx * dy).sum()) / norm))


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two maps of the same grid, on the cells where both
    are defined (not NaN): Pearson's of their ranks (ties averaged). None when fewer than
    two cells are, or a map is constant there (the correlation is undefined)."""
    return _spearman_pairs([a, b])[0][2]


def _spearman_pairs(maps: Sequence[np.ndarray]) -> list[tuple[int, int, float | None]]:
    """`spearman` of each pair (i < j) of `maps`; a map's ranks computed once for each set
    of cells it is compared on (once in all when the maps are defined on the same cells)."""
    flat = [np.ravel(m).astype(np.float64) for m in maps]
    defined = [~np.isnan(v) for v in flat]
    ranked: dict[tuple[int, bytes], np.ndarray] = {}

    def ranks(k: int, cells: np.ndarray) -> np.ndarray:
        key = (k, np.packbits(cells).tobytes())
        if key not in ranked:
            ranked[key] = _ranks(flat[k][cells])
        return ranked[key]

    out: list[tuple[int, int, float | None]] = []
    for i in range(len(flat)):
        for j in range(i + 1, len(flat)):
            both = defined[i] & defined[j]
            value = (_rank_pearson(ranks(i, both), ranks(j, both))
                     if int(both.sum()) >= 2 else None)
            out.append((i, j, value))
    return out


def wrong(predictions: Sequence[tuple[str, float]], truth: Sequence[str]
          ) -> list[Any] | None:
    """`[label, score]` of the top prediction when it is wrong (`flag_labels` with k = 1
    flags it FP: the image has ground truth and its best class is not in it), else None.
    `predictions` best first."""
    flagged, _ = flag_labels(predictions, truth, 1)
    if not flagged or flagged[0][2] != "FP":
        return None
    label, score, _ = flagged[0]
    return [label, round(score, 4) if math.isfinite(score) else None]


def _shown_first(roles: Sequence[str | None]) -> int:
    """The target a thumbnail shows: the predicted class's (the class the tile's first
    label names: eval puts a wrong image's ground truth first), else the first."""
    return next((k for k, role in enumerate(roles) if role in ("predicted", "both")), 0)


def role_flag(role: str | None, label: str, missed: Sequence[str]) -> str:
    """A target's flag by its role: the predicted class not in the truth "FP", a class both
    predicted and true "TP", a true class "FN" when the top predictions missed it (`missed`,
    `flag_labels`'s), else "TP"; "" for a target with no role."""
    if role == "predicted":
        return "FP"
    if role == "both":
        return "TP"
    if role == "truth":
        names = _names(label)
        return "FN" if any(normal(m) in names for m in missed) else "TP"
    return ""


def roles_of(record: dict[str, Any], truth: Sequence[str]) -> list[str | None]:
    """Each target's role: the record's `role` (`targets.AndTruth`); for a record without
    any (an older xaigraph), "predicted" for the top prediction's class, "truth" for a
    ground-truth label (the names `flag_labels` matches), "both", else None."""
    targets = record.get("targets") or []
    if any("role" in t for t in targets):
        return [t.get("role") for t in targets]
    if not truth:
        return [None] * len(targets)
    preds = [p for p in record.get("predictions") or []
             if isinstance(p.get("score"), (int, float))]
    top = max(preds, key=lambda p: p["score"], default=None)
    keys = {normal(t) for t in truth}
    out: list[str | None] = []
    for t in targets:
        is_pred = top is not None and t.get("class") == top.get("class")
        is_truth = bool(keys & _names(str(t.get("label", ""))))
        out.append("both" if is_pred and is_truth else "predicted" if is_pred
                   else "truth" if is_truth else None)
    return out


# --- building ----------------------------------------------------------------------------

def _url(path: str) -> str:
    return quote(path.replace(os.sep, "/"))


def _lexically_inside(path: Path, folder: Path) -> bool:
    """Whether `path` lies in `folder` by their names alone (as a browser resolves a
    relative URL), links not followed."""
    a, b = os.path.abspath(path), os.path.abspath(folder)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _original(src: Path, stage: Path, name: str, size: tuple[int, int] | None) -> str | None:
    """Put the original into `stage/images/`; its URL relative to the report, or None when it
    cannot be read (the report then shows the map alone)."""
    try:
        with Image.open(src) as im:
            fmt = im.format or ""
            turned = im.getexif().get(0x0112, 1) not in (0, 1)
            if fmt in _SHOWN_AS_IS and not turned and (size is None or im.size == size):
                rel = f"images/{name}{_SHOWN_AS_IS[fmt]}"
                _link_or_copy(src, stage / rel)
                return rel
            image = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("%s: cannot read the original (%s); the report shows the map alone",
                    src, exc)
        return None
    rel = f"images/{name}.jpg"
    image.save(stage / rel, quality=90)
    return rel


def _thumbnail(src: Path, dst: Path) -> bool:
    try:
        with Image.open(src) as im:
            im.draft("RGB", (THUMB_SIZE, THUMB_SIZE))
            image = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("%s: cannot make a thumbnail (%s)", src, exc)
        return False
    image.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR)
    image.save(dst, quality=72, optimize=True)
    return True


@dataclass
class _Entry:
    """One image of the report: its position and its record per method (None: absent)."""

    index: int
    key: str
    records: list[dict[str, Any] | None]


def _entries(source: Source) -> list[_Entry]:
    order: dict[str, _Entry] = {}
    count = len(source.methods)
    for m_index, method in enumerate(source.methods):
        for record in method.records:
            key = record["key"]
            if key not in order:
                order[key] = _Entry(len(order), key, [None] * count)
            order[key].records[m_index] = record
    return list(order.values())


def _truth(record: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    gt = record.get("ground_truth") or {}
    labels = [str(x) for x in gt.get("labels") or []]
    boxes = []
    for b in gt.get("boxes") or []:
        if isinstance(b, dict) and isinstance(b.get("box"), list) and len(b["box"]) == 4:
            name = str(b.get("name") or b.get("label") or "")
            boxes.append([float(v) for v in b["box"]] + [name])
            if name and name not in labels:
                labels.append(name)
    return labels, boxes


def _target_path(method: Method, target: dict[str, Any], name: str) -> Path | None:
    rel = target.get(name)
    return method.folder / rel if isinstance(rel, str) and rel else None


class _Builder:
    def __init__(self, source: Source, stage: Path, out: Path, top_k: int | None,
                 absolute: bool = False) -> None:
        self.source = source
        self.stage = stage
        self.top_k = top_k
        self.absolute = absolute
        self.link = _lexically_inside(out, source.folder)
        self.out = out
        # the colour scales' views of each method's maps (report_scale)
        self.views = [Views(stage, k, colormap_of(m.card), run_range(m.records))
                      for k, m in enumerate(source.methods)]

    def map_url(self, path: Path, name: str) -> str | None:
        if not path.is_file():
            log.warning("%s: map file missing", path)
            return None
        if self.link:  # path lies in its run's folder by name: the URL stays in DIR
            return _url(os.path.relpath(os.path.abspath(path), os.path.abspath(self.out)))
        rel = f"maps/{name}{path.suffix}"
        _link_or_copy(path, self.stage / rel)
        return _url(rel)

    def image(self, entry: _Entry) -> dict[str, Any]:
        """The data.js record of one image, writing its files into the stage."""
        first = next(r for r in entry.records if r is not None)
        truth, boxes = _truth(first)
        width, height = first.get("width"), first.get("height")
        size = (width, height) if isinstance(width, int) and isinstance(height, int) else None
        original = None
        for m_index, record in enumerate(entry.records):
            if record is not None and record["status"] == "ok":
                src = self.source.methods[m_index].originals.get(entry.key)
                if src is not None:
                    original = _original(src, self.stage, str(entry.index), size)
                    break
        per_method = []
        dis_maps = []
        dis_names: list[str] = []  # the method of each of dis_maps (disagreeing_pair)
        read: dict[Path, np.ndarray] = {}  # map files read once (rank_correlations too)
        want_class = None
        for m_index, record in enumerate(entry.records):
            method = self.source.methods[m_index]
            if record is None:
                per_method.append({"s": "absent"})
                continue
            if record["status"] == "error":
                per_method.append({"s": "error", "err": self.message(record, method)})
                continue
            item = self.method_item(entry, m_index, method, record, truth, original)
            per_method.append(item)
            if len(self.source.methods) > 1 and record["targets"]:
                targets = record["targets"]
                if want_class is None:
                    want_class = targets[0].get("class")
                chosen = next((t for t in targets if t.get("class") == want_class),
                              targets[0])
                path = _target_path(method, chosen, "raw") or _target_path(method, chosen,
                                                                           "map")
                if path is not None and path.is_file():
                    try:
                        dis_maps.append(_read_values(read, path, colormap_of(method.card)))
                        dis_names.append(method.name)
                    except (OSError, ValueError) as exc:
                        log.warning("%s: cannot read the map (%s)", path, exc)
        dis = disagreement(dis_maps) if len(dis_maps) > 1 else None
        return {"key": entry.key, "path": self.path(first, entry),
                "w": width, "h": height, "img": _url(original) if original else None,
                "gt": truth, "gk": [normal(t) for t in truth], "boxes": boxes,
                "dis": None if dis is None else round(dis, 4), "m": per_method,
                **self.side_by_side(entry, dis_maps, dis_names, read)}

    def side_by_side(self, entry: _Entry, dis_maps: list[np.ndarray], dis_names: list[str],
                     read: dict[Path, np.ndarray]) -> dict[str, Any]:
        """Issue 22's "methods side by side": `dpair` (the two methods whose maps disagree
        most, and their 1 - Pearson), `rk` (per class, each pair of methods' Spearman)."""
        pair = disagreeing_pair(dis_maps, dis_names)
        ranks = []
        if len(self.source.methods) > 1:
            for cls, label, pairs in self.rank_correlations(entry, read):
                ranks.append({"cls": cls, "label": label,
                              "r": [[i, j, None if r is None else round(r, 4)]
                                    for i, j, r in pairs]})
        return {"dpair": None if pair is None else [pair[0], pair[1], round(pair[2], 4)],
                "rk": ranks}

    def rank_correlations(self, entry: _Entry, read: dict[Path, np.ndarray] | None = None
                          ) -> list[tuple[Any, str, list[tuple[int, int, float | None]]]]:
        """(class, label, [(method i, method j, Spearman)]) for each class (same `class`
        and label) that two or more methods have a map of, in the first method's order.
        `read`: the map files already read (by path)."""
        read = {} if read is None else read
        found: dict[tuple[Any, str], dict[int, Path]] = {}
        for m_index, record in enumerate(entry.records):
            if record is None or record["status"] != "ok":
                continue
            method = self.source.methods[m_index]
            for target in record["targets"]:
                if target.get("box") is not None:
                    continue  # a detector's boxes: one box is not another method's
                path = _target_path(method, target, "raw") or _target_path(method, target,
                                                                           "map")
                key = (target.get("class"), str(target.get("label", "")))
                if path is not None and path.is_file():
                    found.setdefault(key, {}).setdefault(m_index, path)
        out = []
        for (cls, label), paths in found.items():
            if len(paths) < 2:
                continue
            values = {}
            for m_index, path in paths.items():
                try:
                    values[m_index] = _read_values(
                        read, path, colormap_of(self.source.methods[m_index].card))
                except (OSError, ValueError) as exc:
                    log.warning("%s: cannot read the map (%s)", path, exc)
            order = sorted(values)
            pairs = _spearman_pairs([values[m] for m in order])
            pairs = [(order[i], order[j], r) for i, j, r in pairs]
            if pairs:
                out.append((cls, label, pairs))
        return out

    def path(self, record: dict[str, Any], entry: _Entry) -> str:
        """The image's path as the report shows it (docs/runtime.md)."""
        value = record.get("path")
        if not isinstance(value, str) or not value:
            return entry.key
        if self.absolute:
            return value
        return shown_path(value, self.source.methods[0].folder)

    def message(self, record: dict[str, Any], method: Method) -> str:
        """A failed image's message, its absolute path shown as `path` shows it."""
        text = str(record.get("error") or "failed")
        value = record.get("path")
        if self.absolute or not isinstance(value, str) or not os.path.isabs(value):
            return text
        return text.replace(value, shown_path(value, method.folder))

    def method_item(self, entry: _Entry, m_index: int, method: Method, record: dict[str, Any],
                    truth: list[str], original: str | None) -> dict[str, Any]:
        preds = [(str(p.get("label", p.get("class", "?"))),
                  math.nan if p["score"] is None else float(p["score"]))
                 for p in record["predictions"]]
        preds.sort(key=lambda p: -p[1] if math.isfinite(p[1]) else math.inf)
        flagged, missed = flag_labels(preds, truth, self.top_k)
        rows = self.source.rows.get((method.name, entry.key), [])
        roles = roles_of(record, truth)
        targets = []
        for t_index, target in enumerate(record["targets"]):
            path = _target_path(method, target, "map")
            url = self.map_url(path, f"{m_index}/{entry.index}_{t_index}") if path else None
            label = str(target.get("label", target.get("class", "map")))
            values = _metric_values(rows, target)
            targets.append({"label": label, "cls": target.get("class"),
                            "score": target.get("score"), "map": url,
                            "box": target.get("box"), "mv": values,
                            "role": roles[t_index],
                            "f": role_flag(roles[t_index], label, missed),
                            **self.scale_fields(m_index, entry, record, t_index, path, url)})
        thumb_src = None
        if record["targets"]:
            thumb_src = _target_path(method, record["targets"][_shown_first(roles)], "overlay")
        if (thumb_src is None or not thumb_src.is_file()) and original:
            thumb_src = self.stage / original
        thumb = None
        rel = f"thumbs/{m_index}/{entry.index}.jpg"
        if thumb_src is not None and thumb_src.is_file() and _thumbnail(thumb_src,
                                                                        self.stage / rel):
            thumb = rel
        means: dict[str, float] = {}
        for name in {n for t in targets for n in t["mv"]}:
            vals = [t["mv"][name] for t in targets if t["mv"].get(name) is not None]
            if vals:
                means[name] = round(float(np.mean(vals)), 4)
        flags = sorted({f for _, _, f in flagged if f} | ({"FN"} if missed else set()))
        return {"s": "ok", "thumb": thumb,
                "pred": [[label, round(score, 4), flag] for label, score, flag in flagged],
                "pk": [normal(label) for label, _, _ in flagged],
                "all": [[label, round(score, 4)] for label, score in preds],
                "fn": missed, "flags": flags, "top": round(preds[0][1], 4) if preds else None,
                "t": targets, "mv": means, "wr": wrong(preds, truth)}


    def scale_fields(self, m_index: int, entry: _Entry, record: dict[str, Any], t_index: int,
                     path: Path | None, url: str | None) -> dict[str, Any]:
        """A target's colour scale views (`v`) and its low-confidence mark (`low`)."""
        target = record["targets"][t_index]
        found = path if path is not None and path.is_file() else None
        return {"v": self.views[m_index].of(found, record, t_index, url,
                                            f"{entry.index}_{t_index}"),
                "low": target.get("low_confidence") is True}


def _metric_values(rows: list[dict[str, Any]], target: dict[str, Any]) -> dict[str, Any]:
    """metrics.json's values for this target (same class, else same label)."""
    skip = {"key", "method", "class", "label"}
    for row in rows:
        same = (row.get("class") == target.get("class") if target.get("class") is not None
                else row.get("label") == target.get("label"))
        if same:
            return {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v)
                    for k, v in row.items() if k not in skip
                    and (v is None or isinstance(v, (int, float)))}
    return {}


def _data(source: Source, images: list[dict[str, Any]], top_k: int | None,
          title: str, absolute: bool = False) -> dict[str, Any]:
    spelled: dict[str, str] = {}  # normal(name) -> the first spelling seen, predictions first
    for im in images:
        for m in im["m"]:
            for p in m.get("pred", []):
                spelled.setdefault(normal(p[0]), p[0])
    for im in images:
        for g in im["gt"]:
            spelled.setdefault(normal(g), g)
    labels = sorted(([k, v] for k, v in spelled.items()), key=lambda kv: kv[1].lower())
    metrics = source.metrics or {}
    names = list((metrics.get("metrics") or {}).keys())
    if not names:
        names = sorted({n for im in images for m in im["m"] for n in m.get("mv", {})})
    return {
        "title": title, "kind": source.kind,
        "source": str(source.folder.resolve()) if absolute else source.folder.resolve().name,
        "generator": f"xaigraph {__version__}",
        "methods": [m.name for m in source.methods],
        "cards": {m.name: m.card if absolute else public_card(m.card) for m in source.methods},
        "top_k": top_k, "labels": labels, "metric_names": names,
        "metrics": {k: metrics.get(k, {}) for k in ("metrics", "summary", "per_class")}
        if source.metrics else None,
        "trust": _trust(metrics),
        "images": images,
        "scale": scale_data(source.methods, [colormap_of(m.card) for m in source.methods]),
    }


def _trust(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """metrics.json's sanity block without its per-image rows (report_trust.js draws it);
    None when eval did not run the sanity checks or the block is not an object."""
    block = metrics.get("sanity")
    if not isinstance(block, dict) or not isinstance(block.get("summary"), dict):
        return None
    return {k: block.get(k) for k in ("summary", "threshold", "metrics")}


def _progress(total: int, enabled: bool) -> Callable[[], None]:
    if not enabled:
        return lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="report", unit="img", file=sys.stderr, leave=False)
    return lambda: bar.update(1)


@dataclass(frozen=True)
class Built:
    """What `build` made: the report's index.html and what it holds."""

    index: Path
    images: int
    failed: int
    methods: list[str]
    seconds: float


def build_report(source: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                 *, force: bool = False, top_k: int | None = None, title: str | None = None,
                 workers: int | None = None, progress: bool = False,
                 absolute_paths: bool = False) -> Path:
    """Build the report of an explain OUT_DIR or eval DIR `source` into `out` (default
    `source/report`) and return the path of its `index.html`. See the module docstring."""
    return build(source, out, force=force, top_k=top_k, title=title, workers=workers,
                 progress=progress, absolute_paths=absolute_paths).index


def build(source: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
          *, force: bool = False, top_k: int | None = None, title: str | None = None,
          workers: int | None = None, progress: bool = False,
          absolute_paths: bool = False) -> Built:
    """`build_report`, returning the counts as well."""
    if top_k is not None and top_k < 1:
        raise BadInputError(f"--top-k must be at least 1, got {top_k}")
    src = read_source(source)
    target = Path(out) if out is not None else src.folder / "report"
    recover(target.parent)  # what builds killed there left: an old report put back
    check_out(target, force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Stage(target, f"xaigraph {__version__} report\n")
    except OSError as exc:
        raise file_error(exc, target, "cannot write") from None
    try:
        started = time.perf_counter()
        settings = _Settings(top_k, title, workers, progress, absolute_paths)
        images, data = _fill(stage.path, src, target, settings)
        seconds = time.perf_counter() - started
        log.info("report built in %.1f s", seconds)
        place(stage.path, target, force)
    except BaseException as exc:
        stage.close(remove=True)
        if isinstance(exc, OSError):
            raise file_error(exc, target, "cannot write the report") from None
        raise
    stage.close(remove=False)
    failed = sum(1 for im in images if any(m.get("s") == "error" for m in im["m"]))
    return Built(target / "index.html", len(images), failed, data["methods"], seconds)


@dataclass(frozen=True)
class _Settings:
    top_k: int | None
    title: str | None
    workers: int | None
    progress: bool
    absolute: bool


def _fill(stage: Path, src: Source, target: Path, settings: _Settings
          ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Write the report's files into `stage`; the images' records and data.js's content."""
    for sub in ("images", "thumbs", "maps"):
        (stage / sub).mkdir()
    for m_index in range(len(src.methods)):
        (stage / "thumbs" / str(m_index)).mkdir()
        (stage / "maps" / str(m_index)).mkdir()
    builder = _Builder(src, stage, target, settings.top_k, settings.absolute)
    entries = _entries(src)
    tick = _progress(len(entries), settings.progress)

    def one(entry: _Entry) -> dict[str, Any]:
        result = builder.image(entry)
        tick()
        return result

    count = settings.workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=count) as pool:
        images = list(pool.map(one, entries))
    name = settings.title or f"xaigraph report: {src.folder.resolve().name}"
    data = _data(src, images, settings.top_k, name, settings.absolute)
    # strict JSON (null for NaN), a name that is not UTF-8 escaped (xaigraph.jsontext)
    text = jsontext.dumps(data, ensure_ascii=False, separators=(",", ":"))
    (stage / "data.js").write_text(f"window.XAIGRAPH_REPORT = {text};\n", encoding="utf-8")
    for asset in sorted(ASSETS.iterdir()):
        if asset.is_file():
            shutil.copyfile(asset, stage / asset.name)
    os.chmod(stage, 0o755)
    return images, data

"""The `xaigraph eval` driver: explain OUT_DIRs in, `metrics.json` and `metrics.md` out.

    doc = evaluate("model.onnx", ["instances_val.json"], "eval/",
                   methods=["reciprocam", "rise"])

For each method the maps come from an explain OUT_DIR (docs/runtime.md): one given with
`from_explain` (its run.json names the method; it must be of this MODEL, by sha256, and have
the raw maps, `xaigraph explain --raw`; it is linked as `EVAL_DIR/<method>`), else one made in
`EVAL_DIR/<method>/` (resumed like `xaigraph explain` when run again). Maps are never
recomputed, except for coherency, which by definition explains the explanation-masked image.

Which classes are explained in an OUT_DIR that eval makes (`CLASS_RULE`, the target
`targets.GroundTruth`): the image's
ground-truth class names (box names and image labels) that name a model class, compared as
`xaigraph.labels.normal` does (case ignored, `_` and `-` as spaces, runs of spaces as one: the
report's rule too); an image with none of them gets its predicted class. A given OUT_DIR is
evaluated on the targets it has.

Every target of every image gets one row: the localisation metrics (on the map rendered to
the original's resolution with `render.resample`, i.e. through `Preprocess.placement`) against
the ground-truth boxes whose name is the target's label (undefined, null, when there is none);
the model-based metrics on the map resized to the model input (`metrics.resize_map`), with
the plain MODEL as `predict` and the model input of a black image as the baseline. Means, 95 %
bootstrap intervals (`stats.summary`) and counts per method and per method and class.

`EvalOptions.reference` (`--reference FP32_MODEL`): the reference model's maps of the same
images and classes, made into `EVAL_DIR/reference/<method>/` after MODEL's, compared with
them (`xaigraph.explain.reference`; metrics.json's `reference` block).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from xaigraph import textfile
from xaigraph.errors import BadInputError, FileError, OutputExistsError
from xaigraph.explain import metrics as M
from xaigraph.explain import stats
from xaigraph.explain.io import rundir
from xaigraph.explain.methods import get as method_info
from xaigraph.explain.targets import AndTruth, GroundTruth

__all__ = ["CLASS_RULE", "LOCALISATION", "MODEL_BASED", "EvalOptions", "evaluate",
           "markdown", "parse_metrics", "table"]

log = logging.getLogger(__name__)

LOCALISATION = ("pointing_game", "mass_in_box")
FAITHFULNESS = ("insertion_auc", "deletion_auc")
ADCC = ("average_drop", "coherency", "complexity", "adcc")
MODEL_BASED = FAITHFULNESS + ADCC
ALL = LOCALISATION + MODEL_BASED
SANITY = "sanity"  # the sanity checks of the maps (`trust`): a block of its own, not a row
EVERY = (*ALL, SANITY)  # what `--metrics all` asks for
CLASS_RULE = GroundTruth.RULE
DETECTOR_REFUSED = ("{model} is a detector: eval measures classifiers only; detector "
                    "evaluation is not yet built (xaigraph explain and xaigraph report show "
                    "a detector's maps and boxes)")
METRICS_JSON = "metrics.json"
METRICS_MD = "metrics.md"


@dataclass(frozen=True)
class EvalOptions:
    """What `evaluate` computes; see `xaigraph eval --help`."""

    methods: tuple[str, ...] = ()
    metrics: tuple[str, ...] = EVERY
    steps: int = M.STEPS
    tolerance: float = M.TOLERANCE
    from_explain: tuple[Path, ...] = ()
    runtime: str | None = None
    batch_size: int = 8
    force: bool = False
    blackbox: Any = None  # BlackBoxOptions for the black-box methods eval runs
    resamples: int = stats.RESAMPLES
    precision: str = "f32"  # OpenVINO's inference precision (runner.PRECISIONS)
    reference: Path | None = None  # --reference: the model MODEL was compressed from


def parse_metrics(text: str) -> tuple[str, ...]:
    """`all`, or metric names separated by commas (`pointing_game,insertion_auc`); `adcc`
    alone brings its three parts, `insertion_deletion` both AUCs; `sanity` the sanity
    checks (`trust`)."""
    names: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        group = {"all": EVERY, "adcc": ADCC, "insertion_deletion": FAITHFULNESS,
                 "localisation": LOCALISATION}.get(part, (part,))
        for name in group:
            if name not in M.METRICS and name != SANITY:
                raise BadInputError(f"--metrics: unknown metric '{part}'; use all or some of "
                                    f"{', '.join(EVERY)}")
            if name not in names:
                names.append(name)
    if not names:
        raise BadInputError("--metrics: name at least one metric (or all)")
    return tuple(n for n in EVERY if n in names)


# -- the model as a function --------------------------------------------------------------------

Predict = Callable[[np.ndarray], np.ndarray]  # model inputs (its layout) -> [B, K] probabilities


@dataclass
class _Model:
    """The plain MODEL as metrics see it: NCHW float inputs in, probabilities out.

    `run` is the model as a function over inputs in its own layout and element type: a
    black-box method's `Explainer.predict` when the eval has one (its session is the plain
    model), else one session opened once per eval (`_plain_predict`). `view(preprocess)`
    shares it with another preprocessing's baseline (a given OUT_DIR's)."""

    run: Predict
    nhwc: bool
    dtype: np.dtype[Any]
    baseline: np.ndarray  # [1, C, H, W] float32: the model input of a black image
    baseline_scores: np.ndarray | None = None

    @classmethod
    def of(cls, run: Predict, preprocess: Any) -> _Model:
        from PIL import Image

        h, w = preprocess.size
        nhwc = preprocess.layout == "NHWC"
        black = preprocess.apply(Image.new("RGB", (w, h)))
        model = cls(run, nhwc, np.dtype(preprocess.dtype), _nchw(black, nhwc))
        model.baseline_scores = model.predict(model.baseline)[0]
        return model

    def view(self, preprocess: Any) -> _Model:
        """The same model function under another preprocessing (its own baseline)."""
        return _Model.of(self.run, preprocess)

    def model_input(self, x: np.ndarray) -> np.ndarray:
        """NCHW float metric inputs as the model takes them (layout, element type)."""
        y = x.transpose(0, 2, 3, 1) if self.nhwc else x
        if np.issubdtype(self.dtype, np.integer):
            info = np.iinfo(self.dtype)
            y = np.clip(np.round(y), info.min, info.max)
        return np.ascontiguousarray(y, dtype=self.dtype)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.run(self.model_input(x)), np.float32).astype(np.float64)


def _plain_predict(spec: Any) -> Predict:
    """The plain MODEL as a function (`model.ModelFn`) through one session of its own, for an
    eval whose first method runs an augmented model."""
    from xaigraph.explain.model import ModelFn, probabilities
    from xaigraph.session import Session

    fn = ModelFn(Session.open(spec.model, spec.runtime, precision=spec.hint), requests=1,
                 what="eval runs")

    def run(feeds: np.ndarray) -> np.ndarray:
        return probabilities(fn(feeds, [spec.class_output])[0], spec.activation, spec.detector)

    return run


def _nchw(x: np.ndarray, nhwc: bool) -> np.ndarray:
    """A model input `[1, ...]` (or one image `[...]`) as NCHW float32 `[1, C, H, W]`."""
    a = np.asarray(x)
    if a.ndim == 3:
        a = a[None]
    if nhwc:
        a = a.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(a, dtype=np.float32)


class _Coherency:
    """`explain_fn` for ADCC's coherency: the method run again on masked images, by the
    `Explainer` that made the maps (for a black-box method, through the same mask path),
    the classes given in the batch dict's `classes` (the spec's target is `GroundTruth`)."""

    def __init__(self, explainer: Any, model: _Model) -> None:
        self.explainer = explainer
        self.model = model

    def __call__(self, images: np.ndarray, classes: Sequence[int]) -> np.ndarray:
        out = self.explainer({"index": np.arange(len(images), dtype=np.int64),
                              "input": self.model.model_input(images),
                              "classes": np.asarray(classes, np.int64).reshape(-1, 1)})
        maps = out["maps"]
        if maps.shape[1] == 0:
            return np.zeros((len(images), *maps.shape[-2:]), np.float32)
        return np.where((out["targets"][:, :1] >= 0)[:, :, None, None], maps[:, :1], 0.0
                        )[:, 0].astype(np.float32)


# -- explain OUT_DIRs ---------------------------------------------------------------------------

@dataclass
class _Source:
    """One method's explain OUT_DIR and the spec that reads (and, if made, writes) it."""

    method: str
    folder: Path
    spec: Any
    given: bool
    card: dict[str, Any] = field(default_factory=dict)


def _read_given(folder: Path) -> tuple[str, dict[str, Any]]:
    if not (folder / rundir.RUN).is_file() or not (folder / rundir.RESULTS).is_file():
        raise BadInputError(f"--from-explain {folder}: not an explain OUT_DIR (no run.json "
                            "and results.jsonl)")
    card = rundir.read_run(folder) or {}
    method = (card.get("method") or {}).get("name")
    if not isinstance(method, str):
        raise BadInputError(f"--from-explain {folder}: run.json names no method")
    if not (card.get("options") or {}).get("raw"):
        raise BadInputError(f"--from-explain {folder}: no raw maps; run xaigraph explain "
                            "with --raw")
    _check_raw_files(folder)
    return method, card


def _check_raw_files(folder: Path) -> None:
    """Refuse, before anything is written, an OUT_DIR whose ok records name a raw map that
    is not a file there (deleted since: the metrics would stop half-way)."""
    for record in rundir.read_lines(folder / rundir.RESULTS):
        if record.get("status") != "ok" or not isinstance(record.get("targets"), list):
            continue
        for target in record["targets"]:
            rel = target.get("raw") if isinstance(target, dict) else None
            if isinstance(rel, str) and not (folder / rel).is_file():
                raise BadInputError(f"--from-explain {folder}: its raw map {rel} is missing; "
                                    "run xaigraph explain --raw there again")


def _preprocess_of(card: dict[str, Any], fallback: Any) -> Any:
    from xaigraph.preprocess import Preprocess

    values = card.get("preprocessing")
    if not isinstance(values, dict):
        return fallback
    fixed: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                             for k, v in values.items()}
    try:
        return Preprocess(**fixed)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"run.json: preprocessing not understood: {exc}") from exc


def _sources(model: Path, out_dir: Path, options: EvalOptions) -> list[_Source]:
    """Every method's source, checked and prepared before anything is written."""
    from xaigraph.explain.plan import DetectorMethodError, prepare

    if not model.exists():
        raise BadInputError(f"model not found: {model}")
    given: dict[str, tuple[Path, dict[str, Any]]] = {}
    for folder in options.from_explain:
        method, card = _read_given(Path(folder))
        if method in given:
            raise BadInputError(f"--from-explain: two OUT_DIRs of method {method} "
                                f"({given[method][0]}, {folder})")
        given[method] = (Path(folder), card)
    for name in options.methods:
        method_info(name, "--methods")  # an unknown name: one line naming the choices
    methods = list(options.methods) or list(given)
    if not methods:
        raise BadInputError("name the methods to evaluate (--methods) or give explain "
                            "OUT_DIRs (--from-explain)")
    methods += [m for m in given if m not in methods]
    sources = []
    for method in methods:
        try:
            spec = prepare(model, method=method, targets="all", runtime=options.runtime,
                           batch_size=options.batch_size, raw=True, blackbox=options.blackbox,
                           precision=options.precision)
        except DetectorMethodError as exc:
            raise BadInputError(DETECTOR_REFUSED.format(model=model.name)) from exc
        if spec.detector:
            raise BadInputError(DETECTOR_REFUSED.format(model=model.name))
        if spec.method != method:
            raise BadInputError(f"--methods {method}: the model gives {spec.method}")
        spec = replace(spec, targets=_ground_truth(spec))
        if method in given:
            folder, card = given[method]
            sha = (card.get("model") or {}).get("sha256")
            if sha != spec.sha256:
                raise BadInputError(f"--from-explain {folder}: its maps are of another model "
                                    f"(sha256 {str(sha)[:12]}, MODEL {spec.sha256[:12]})")
            spec = replace(spec, preprocess=_preprocess_of(card, spec.preprocess))
            sources.append(_Source(method, folder, spec, True, card))
        else:
            sources.append(_Source(method, out_dir / method, spec, False))
    return sources


def _check_made(source: _Source, force: bool) -> rundir.RunDir:
    """The OUT_DIR eval makes for `source`, checked (nothing written yet)."""
    card = _made_card(source.spec)
    source.card = card
    folder = rundir.RunDir(source.folder, card, force=force)
    folder.check()
    return folder


def _made_card(spec: Any) -> dict[str, Any]:
    card = spec.card()  # options.targets: eval's rule (the spec's target is GroundTruth)
    card["digest"] = rundir.digest(card)
    return card


def _make(source: _Source, folder: rundir.RunDir, items: Sequence[Any],
          tick: Callable[[], None]) -> Any:
    """Write `source.folder` as `xaigraph explain --raw` would, with eval's targets: the run
    loop over the local engine (threads, batches, resume, locks). The `Explainer` that made
    the maps, for coherency and, for a black-box method, as the plain model."""
    from xaigraph.explain import runloop
    from xaigraph.explain.explainer import Explainer

    explainer = Explainer(source.spec)
    runloop.run(source.spec, items, folder, explainer=explainer,
                on_record=lambda _: tick())
    explainer.cancel.clear()  # the engine sets it at its end; coherency runs it again
    return explainer


def _ground_truth(spec: Any) -> GroundTruth | AndTruth:
    """eval's target: the ground truth, matched against the model's class names (its
    labels, else `class N`, as explain names them); for a wrong prediction, the predicted
    class too (`AndTruth`: its map is `extra` in the record, left out of the metrics),
    unless the model computes a fixed set of maps (`insert --targets`)."""
    names = tuple(spec.label(i) for i in range(spec.num_classes))
    rule = GroundTruth(names)
    return rule if spec.classes_output else AndTruth(rule, names)


def _link(source: _Source, out_dir: Path) -> str:
    """`EVAL_DIR/<method>` for a given OUT_DIR (a symbolic link unless it is that folder);
    the folder as metrics.json records it."""
    place = out_dir / source.method
    target = source.folder.resolve()
    if place.resolve() == target:
        return source.method
    if place.is_symlink() or not place.exists():
        tmp = out_dir / f".{source.method}.link"
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(target, tmp, target_is_directory=True)
        os.replace(tmp, place)
        return source.method
    raise BadInputError(f"{place} exists and is not {source.folder}; use another -o DIR")


# -- the metrics of one OUT_DIR -----------------------------------------------------------------

def _none(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 6)


def _rows(source: _Source, items: dict[str, Any], model: _Model, options: EvalOptions,
          tick: Callable[[], None], explainer: Any = None) -> Iterator[dict[str, Any]]:
    """The metrics' rows of one OUT_DIR, one image at a time (its records read lazily, each
    image decoded again and let go). `explainer`: the method's `Explainer`, for coherency."""
    from xaigraph.explain.explainer import unit_maps
    from xaigraph.explain.io.decode import decode

    spec = source.spec
    wanted = set(options.metrics)
    coherency = (_Coherency(explainer, model) if explainer is not None
                 and wanted & {"coherency", "adcc"} else None)
    for record in rundir.read_lines(source.folder / rundir.RESULTS):
        item = items.get(str(record.get("key")))
        if item is None or record.get("status") != "ok" or not record.get("targets"):
            continue
        decoded = decode(item, spec.preprocess)
        if decoded.error is not None:
            log.warning("%s", decoded.error)
            tick()
            continue
        measured = [t for t in record["targets"] if not t.get("extra")]  # not a wrong
        # prediction's extra map: the metrics stay on the maps eval always measured
        if not measured:
            tick()
            continue
        targets = [int(t["class"]) for t in measured]
        unit = np.stack([unit_maps(
            rundir.read_raw_map(source.folder, t).astype(np.float32)) for t in measured])
        rows = [{"key": item.key, "method": source.method, "class": c,
                 "label": spec.label(c)} for c in targets]
        if wanted & set(LOCALISATION):
            _localisation(rows, unit, decoded, spec, options)
        if wanted & set(MODEL_BASED):
            _model_based(rows, unit, _nchw(np.asarray(decoded.input), model.nhwc), targets,
                         model, coherency, options)
        tick()
        yield from rows


def _localisation(rows: list[dict[str, Any]], unit: np.ndarray, decoded: Any, spec: Any,
                  options: EvalOptions) -> None:
    """The pointing game and the mass in the boxes of each row's map, on the original."""
    from xaigraph.explain import render

    wanted = set(options.metrics)
    tol = M.pointing_tolerance(*_seen(decoded.placement), tolerance=options.tolerance)
    for row, m in zip(rows, unit, strict=True):
        boxes = _boxes_of(decoded.item, row["label"])
        values, seen = render.resample(m, decoded.placement, decoded.width, decoded.height,
                                       spec.preprocess.size)
        values = np.where(seen, values, np.nan)
        if "pointing_game" in wanted:
            row["pointing_game"] = _none(M.pointing_game(values, boxes, tol))
        if "mass_in_box" in wanted:
            row["mass_in_box"] = _none(M.mass_in_box(values, boxes))


def _model_based(rows: list[dict[str, Any]], unit: np.ndarray, x: np.ndarray,
                 targets: list[int], model: _Model, coherency: _Coherency | None,
                 options: EvalOptions) -> None:
    """Insertion / deletion and ADCC of each row's map, resized to the model input `x`; the
    perturbed images through the model `--batch-size` at a time, as explain's batches (in
    one batch, the 2 x steps images of a curve held the runtime's memory for 60 images)."""
    wanted = set(options.metrics)
    at_input = np.stack([M.resize_map(m, x.shape[2:]) for m in unit])
    if wanted & set(FAITHFULNESS):
        found = M.insertion_deletion(x, at_input, targets, model.predict, steps=options.steps,
                                     baseline=model.baseline,
                                     baseline_scores=model.baseline_scores,
                                     batch_size=options.batch_size)
        for t, row in enumerate(rows):
            if "insertion_auc" in wanted:
                row["insertion_auc"] = _none(found.insertion[t])
            if "deletion_auc" in wanted:
                row["deletion_auc"] = _none(found.deletion[t])
    if wanted & set(ADCC):
        scores = M.adcc(x, at_input, targets, model.predict, coherency,
                        baseline=model.baseline, batch_size=options.batch_size)
        for t, row in enumerate(rows):
            for name in ADCC:
                if name in wanted:
                    row[name] = _none(scores[name][t])


def _seen(placement: Any) -> tuple[float, float]:
    left, top, right, bottom = placement.image_box
    return right - left, bottom - top


def _boxes_of(item: Any, label: str) -> list[tuple[float, float, float, float]]:
    from xaigraph.labels import normal

    name = normal(label)
    return [tuple(b.box) for b in getattr(item, "boxes", ()) if normal(b.name) == name]


# -- summaries and tables -----------------------------------------------------------------------

def _summaries(rows: list[dict[str, Any]], methods: Sequence[str], names: Sequence[str],
               resamples: int) -> tuple[dict[str, Any], dict[str, Any]]:
    summary: dict[str, Any] = {}
    per_class: dict[str, Any] = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        summary[method] = {n: stats.summary([r.get(n) for r in mine], resamples=resamples)
                           for n in names}
        classes: dict[str, list[dict[str, Any]]] = {}
        for r in mine:
            classes.setdefault(r["label"], []).append(r)
        per_class[method] = {
            label: {n: stats.summary([r.get(n) for r in group], resamples=resamples)
                    for n in names}
            for label, group in sorted(classes.items())}
    return summary, per_class


def _cell(s: dict[str, Any]) -> str:
    if s["mean"] is None:
        return "-"
    low, high = s["ci95"]
    return f"{s['mean']:.3f} [{low:.3f}, {high:.3f}] n={s['n']}"


def _grid(doc: dict[str, Any]) -> list[tuple[str, list[list[str]]]]:
    """(title, rows with a header row) of each table: methods side by side, then per class."""
    methods = doc["methods"]
    names = list(doc["metrics"])
    arrow = {"higher": "↑", "lower": "↓"}

    def head(name: str) -> str:
        return f"{name} {arrow[doc['metrics'][name]['direction']]}"

    tables = [("Methods (mean [95 % bootstrap interval] n)",
               [["metric", *methods]]
               + [[head(n), *[_cell(doc["summary"][m][n]) for m in methods]] for n in names])]
    labels = sorted({label for m in methods for label in doc["per_class"][m]})
    rows = [["class", "metric", *methods]]
    for label in labels:
        for n in names:
            cells = [_cell(doc["per_class"][m][label][n]) if label in doc["per_class"][m]
                     else "-" for m in methods]
            if any(c != "-" for c in cells):
                rows.append([label, head(n), *cells])
    tables.append(("Per class", rows))
    return tables


def table(doc: dict[str, Any]) -> str:
    """The terminal tables (plain text, columns aligned)."""
    from xaigraph.explain import reference, trust

    tables = list(_grid(doc))
    if "reference" in doc:
        tables.append(reference.table_rows(doc["reference"]))
    if "sanity" in doc:
        tables.append(trust.table_rows(doc["sanity"]))
    out = []
    for title, rows in tables:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        out.append(title)
        out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                for r in rows]
        out.append("")
    return "\n".join(out)


def markdown(doc: dict[str, Any]) -> str:
    """metrics.md: the same tables in Markdown, and each metric's paper and parameters."""
    out = ["# Saliency-map metrics", "",
           f"Model `{doc['model']}`; {doc['images_evaluated']} images; classes explained: "
           f"{doc['class_rule']}. Intervals: 95 % percentile bootstrap, "
           f"{doc['bootstrap']['resamples']} resamples, seed {doc['bootstrap']['seed']}.", ""]
    for title, rows in _grid(doc):
        out += [f"## {title}", "", "| " + " | ".join(rows[0]) + " |",
                "|" + "---|" * len(rows[0])]
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        out.append("")
    if "reference" in doc:
        from xaigraph.explain.reference import markdown_lines

        out += markdown_lines(doc["reference"])
    if "sanity" in doc:
        from xaigraph.explain import trust

        out += trust.markdown_lines(doc["sanity"])
    out += ["## Metrics", ""]
    for name, m in doc["metrics"].items():
        params = ", ".join(f"{k}={v}" for k, v in m["params"].items()) or "none"
        out.append(f"- `{name}` ({m['direction']} is better): {m['paper']}; {params}")
    return "\n".join(out) + "\n"


# -- the driver ---------------------------------------------------------------------------------

def evaluate(model: str | os.PathLike[str], inputs: Sequence[str],
             out_dir: str | os.PathLike[str], options: EvalOptions | None = None, *,
             stdin: Any = None, progress: bool = False) -> dict[str, Any]:
    """Evaluate the maps of each method on the images of `inputs`; write `metrics.json` and
    `metrics.md` into `out_dir` and return the metrics.json object. Bad input raises
    `BadInputError` before anything is written."""
    from xaigraph.explain.inputs import collect

    options = options or EvalOptions()
    if options.steps < 1:
        raise BadInputError(f"--steps must be at least 1, not {options.steps}")
    if not math.isfinite(options.tolerance) or options.tolerance < 0:
        raise BadInputError(f"--tolerance must be a finite number >= 0, not "
                            f"{options.tolerance}")
    start = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"-o {out}: a file, not a folder")
    dataset = collect(list(inputs), stdin=stdin if stdin is not None else sys.stdin)
    sources = _sources(Path(model), out, options)
    rundir.check_writable(out)
    rundir.probe_lock(out)
    _check_own_files(out, options.force)
    folders = {s.method: _check_made(s, options.force) for s in sources if not s.given}
    refs = _references(Path(model), sources, out, options)
    with rundir.locked(out):
        rows, places = _measure(sources, folders, dataset.items, out, options, progress)
        compared = _compare(refs, dataset.items, sources, options, progress)
        checked = _sanity(Path(model), sources, dataset.items, options)
    doc = _document(str(model), list(inputs), sources, rows, places, options)
    if compared is not None:
        doc["reference"] = compared
    if checked is not None:
        doc["sanity"] = checked
    doc["seconds"] = round(time.perf_counter() - start, 3)
    _write(out, doc)
    return doc


_MD_HEAD = "# Saliency-map metrics\n"  # markdown()'s first line
_JSON_KEYS = ("methods", "metrics", "bootstrap", "summary", "images_evaluated")


def _references(model: Path, sources: list[_Source], out: Path, options: EvalOptions
                ) -> list[Any] | None:
    """`--reference`: its run of each method, checked (`reference.prepare_sources`); None
    without it."""
    if options.reference is None:
        return None
    from xaigraph.explain import reference

    return reference.prepare_sources(Path(options.reference), model, sources, out, options)


def _compare(refs: list[Any] | None, items: list[Any], sources: list[_Source],
             options: EvalOptions, progress: bool) -> dict[str, Any] | None:
    """metrics.json's `reference` block (`reference.measure`); None without --reference."""
    if refs is None or options.reference is None:
        return None
    from xaigraph.explain import reference

    return reference.measure(refs, items, sources[0].spec.label, options.resamples,
                             Path(options.reference), progress)


def _sanity(model: Path, sources: list[_Source], items: list[Any], options: EvalOptions
            ) -> dict[str, Any] | None:
    """metrics.json's `sanity` block (`trust.measure`); None unless `sanity` is asked."""
    if SANITY not in options.metrics:
        return None
    from xaigraph.explain import trust

    return trust.measure(model, sources, items, options.batch_size, options.resamples)


def _check_own_files(out: Path, force: bool) -> None:
    """metrics.json and metrics.md of `out` must be eval's (or absent) unless `force`; a
    folder in their place is refused whatever `force` says. Before anything is written."""
    for name, ours in ((METRICS_JSON, _is_metrics_json), (METRICS_MD, _is_metrics_md)):
        path = out / name
        if not (path.exists() or path.is_symlink()):
            continue
        if path.is_dir():
            raise FileError(f"{path} is a folder; eval writes its {name} there (move it, or "
                            "choose another -o)")
        if not force and not ours(path):
            raise OutputExistsError(f"{path} was not written by xaigraph eval: pass --force "
                                    "to replace it, or choose another -o")


def _is_metrics_json(path: Path) -> bool:
    try:
        doc = json.loads(textfile.read_text(path, limit=textfile.MAX_JSON_BYTES))
    except (BadInputError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and all(k in doc for k in _JSON_KEYS)


def _is_metrics_md(path: Path) -> bool:
    try:
        return textfile.read_text(path).startswith(_MD_HEAD)
    except BadInputError:
        return False


def _measure(sources: list[_Source], folders: dict[str, rundir.RunDir], items: list[Any],
             out: Path, options: EvalOptions, progress: bool
             ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Each method in turn: its folder made (or linked), then its metrics' rows, with one
    `Explainer` per method (made, used for coherency, let go) and one plain model function
    for the whole eval. The rows, and each method's folder as metrics.json names it."""
    from tqdm import tqdm

    by_key = {item.key: item for item in items}
    total = len(items) * (len(folders) + len(sources))
    rows: list[dict[str, Any]] = []
    places: dict[str, str] = {}
    plain: _Model | None = None
    with tqdm(total=total, unit="img", file=sys.stderr, disable=not progress,
              dynamic_ncols=True) as bar:
        for s in sources:
            if s.given:
                places[s.method] = _link(s, out)
                explainer = _coherency_explainer(s, options)
            else:
                places[s.method] = s.method
                explainer = _make(s, folders[s.method], items, lambda: bar.update(1))
            if plain is None:  # the first method's spec: the plain model's runtime
                run = explainer.predict if explainer is not None and not \
                    explainer.spec.white_box else _plain_predict(s.spec)
                plain = _Model.of(run, s.spec.preprocess)
            model = plain if s.spec.preprocess == sources[0].spec.preprocess else \
                plain.view(s.spec.preprocess)
            rows.extend(_rows(s, by_key, model, options, lambda: bar.update(1), explainer))
            del explainer, model
            s.spec = replace(s.spec, payload=())  # its augmented model: no longer needed
            _release()
    return rows, places


def _release() -> None:
    """What a method let go (its Explainer, its compiled model's cycles) collected before
    the next method compiles its own."""
    import gc

    gc.collect()


def _coherency_explainer(source: _Source, options: EvalOptions) -> Any:
    """A given OUT_DIR's `Explainer`, compiled only when coherency is measured."""
    from xaigraph.explain.explainer import Explainer

    if not set(options.metrics) & {"coherency", "adcc"}:
        return None
    return Explainer(source.spec)


def _document(model: str, inputs: list[str], sources: list[_Source],
              rows: list[dict[str, Any]], places: dict[str, str], options: EvalOptions
              ) -> dict[str, Any]:
    """The metrics.json object (its `seconds` added by the caller)."""
    methods = [s.method for s in sources]
    names = [n for n in options.metrics if n != SANITY]
    summary, per_class = _summaries(rows, methods, names, options.resamples)
    params = {"tolerance_px": options.tolerance, "steps": options.steps}
    return {
        "methods": methods,
        "model": model,
        "data": inputs,
        "class_rule": CLASS_RULE,
        "explain_dirs": places,
        "images": rows,
        "images_evaluated": len({r["key"] for r in rows}),
        "metrics": {n: M.METRICS[n].describe(**params) for n in names},
        "bootstrap": {"method": "percentile", "level": stats.LEVEL,
                      "resamples": options.resamples, "seed": stats.SEED},
        "summary": summary,
        "per_class": per_class,
    }


def _write(out: Path, doc: dict[str, Any]) -> None:
    from xaigraph.files import atomic_write

    text = _json(doc)
    atomic_write(out / METRICS_JSON, lambda p: p.write_text(text, encoding="utf-8"))
    md = markdown(doc)
    atomic_write(out / METRICS_MD, lambda p: p.write_text(md, encoding="utf-8"))


def _json(doc: dict[str, Any]) -> str:
    """metrics.json's text: strict JSON, `null` for an undefined value."""
    from xaigraph import jsontext

    order = ["methods", "model", "data", "class_rule", "explain_dirs", "metrics",
             "bootstrap", "summary", "per_class", "reference", "sanity", "images_evaluated",
             "seconds", "images"]
    return jsontext.dumps({k: doc[k] for k in order if k in doc}, indent=1) + "\n"

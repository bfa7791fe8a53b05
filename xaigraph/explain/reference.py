"""`xaigraph eval MODEL ... --reference FP32_MODEL`: how far MODEL's maps stray from those of
the model it was compressed from (an FP16 copy, an INT8 FakeQuantize or weight-compressed IR,
an ONNX QDQ model against its FP32 source).

    refs = prepare_sources(Path("fp32.onnx"), sources, out_dir, options)   # checked
    block = measure(refs, items, out_dir, options)                          # metrics.json's

The reference's maps are made as eval makes MODEL's (`runloop.run` over the local engine,
`--raw`) into `EVAL_DIR/reference/<method>/`, for the same images and the same classes:
each image's classes are those MODEL's folder explained (`Given`: the ground truth, else
MODEL's predicted class), never the reference's own choice, so that a wrong top-1 of the
compressed model is compared on the class it was explained for. A method with one map per
image (activationmap, eigencam) compares that map.

Figures, each with a 95 % bootstrap interval over its rows (`stats.summary`):

- `rank_correlation` (per image and class): Spearman's rho of the two raw maps, pixel by
  pixel at the maps' resolution (ties: average ranks; a non-finite pixel ranks lowest).
  Both maps constant: 1; one of them constant: 0 (a uniform map orders nothing, so it
  cannot agree with one that does; never left out as undefined). Higher is better.
- `top10_iou` (per image and class): the intersection over union of the two maps' top-10 %
  pixel sets, a set being every pixel at least as high as the map's `ceil(0.1 n)`-th highest
  value (ties all in: a constant map's set is every pixel, so its IoU with a peaked map is
  about 0.1). Higher is better.
- `prediction_agreement` (per image): 1 when MODEL's top-1 class is the reference's, else 0.

The reference must be a model of the same kind: same input and output shapes, the same
class count and, for an in-graph method, the target layer at the same place (`Layout`: the
target's shape and the learned layers before and after it, so quantisation's Q/DQ,
FakeQuantize or decompression nodes do not count); otherwise one line (`BadInputError`)
before anything is written.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xaigraph.errors import BadInputError, XaiGraphError
from xaigraph.explain import stats
from xaigraph.explain.io import rundir
from xaigraph.explain.targets import Outputs, given_or_best

__all__ = ["FIGURES", "FOLDER", "TOP_FRACTION", "Given", "Layout", "RefSource", "layout",
           "markdown_lines", "measure", "prepare_sources", "rank_correlation", "table_rows",
           "top_iou"]

log = logging.getLogger(__name__)

FOLDER = "reference"  # EVAL_DIR/reference/<method>/
TOP_FRACTION = 0.10
FIGURES: dict[str, dict[str, str]] = {
    "rank_correlation": {
        "direction": "higher", "per": "image and class",
        "what": "Spearman's rank correlation of the model's and the reference's raw maps "
                "(average ranks for ties; both constant: 1, one constant: 0)"},
    "top10_iou": {
        "direction": "higher", "per": "image and class",
        "what": "intersection over union of the two maps' top-10 % pixels (every pixel at "
                "least as high as the ceil(0.1 n)-th highest value)"},
    "prediction_agreement": {
        "direction": "higher", "per": "image",
        "what": "1 when the model's top-1 class is the reference's, else 0"},
}
CLASS_RULE = ("the classes explained for the model (its own rows: the ground truth, else its "
              "predicted class); a one-map-per-image method compares that map")


# -- the figures --------------------------------------------------------------------------------

def _finite(m: np.ndarray) -> np.ndarray:
    """The map as float64 with a non-finite pixel set below every finite one."""
    a = np.asarray(m, dtype=np.float64).ravel()
    bad = ~np.isfinite(a)
    if bad.any():
        low = a[~bad].min() - 1.0 if (~bad).any() else 0.0
        a = np.where(bad, low, a)
    return a


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two maps of one shape (see the module's docstring)."""
    from scipy.stats import rankdata

    x, y = _finite(a), _finite(b)
    if x.shape != y.shape:
        raise ValueError(f"maps of different shapes {np.shape(a)} and {np.shape(b)}")
    flat_x, flat_y = np.ptp(x) == 0, np.ptp(y) == 0
    if flat_x or flat_y:
        return 1.0 if flat_x and flat_y else 0.0
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    return float(np.clip((rx @ ry) / math.sqrt((rx @ rx) * (ry @ ry)), -1.0, 1.0))


def top_set(m: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """The boolean mask of the map's top `fraction` pixels, ties at the threshold included."""
    a = _finite(m)
    k = max(1, math.ceil(fraction * a.size))
    threshold = np.partition(a, a.size - k)[a.size - k]
    return (a >= threshold).reshape(np.shape(m))


def top_iou(a: np.ndarray, b: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """The IoU of the two maps' top-`fraction` pixel sets."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"maps of different shapes {np.shape(a)} and {np.shape(b)}")
    sa, sb = top_set(a, fraction), top_set(b, fraction)
    return float((sa & sb).sum() / (sa | sb).sum())


# -- the reference's target ---------------------------------------------------------------------

class Given:
    """The reference's target: for each image (by key) the classes MODEL's folder explained,
    brought in the batch dict's `classes` as eval's `GroundTruth` brings its own; an image
    the mapping lacks gets the reference's best class (eval gives it none such)."""

    RULE: ClassVar[str] = CLASS_RULE

    def __init__(self, classes_of: Mapping[str, Sequence[int]]) -> None:
        self.classes_of = {k: [int(c) for c in v] for k, v in classes_of.items()}

    def of_item(self, item: Any) -> list[int]:
        return list(self.classes_of.get(str(getattr(item, "key", "")), ()))

    def classes(self, out: Outputs) -> list[int]:
        return given_or_best(out, self.of_item)

    def text(self) -> str:
        return "eval --reference: " + self.RULE

    def in_graph(self) -> str | None:
        return None


# -- checks before anything is written ----------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """What must match between MODEL and its reference: the input and output shapes (batch
    left out), the class count, and where the target layer is, without names: its shape and
    how many learned layers (Conv, MatMul, Gemm reading the input's data) come before it and
    after it on the way to the class scores. None: no target found (black-box methods)."""

    inputs: tuple[tuple[int | None, ...] | None, ...]
    outputs: tuple[tuple[int | None, ...] | None, ...]
    num_classes: int | None
    target: str | None
    target_shape: tuple[int | None, ...] | None
    before: int | None
    after: int | None

    def where(self) -> str:
        if self.target is None:
            return "no target layer found"
        shape = ",".join("?" if d is None else str(d) for d in self.target_shape or ())
        return (f"{self.target} [{shape}] with {self.before} learned layers before it and "
                f"{self.after} after it")


def _tail(dims: Sequence[int | None] | None) -> tuple[int | None, ...] | None:
    return None if dims is None else tuple(dims[1:])


def layout(path: Path) -> Layout:
    """The `Layout` of the model file `path` (an augmented model's original graph)."""
    import networkx as nx

    from xaigraph import api, model_io
    from xaigraph import stamp as stamp_mod
    from xaigraph.backends import get_backend
    from xaigraph.stripping import strip_loaded

    loaded = model_io.load_model(path, "onnx" if path.suffix.lower() == ".onnx" else "ir")
    backend = get_backend(loaded.backend, loaded.external_data)
    stamp = stamp_mod.read(backend, loaded.model)
    subject = loaded if stamp is None else model_io.LoadedModel(
        strip_loaded(loaded, backend, stamp), loaded.path, loaded.backend, loaded.data_files)
    plain = get_backend(subject.backend, subject.external_data)
    inputs = tuple(_tail(p.dims) for p in plain.inputs(subject.model))
    outputs = tuple(_tail(p.dims) for p in plain.outputs(subject.model))
    try:
        analysed = api.analyse(subject)
    except XaiGraphError:
        return Layout(inputs, outputs, None, None, None, None, None)
    view, target = analysed.view, analysed.ctx.target
    assert target is not None
    ancestors = nx.ancestors(view.graph, target.value.op) | {target.value.op}
    before = sum(1 for o in ancestors
                 if view.ops[o].kind == "linear" and view.reads_input_data(o))
    after = sum(1 for o in view.ops_between(target.value, target.scores)
                if view.ops[o].kind == "linear")
    return Layout(inputs, outputs, target.num_classes, target.name, _tail(target.shape),
                  before, after)


def _shapes(dims: Sequence[tuple[int | None, ...] | None]) -> str:
    return ", ".join("?" if d is None else "[" + ",".join("?" if x is None else str(x)
                                                         for x in d) + "]" for d in dims)


def _check_alike(ref: Path, model: Path, mine: Layout, theirs: Layout,
                 in_graph: bool) -> None:
    """One line when the reference is not a model of MODEL's kind."""
    name = f"--reference {ref}"
    if theirs.inputs != mine.inputs:
        raise BadInputError(f"{name}: its inputs {_shapes(theirs.inputs)} are not "
                            f"{model.name}'s {_shapes(mine.inputs)}")
    if theirs.outputs != mine.outputs:
        raise BadInputError(f"{name}: its outputs {_shapes(theirs.outputs)} are not "
                            f"{model.name}'s {_shapes(mine.outputs)}")
    if in_graph and (theirs.target_shape, theirs.before, theirs.after) != (
            mine.target_shape, mine.before, mine.after):
        raise BadInputError(
            f"{name}: its target layer is not where {model.name}'s is ({theirs.where()}; "
            f"{model.name}: {mine.where()}), so their maps do not compare")


@dataclass
class RefSource:
    """One method's reference run: the reference's spec (target `Given`, filled once MODEL's
    folder is written), its folder, and MODEL's folder it is compared with."""

    method: str
    spec: Any
    folder: rundir.RunDir
    model_folder: Path
    per_class: bool


def prepare_sources(reference: Path, model: Path, sources: Sequence[Any], out_dir: Path,
                    options: Any) -> list[RefSource]:
    """The reference's run of each of MODEL's `sources` (evaluate's `_Source`s), checked
    and prepared; `BadInputError` (one line) for a reference that is missing, not a model,
    or not of MODEL's kind. Nothing written."""
    from xaigraph.explain.plan import DetectorMethodError, prepare

    name = f"--reference {reference}"
    if not reference.is_file():
        raise BadInputError(f"{name}: not found" if not reference.exists()
                            else f"{name}: not a model file")
    in_graph = any(s.spec.white_box for s in sources)
    try:
        theirs = layout(reference)
    except XaiGraphError as exc:
        raise BadInputError(f"{name}: {exc}") from exc
    _check_alike(reference, model, layout(model), theirs, in_graph)
    refs = []
    for s in sources:
        try:
            spec = prepare(reference, method=s.method, targets="all", runtime=options.runtime,
                           batch_size=options.batch_size, raw=True, blackbox=options.blackbox,
                           precision=options.precision)
        except DetectorMethodError as exc:
            raise BadInputError(f"{name}: a detector; eval compares classifiers") from exc
        except XaiGraphError as exc:
            raise BadInputError(f"{name}: {exc}") from exc
        if spec.detector:
            raise BadInputError(f"{name}: a detector; eval compares classifiers")
        if spec.num_classes != s.spec.num_classes:
            raise BadInputError(f"{name}: {spec.num_classes} classes, {model.name} has "
                                f"{s.spec.num_classes}")
        if spec.method != s.method:
            raise BadInputError(f"{name}: it gives {spec.method}, not {s.method}")
        spec = replace(spec, targets=Given({}))
        card = spec.card()
        # the classes come from MODEL's folder: another model or run there, another run here
        card["compared_with"] = {"sha256": s.spec.sha256, "run": s.card.get("digest")}
        card["digest"] = rundir.digest(card)
        folder = rundir.RunDir(out_dir / FOLDER / s.method, card, force=options.force)
        folder.check()
        refs.append(RefSource(s.method, spec, folder, s.folder, spec.method_info.per_class))
    return refs


# -- the run and the figures --------------------------------------------------------------------

def _ok_records(folder: Path) -> dict[str, dict[str, Any]]:
    return {str(r.get("key")): r for r in rundir.read_lines(folder / rundir.RESULTS)
            if r.get("status") == "ok" and isinstance(r.get("targets"), list)
            and r["targets"]}


def _top1(record: dict[str, Any]) -> int | None:
    predictions = record.get("predictions") or []
    return int(predictions[0]["class"]) if predictions else None


def _run(ref: RefSource, mine: dict[str, dict[str, Any]], items: Sequence[Any],
         progress: bool) -> None:
    """Write the reference's folder for the images MODEL's folder explained, their classes."""
    import sys

    from tqdm import tqdm

    from xaigraph.explain import runloop
    from xaigraph.explain.explainer import Explainer

    given = Given({k: [int(t["class"]) for t in r["targets"]] for k, r in mine.items()})
    ref.spec = replace(ref.spec, targets=given)
    todo = [item for item in items if item.key in mine]
    with tqdm(total=len(todo), unit="img", file=sys.stderr, disable=not progress,
              dynamic_ncols=True, desc=f"reference {ref.method}") as bar:
        runloop.run(ref.spec, todo, ref.folder, explainer=Explainer(ref.spec),
                    on_record=lambda _: bar.update(1))
    ref.spec = replace(ref.spec, payload=())


def _rows(ref: RefSource, mine: dict[str, dict[str, Any]], label: Any
          ) -> tuple[list[dict[str, Any]], list[float]]:
    """(rows per image and class, agreement per image) of one method, in MODEL's order."""
    theirs = _ok_records(ref.folder.path)
    rows: list[dict[str, Any]] = []
    agreement: list[float] = []
    for key, record in mine.items():
        other = theirs.get(key)
        if other is None:
            log.warning("reference %s: no maps of %s", ref.method, key)
            continue
        top, their_top = _top1(record), _top1(other)
        agree = None if top is None or their_top is None else float(top == their_top)
        agreement.append(np.nan if agree is None else agree)
        by_class = {int(t["class"]): t for t in other["targets"]}
        for t in record["targets"]:
            c = int(t["class"])
            match = by_class.get(c) if ref.per_class else other["targets"][0]
            row: dict[str, Any] = {"key": key, "method": ref.method, "class": c,
                                   "label": label(c), "model_top1": top,
                                   "reference_top1": their_top, "prediction_agreement": agree,
                                   "rank_correlation": None, "top10_iou": None}
            if match is None:
                log.warning("reference %s: no map of class %d for %s", ref.method, c, key)
            else:
                a, b = rundir.read_raw_map(Path(ref.model_folder), t), rundir.read_raw_map(
                    ref.folder.path, match)
                if a.shape == b.shape:
                    row["rank_correlation"] = round(rank_correlation(a, b), 6)
                    row["top10_iou"] = round(top_iou(a, b), 6)
                else:
                    log.warning("reference %s: %s's maps differ in shape (%s, %s)",
                                ref.method, key, a.shape, b.shape)
            rows.append(row)
    return rows, agreement


def measure(refs: Sequence[RefSource], items: Sequence[Any], label: Any, resamples: int,
            reference: Path, progress: bool = False) -> dict[str, Any]:
    """Make each reference folder, compare it with MODEL's; metrics.json's `reference`
    block. `label(c)`: MODEL's class name of index c."""
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    per_class: dict[str, Any] = {}
    for ref in refs:
        mine = _ok_records(Path(ref.model_folder))
        _run(ref, mine, items, progress)
        found, agreement = _rows(ref, mine, label)
        rows.extend(found)
        summary[ref.method] = {
            "rank_correlation": stats.summary([r["rank_correlation"] for r in found],
                                              resamples=resamples),
            "top10_iou": stats.summary([r["top10_iou"] for r in found], resamples=resamples),
            "prediction_agreement": stats.summary(agreement, resamples=resamples)}
        classes: dict[str, list[dict[str, Any]]] = {}
        for r in found:
            classes.setdefault(r["label"], []).append(r)
        per_class[ref.method] = {
            name: {n: stats.summary([r[n] for r in group], resamples=resamples)
                   for n in ("rank_correlation", "top10_iou")}
            for name, group in sorted(classes.items())}
    sha = refs[0].spec.sha256 if refs else None
    return {"model": str(reference), "sha256": sha, "class_rule": CLASS_RULE,
            "explain_dirs": {r.method: f"{FOLDER}/{r.method}" for r in refs},
            "metrics": FIGURES, "summary": summary, "per_class": per_class,
            "images": rows}


# -- tables -------------------------------------------------------------------------------------

def _cell(s: dict[str, Any]) -> str:
    if s["mean"] is None:
        return "-"
    low, high = s["ci95"]
    return f"{s['mean']:.3f} [{low:.3f}, {high:.3f}] n={s['n']}"


def table_rows(block: dict[str, Any]) -> tuple[str, list[list[str]]]:
    """(title, rows with a header row): the figures of each method side by side."""
    methods = list(block["summary"])
    rows = [["figure", *methods]]
    for name in FIGURES:
        rows.append([f"{name} ↑", *[_cell(block["summary"][m][name]) for m in methods]])
    return f"Against the reference {Path(block['model']).name} (mean [95 % interval] n)", rows


def markdown_lines(block: dict[str, Any]) -> list[str]:
    """metrics.md's section on the reference."""
    title, rows = table_rows(block)
    out = [f"## {title}", "", f"Reference `{block['model']}`; classes compared: "
           f"{block['class_rule']}.", "", "| " + " | ".join(rows[0]) + " |",
           "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    out.append("")
    out += [f"- `{n}` (per {f['per']}; {f['direction']} is better): {f['what']}"
            for n, f in FIGURES.items()]
    out.append("")
    return out

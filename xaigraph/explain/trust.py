"""eval's sanity checks of each method's maps (`--metrics sanity`; metrics.json's `sanity`
block), per image, with bootstrap intervals:

- cascading model parameter randomisation (MPRT; Adebayo et al., "Sanity Checks for
  Saliency Maps", NeurIPS 2018): the model's weights re-initialised from the top, the
  classifier first and then each stage above the target in turn (`xaigraph.randomise`),
  the map of the image's predicted class made again after each step and compared with the
  original's: Spearman of the absolute maps and SSIM of the min-max scaled maps
  (`xaigraph.sanity`). A map that stays alike once the weights it reads are random does
  not explain the model.
- class sensitivity: Spearman of the maps of the predicted and the least likely class
  (per-class methods only). A map that ranks the pixels alike for both is not about the
  class.

Steps are numbered from the top (`1. classifier`, `2. stage 7x7`, ...); a class-free method
(activationmap, eigencam) has no classifier step, as its map never reads the classifier.
In-graph methods only: their augmented model is randomised as it is (the insertion shares
the original's weights), so each step is one more inference of the images. A black-box
method's block says it was not measured. Cost: (steps + 1) runs of the method's model over
the images (`seconds` in the block, beside the original maps' own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xaigraph.explain import stats

__all__ = ["FIGURES", "THRESHOLD", "markdown_lines", "measure", "table_rows"]

log = logging.getLogger(__name__)

THRESHOLD = 0.6  # a figure above it fails (xaigraph.sanity.MPRT_STRICT, insert's strict level)
SEED = 0  # the re-initialisation's draws (randomise)

FIGURES: dict[str, dict[str, Any]] = {
    "mprt_spearman": {
        "what": "Spearman rank correlation of the absolute maps of the predicted class, "
                "original against the model re-initialised from the top down to each step",
        "direction": "lower", "threshold": THRESHOLD, "per": "image and cascade step"},
    "mprt_ssim": {
        "what": "SSIM of the min-max scaled maps, as above", "direction": "lower",
        "per": "image and cascade step"},
    "class_sensitivity": {
        "what": "Spearman rank correlation of the maps of the predicted and the least likely "
                "class (per-class methods)", "direction": "lower", "threshold": THRESHOLD,
        "per": "image"},
}


def _inputs(items: Sequence[Any], preprocess: Any) -> tuple[list[str], np.ndarray]:
    """The keys and model inputs `[N, ...]` of the items that decode."""
    from xaigraph.explain.io.decode import decode

    keys, inputs = [], []
    for item in items:
        decoded = decode(item, preprocess)
        if decoded.error is None:
            keys.append(item.key)
            inputs.append(np.asarray(decoded.input))
    return keys, np.stack(inputs) if inputs else np.zeros((0,))


def _maps(model: Any, runtime: str, x: np.ndarray, batch: int, class_output: Any
          ) -> tuple[np.ndarray, np.ndarray]:
    """`model`'s raw maps `[N, K, h, w]` (a class-free `[N, h, w]` as K = 1) and class scores
    `[N, K']` over `x`."""
    from xaigraph.session import Session

    session = Session.open(model, runtime)
    maps, scores = [], []
    for start in range(0, len(x), batch):
        out = session.run([x[start:start + batch]], [class_output, "saliency_map"])
        scores.append(np.asarray(out[0], np.float64).reshape(len(out[0]), -1))
        found = np.asarray(out[1], np.float64)
        maps.append(found[:, None] if found.ndim == 3 else found)
    return np.concatenate(maps), np.concatenate(scores)


def _method(model: Path, source: Any, keys: list[str], x: np.ndarray, batch: int
            ) -> tuple[list[dict[str, Any]], list[str], dict[str, float]]:
    """The rows of one in-graph method, its cascade's step names, and its timings."""
    from xaigraph import api, randomise
    from xaigraph import sanity as S

    spec = source.spec
    fmt = "onnx" if spec.runtime == "onnxruntime" else "ir"
    analysed = api.analyse(model, output_format=fmt)
    view, target, backend = analysed.view, analysed.ctx.target, analysed.ctx.backend
    assert target is not None
    augmented = api.insert(analysed, source.method, scaling=False, validate=False,
                           sanity="off").model
    start = time.perf_counter()
    before, scores = _maps(augmented, spec.runtime, x, batch, spec.class_output)
    plain = time.perf_counter() - start
    top = scores.argmax(axis=1)
    least = scores.argmin(axis=1)
    per_class = before.shape[1] == scores.shape[1] > 1
    chosen = top if per_class else np.zeros(len(x), dtype=int)
    rows = [{"key": k, "method": source.method, "class": int(top[i]),
             "label": spec.label(int(top[i])),
             "class_sensitivity": S.spearman(before[i, top[i]], before[i, least[i]])
             if per_class else None, "mprt": []} for i, k in enumerate(keys)]
    names = []
    for k, (step, copy) in enumerate(randomise.cascade_models(backend, augmented, view, target,
                                                              seed=SEED)):
        if step.name == "classifier" and not per_class:
            continue  # a class-free map never reads the classifier: nothing to test there
        name = f"{k + 1}. {step.name}"  # stages of one size follow each other: numbered
        names.append(name)
        after, _ = _maps(copy, spec.runtime, x, batch, spec.class_output)
        similar = S.similarity(before, after, list(chosen))
        for row, (rho, ssim) in zip(rows, similar.per_probe, strict=True):
            row["mprt"].append({"step": name, "spearman": rho, "ssim": ssim})
    seconds = {"maps": round(plain, 3), "total": round(time.perf_counter() - start, 3)}
    return rows, names, seconds


def _summary(rows: list[dict[str, Any]], names: list[str], resamples: int
             ) -> dict[str, Any]:
    cascade = []
    for k, name in enumerate(names):
        rho = stats.summary([r["mprt"][k]["spearman"] for r in rows], resamples=resamples)
        cascade.append({"step": name, "spearman": rho,
                        "ssim": stats.summary([r["mprt"][k]["ssim"] for r in rows],
                                              resamples=resamples),
                        "passed": None if rho["mean"] is None else rho["mean"] <= THRESHOLD})
    sensitivity = stats.summary([r["class_sensitivity"] for r in rows], resamples=resamples)
    return {"cascade": cascade, "class_sensitivity": sensitivity,
            "class_sensitivity_passed": None if sensitivity["mean"] is None
            else sensitivity["mean"] <= THRESHOLD}


def measure(model: Path, sources: Sequence[Any], items: Sequence[Any], batch: int,
            resamples: int) -> dict[str, Any]:
    """metrics.json's `sanity` block over `items`, each in-graph method of `sources`."""
    from xaigraph.explain import methods

    summary: dict[str, Any] = {}
    images: list[dict[str, Any]] = []
    for source in sources:
        if methods.get(source.method).black_box:
            summary[source.method] = {"skipped": "a black-box method: eval's sanity checks "
                                                 "randomise in-graph methods' models only"}
            continue
        keys, x = _inputs(items, source.spec.preprocess)
        if not keys:
            summary[source.method] = {"skipped": "no image could be read"}
            continue
        rows, names, seconds = _method(model, source, keys, x, batch)
        summary[source.method] = {**_summary(rows, names, resamples), "seconds": seconds}
        images.extend(rows)
    return {"metrics": FIGURES, "threshold": THRESHOLD, "seed": SEED, "summary": summary,
            "images": images}


# -- tables -------------------------------------------------------------------------------------

def _cell(s: dict[str, Any], passed: bool | None = None) -> str:
    if s["mean"] is None:
        return "-"
    low, high = s["ci95"]
    verdict = "" if passed is None else (" pass" if passed else " FAIL")
    return f"{s['mean']:.2f} [{low:.2f}, {high:.2f}]{verdict}"


def table_rows(block: dict[str, Any]) -> tuple[str, list[list[str]]]:
    """(title, rows with a header row): each method's figures, one row per check."""
    methods = list(block["summary"])
    steps: list[str] = []
    for m in methods:
        for c in block["summary"][m].get("cascade", []):
            if c["step"] not in steps:
                steps.append(c["step"])
    rows = [["check", *methods]]
    sensitivity = ["class sensitivity ↓"]
    for m in methods:
        s = block["summary"][m]
        sensitivity.append("n/a" if "skipped" in s else
                           _cell(s["class_sensitivity"], s["class_sensitivity_passed"]))
    rows.append(sensitivity)
    for step in steps:
        row = [f"MPRT Spearman, {step} random ↓"]
        for m in methods:
            found = [c for c in block["summary"][m].get("cascade", []) if c["step"] == step]
            row.append(_cell(found[0]["spearman"], found[0]["passed"]) if found else "n/a")
        rows.append(row)
    return (f"Can these maps be trusted? (mean [95 % interval]; pass at <= "
            f"{block['threshold']})"), rows


def markdown_lines(block: dict[str, Any]) -> list[str]:
    """metrics.md's sanity section."""
    title, rows = table_rows(block)
    out = [f"## {title}", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    out.append("")
    out += [f"- `{n}` (per {f['per']}; {f['direction']} is better): {f['what']}"
            for n, f in FIGURES.items()]
    skipped = {m: s["skipped"] for m, s in block["summary"].items() if "skipped" in s}
    out += [f"- {m}: not measured ({why})" for m, why in skipped.items()]
    out.append("")
    return out

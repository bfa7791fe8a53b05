"""The runtime's one method registry: what each method is, where it runs, what auto picks.

    info = methods.get("rise")            # MethodInfo; BadInputError naming the choices
    methods.choices()                     # ("auto", "reciprocam", ..., "rise", "aise")
    methods.auto_pick("tokens").name      # "vitreciprocam"

In-graph methods are the compiler's (`xaigraph.methods.METHODS`): their name, whether they
give one map per class, their one-line summary and the kind of target they read come from
their `Method` class and are never restated here; this module adds only the runtime's policy,
which of them auto picks for its target kind (`AUTO_PICKS`). Black-box methods are samplers
that run the model as a function (RISE, AISE; D-RISE is RISE over a detector); their entries
carry the sampler that `blackbox.explain_one` dispatches to.

From this registry come the CLI's `--method` choices (explain, eval), auto mode's choice
(`runner.prepare`), the black-box dispatch and the methods table of docs/runtime.md
(`table()`, checked by a test).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.explain.aise import aise
from xaigraph.explain.detections import Detections
from xaigraph.explain.drise import DetPredict, det_weights, drise
from xaigraph.explain.rise import Predict, Runner, rise
from xaigraph.methods import METHODS

# `xaigraph.explain.options.BlackBoxOptions`; that module reads this registry (its
# `settings`), so the type is named here and not imported
BlackBoxOptions = Any

__all__ = ["AUTO_PICKS", "REGISTRY", "TARGET_KINDS", "MethodInfo", "Sampler", "auto_choice",
           "auto_fallback", "auto_help", "auto_pick", "black_box", "choices", "for_inspect",
           "get", "table"]

Progress = Callable[[int], None]

# The kinds of target an in-graph method reads (`Method.target_kind`), as the reasons say them.
TARGET_KINDS = {"map": "a CNN", "tokens": "a vision transformer", "detector": "a detector"}
# What auto picks for each kind of target (the runtime's policy; one per kind).
AUTO_PICKS = ("reciprocam", "vitreciprocam", "detclassprobabilitymap")


class Sampler(Protocol):
    """A black-box method's sampler over the model as a function. Maps are raw `[T, H, W]`
    float32 in model-input pixels, one per class of `picks` or per box of `boxes`."""

    def classes(self, x: np.ndarray, predict: Predict, picks: Sequence[int],
                options: BlackBoxOptions, *, baseline: np.ndarray | float,
                runner: Runner | None, progress: Progress | None) -> np.ndarray: ...

    def boxes(self, x: np.ndarray, predict: DetPredict, boxes: Detections,
              options: BlackBoxOptions, *, baseline: np.ndarray | float,
              progress: Progress | None) -> np.ndarray: ...

    def settings(self, options: BlackBoxOptions) -> dict[str, Any]:
        """The sampler's effective numbers, for run.json."""
        ...


@dataclass(frozen=True)
class MethodInfo:
    """One method as the runtime sees it.

    `in_graph`: a subgraph the compiler grafts into the model (read out of its
    `saliency_map`), else a black-box `sampler`. `per_class`: one map per target (class or
    box), else one map per image. `target_kind`: the kind of target an in-graph method reads
    (`Method.target_kind`); None for a black-box method, which runs any classifier or
    detector. `auto`: in-graph, auto picks it for its `target_kind`; black-box, auto falls
    back to it when no in-graph method applies. `masks`: the sampler draws RISE's random masks
    (made inside an OpenVINO model when it can, counted by the masks progress bar)."""

    name: str
    in_graph: bool
    per_class: bool
    summary: str
    target_kind: str | None = None
    auto: bool = False
    title: str = ""  # how reasons name a black-box method ("RISE")
    detector_title: str = ""  # its name over a detector ("D-RISE"), when it has one
    masks: bool = False
    sampler: Sampler | None = None

    @property
    def black_box(self) -> bool:
        return not self.in_graph


def _in_graph(name: str) -> MethodInfo:
    m = METHODS[name]
    return MethodInfo(m.name, True, m.per_class, m.summary, m.target_kind,
                      auto=m.name in AUTO_PICKS)


# -- the black-box samplers ---------------------------------------------------------------------

@dataclass(frozen=True)
class RiseSampler:
    """RISE over a classifier (`rise.rise`), D-RISE over a detector (`drise.drise`)."""

    def classes(self, x: np.ndarray, predict: Predict, picks: Sequence[int],
                options: BlackBoxOptions, *, baseline: np.ndarray | float,
                runner: Runner | None, progress: Progress | None) -> np.ndarray:
        r = options.resolved
        assert r.num_masks is not None and r.cells is not None and r.prob is not None
        return rise(x, predict, targets=list(picks), num_masks=r.num_masks, cells=r.cells,
                    prob=r.prob, seed=options.seed, batch_size=options.batch_size,
                    baseline=baseline, runner=runner, progress=progress)

    def boxes(self, x: np.ndarray, predict: DetPredict, boxes: Detections,
              options: BlackBoxOptions, *, baseline: np.ndarray | float,
              progress: Progress | None) -> np.ndarray:
        r = options.resolved
        assert r.num_masks is not None and r.cells is not None and r.prob is not None
        return drise(x, predict, targets=boxes, num_masks=r.num_masks, cells=r.cells,
                     prob=r.prob, seed=options.seed, batch_size=options.batch_size,
                     baseline=baseline, progress=progress)

    def settings(self, options: BlackBoxOptions) -> dict[str, Any]:
        r = options.resolved
        return {"num_masks": r.num_masks, "cells": r.cells, "prob": r.prob}


@dataclass(frozen=True)
class AiseSampler:
    """AISE (`aise.aise`): Gaussian kernels placed by a global optimiser, per target."""

    def classes(self, x: np.ndarray, predict: Predict, picks: Sequence[int],
                options: BlackBoxOptions, *, baseline: np.ndarray | float,
                runner: Runner | None, progress: Progress | None) -> np.ndarray:
        chosen = list(picks)
        maps, _ = aise(x, lambda inputs: np.asarray(predict(inputs))[:, chosen],
                       targets=len(chosen), widths=options.kernel_widths,
                       evals=options.evaluations, baseline=baseline)
        return maps

    def boxes(self, x: np.ndarray, predict: DetPredict, boxes: Detections,
              options: BlackBoxOptions, *, baseline: np.ndarray | float,
              progress: Progress | None) -> np.ndarray:
        ones = Detections(boxes.boxes, boxes.labels, np.ones(len(boxes), np.float32),
                          boxes.probs)
        maps, _ = aise(x, det_weights(predict, ones), targets=len(boxes),
                       widths=options.kernel_widths, evals=options.evaluations,
                       baseline=baseline)
        return maps

    def settings(self, options: BlackBoxOptions) -> dict[str, Any]:
        return {"kernel_widths": list(options.kernel_widths),
                "evaluations_per_width": options.evaluations}


_BLACK_BOX = (
    MethodInfo("rise", False, True, "random masks weighted by the class score (Petsiuk et al. "
               "2018); D-RISE over a detector's boxes", auto=True, title="RISE",
               detector_title="D-RISE", masks=True, sampler=RiseSampler()),
    MethodInfo("aise", False, True, "Gaussian kernels placed by a global optimiser (DIRECT), "
               "weighted by keep-minus-remove scores", title="AISE", sampler=AiseSampler()),
)

REGISTRY: dict[str, MethodInfo] = {
    **{name: _in_graph(name) for name in METHODS},
    **{m.name: m for m in _BLACK_BOX},
}


def _check_registry() -> None:
    """One auto pick per target kind, one fallback, every name unique (at import)."""
    kinds = [m.target_kind for m in REGISTRY.values() if m.in_graph and m.auto]
    assert sorted(kinds, key=str) == sorted(TARGET_KINDS), kinds
    assert len(AUTO_PICKS) == len(kinds)
    assert sum(m.auto for m in REGISTRY.values() if m.black_box) == 1
    assert all(m.sampler is not None for m in REGISTRY.values() if m.black_box)
    assert len(REGISTRY) == len(METHODS) + len(_BLACK_BOX)


_check_registry()


def choices() -> tuple[str, ...]:
    """The `--method` choices: auto, then every method (in-graph first)."""
    return ("auto", *REGISTRY)


def get(name: str, what: str = "--method") -> MethodInfo:
    """The method `name`; `BadInputError` (one line, starting with `what`) naming the
    choices for an unknown one."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise BadInputError(f"{what}: unknown method '{name}'; choose one of: "
                            f"{', '.join(REGISTRY)}") from None


def black_box(name: str) -> MethodInfo:
    """The black-box method `name` (with its sampler)."""
    info = REGISTRY.get(name)
    if info is None or info.sampler is None:
        raise BadInputError(f"unknown black-box method '{name}'; use one of "
                            f"{', '.join(m.name for m in REGISTRY.values() if m.black_box)}")
    return info


def auto_pick(kind: str) -> MethodInfo:
    """The in-graph method auto picks for a target of `kind` (`TARGET_KINDS`)."""
    return next(m for m in REGISTRY.values() if m.in_graph and m.auto and m.target_kind == kind)


def auto_fallback() -> MethodInfo:
    """The black-box method auto falls back to when no in-graph method applies."""
    return next(m for m in REGISTRY.values() if m.black_box and m.auto)


def auto_choice(kind: str | None, applies: Mapping[str, str | None], problem: str | None,
                target_layer: str | None) -> tuple[str, str]:
    """(method, why) auto takes for a plain model: the pick for its target's `kind` when it
    applies (`applies`: method -> why not, None when it does), else the black-box fallback
    (also when no target was found: `kind` None, `problem` why)."""
    fallback = auto_fallback()
    if kind is None:
        return fallback.name, (f"auto: no white-box method applies ({problem}); "
                               f"black-box {fallback.title}")
    chosen = auto_pick(kind).name
    reason = applies.get(chosen)
    if reason is None:
        return chosen, f"auto: {TARGET_KINDS[kind]} (target {target_layer})"
    return fallback.name, f"auto: {chosen} does not apply ({reason}); black-box {fallback.title}"


def for_inspect(info: Mapping[str, Any]) -> dict[str, Any]:
    """`inspect`'s runtime fields from `api.inspect`'s `info`: every method, black-box ones
    too (they run a model with class scores, or a detector), and `auto`: the method
    `explain --method auto` takes and why."""
    runs = info.get("num_classes") is not None or bool(info.get("detector"))
    found: dict[str, Any] = {**info["methods"]}
    for m in REGISTRY.values():
        if m.black_box:
            found[m.name] = ({"applies": True, "form": f"black-box: {m.summary}"} if runs else
                             {"applies": False, "reason": "no output holds class scores"})
    stamp = info.get("stamp")
    if stamp is not None:
        return {"methods": found, "auto": {"method": stamp["method"],
                                           "why": "the model's stamp"}}
    target = info.get("target")
    applies = {n: None if m["applies"] else m["reason"] for n, m in info["methods"].items()}
    name, why = auto_choice(target["kind"] if target else None, applies,
                            info.get("target_problem"), target["name"] if target else None)
    return {"methods": found, "auto": {"method": name, "why": why}}


def auto_help() -> str:
    """explain's `--method` help: what auto picks (from the registry)."""
    picks = ", ".join(f"{m.name} for {TARGET_KINDS[str(m.target_kind)]}"
                      for m in REGISTRY.values() if m.in_graph and m.auto)
    return (f"For a plain MODEL: auto is the white-box method that applies ({picks}), "
            f"black-box {auto_fallback().name} when none does. An augmented MODEL uses "
            "its own.")


def table() -> str:
    """The methods table of docs/runtime.md (Markdown), made from the registry."""
    rows = ["| method | runs | maps | auto picks it for | what it computes |",
            "|---|---|---|---|---|"]
    for m in REGISTRY.values():
        runs = f"in the graph, `{m.target_kind}` target" if m.in_graph else "black-box sampler"
        maps = "one per target" if m.per_class else "one per image"
        if m.in_graph:
            auto = TARGET_KINDS[str(m.target_kind)] if m.auto else "-"
        else:
            auto = "any model whose pick does not apply (or that has none)" if m.auto else "-"
        rows.append(f"| `{m.name}` | {runs} | {maps} | {auto} | {m.summary} |")
    return "\n".join(rows) + "\n"

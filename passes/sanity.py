"""sanity{level=...}: check that the inserted map carries information (issue 22, "Trust")."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from xaigraph import randomise, sanity
from xaigraph.errors import BadInputError, SampleError, SanityError, XaiGraphError
from xaigraph.graph_view import GraphView
from xaigraph.methods import get_method
from xaigraph.pipeline import Model, Pass, PassContext, PassResult
from xaigraph.samples import image_input
from xaigraph.session import Session
from xaigraph.target import Target
from xaigraph.validate import check_samples, make_inputs

from .insert_saliency import SALIENCY_OUTPUT
from .select_classes import CLASSES_OUTPUT

__all__ = ["SanityPass"]

log = logging.getLogger(__name__)

DEFAULT_LEVEL = "on"


class SanityPass(Pass):
    """Never modifies the model. Requires the raw `saliency_map` (it runs right after
    insert-saliency). Runs the augmented model on the probe inputs (the samples when there
    are two or more, else the samples and the generated probes of `sanity.probe_images`, or
    seeded noise for a model that does not take an image) and computes the degenerate-map
    figures (`sanity.degeneracy`); then re-initialises the weights of the top of the
    cascade (`randomise`: the classifier for a per-class method, the stage that makes the
    target for a method with one map per image, whose map does not read the classifier)
    and compares the maps (`sanity.similarity`: MPRT's Spearman and SSIM). Records the
    figures in `ctx.sanity` (the stamp writes them).

    Levels: `on` (the default) fails with `SanityError` when the map carries no information
    (constant, the same for every input, or the same for every class); `warn` logs that as
    a warning instead; `strict` also fails when the MPRT Spearman correlation is above
    `sanity.MPRT_STRICT`. What only looks suspect (`Degeneracy.warnings`, and an MPRT
    figure above the threshold below `strict`) is recorded in `warnings`, never refused.
    (`off` leaves the pass out of the pipeline.)"""

    name = "sanity"
    option_names = ("level",)

    def __init__(self, level: str = DEFAULT_LEVEL) -> None:
        if level not in sanity.LEVELS or level == "off":
            raise BadInputError(f"unknown sanity level '{level}'; use one of "
                                f"{', '.join(sanity.LEVELS)}")
        self.level = level

    def options(self) -> dict[str, str]:
        return {} if self.level == DEFAULT_LEVEL else {"level": self.level}

    @classmethod
    def from_options(cls, options: dict[str, str]) -> SanityPass:
        return cls(options.get("level", DEFAULT_LEVEL))

    def requires(self, model: Model, ctx: PassContext) -> None:
        if ctx.target is None or ctx.insert is None:
            raise XaiGraphError("needs insert-saliency to run first")

    def run(self, model: Model, ctx: PassContext) -> PassResult:
        assert ctx.target is not None and ctx.insert is not None
        target, method = ctx.target, ctx.insert.method
        per_class = get_method(method).per_class
        selected = any(CLASSES_OUTPUT in p.name.split(", ") for p in ctx.backend.outputs(model))
        classes = target.detector is None
        view = ctx.original_view()
        step, why = _step(view, target, per_class)
        start = step.start if step is not None else None
        try:
            tapped = randomise.tap(ctx.backend, model, view, start) if start else model
        except XaiGraphError as exc:  # the view is not of this model's ops: no MPRT
            step, why, start, tapped = None, str(exc), None, model
        probes, source = _probes(ctx, model)
        maps, scores, taps = _run(tapped, ctx, probes, target, classes, start is not None)
        top = [int(np.argmax(s)) for s in scores] if classes and per_class and not selected \
            else None
        least = [int(np.argmin(s)) for s in scores] if top is not None else None
        found = sanity.degeneracy(maps, top, least)
        record: dict[str, Any] = {"level": self.level, "probe_source": source,
                                  **found.as_dict()}
        refuse, warn = found.no_information(), found.warnings()
        mprt = None
        if step is not None:
            try:
                after = _randomised_maps(model, ctx, view, step, probes, target, taps)
                mprt = {"step": step.name, "layers": len(step.layers),
                        **sanity.similarity(maps, after, top).as_dict()}
            except XaiGraphError as exc:  # a weight that is no constant of the model
                why = str(exc)
        record["mprt"] = mprt if mprt is not None else {"skipped": why}
        if mprt is not None and mprt["spearman"] > sanity.MPRT_STRICT:
            text = (f"barely changes when the {mprt['step']} weights are random (MPRT "
                    f"Spearman {mprt['spearman']:.2f} > {sanity.MPRT_STRICT})")
            (refuse if self.level == "strict" else warn).append(text)
        self._conclude(ctx, view, target, method, found, record, refuse, warn)
        return PassResult(model, modified=False)

    def _conclude(self, ctx: PassContext, view: GraphView, target: Target, method: str,
                  found: sanity.Degeneracy, record: dict[str, Any], refuse: list[str],
                  warn: list[str]) -> None:
        """Record the findings; refuse (or, under warn, warn of) a map without
        information."""
        record["warnings"] = warn + (refuse if self.level == "warn" else [])
        record["refused"] = refuse if self.level != "warn" else []
        ctx.sanity = record
        for w in refuse if self.level == "warn" else []:  # what `on` would have refused
            log.warning("the %s map %s (written anyway: --sanity warn)", method, w)
        if refuse and self.level != "warn":
            hint = _hint(ctx, view, target, found)
            raise SanityError(f"the {method} map {'; and '.join(refuse)}"
                              f"{'; ' + hint if hint else ''}; --sanity warn to write it "
                              "anyway")


def _step(view: GraphView, target: Target, per_class: bool
          ) -> tuple[randomise.Step | None, str]:
    """The cheap MPRT's step: the classifier for a per-class method, the stage that makes
    the target for one whose map reads the target only; or None and why there is none."""
    if target.detector is not None:
        return None, "a detector's maps have no classifier above them"
    if target.value.op not in view.ops:
        return None, "the target is not in the model as it came in"
    steps = randomise.cascade(view, target, stages=not per_class)
    if per_class:
        steps = [s for s in steps if s.name == "classifier"]
    else:  # its map reads the target only: the classifier cannot change it
        steps = [s for s in steps if s.name != "classifier"]
    if not steps:
        return None, "no learned layer to re-initialise"
    return steps[0], ""


def _randomised_maps(model: Model, ctx: PassContext, view: GraphView, step: randomise.Step,
                     probes: list[list[np.ndarray]], target: Target,
                     taps: list[np.ndarray]) -> np.ndarray:
    """The maps of `model` with `step`'s weights re-initialised: of only the part past the
    step's start, fed with what the original computed there (`taps`), when there is one."""
    backend = ctx.backend
    if step.start is None:
        copy = randomise.randomised(backend, model, view, [step], seed=0)
        return _run(copy, ctx, probes, target, False, False)[0]
    part = randomise.randomised(backend, model, view, [step], seed=0, start=step.start,
                                output=SALIENCY_OUTPUT)
    session = Session.open(part, backend.engine)
    names = [set(p.name.split(", ")) for p in backend.inputs(model)]
    maps = []
    for arrays, value in zip(probes, taps, strict=True):
        feed = {}
        for i, info in enumerate(session.inputs):
            if i == 0:
                feed[info.name] = value
            else:
                feed[info.name] = arrays[next(k for k, n in enumerate(names)
                                              if n & set(info.names))]
        m = np.asarray(session.run(feed)[0][0], dtype=np.float64)
        maps.append(m if m.ndim == 3 else m[None])
    return np.stack(maps)


def _probes(ctx: PassContext, model: Model) -> tuple[list[list[np.ndarray]], str]:
    """The probe inputs (each one model input list) and where they come from."""
    backend = ctx.backend
    check_samples(backend, ctx.original, ctx.samples)
    dtypes = backend.input_dtypes(model)
    samples = [[np.asarray(s).astype(dtypes[0])] for s in ctx.samples] if len(dtypes) == 1 \
        else []
    if len(samples) >= 2:
        return samples, "samples"
    shapes = ctx.probe_inputs or ctx.original_view().probe_inputs
    generated: list[list[np.ndarray]] = []
    try:
        from PIL import Image

        side = max(max(shapes[0][1:]), 32) if shapes and shapes[0] else 224
        for name, pixels in sanity.probe_images(side, side):
            generated.append([image_input(f"probe {name}", Image.fromarray(pixels), backend,
                                          ctx.original)])
        how = "generated photos"
    except (SampleError, BadInputError, ValueError):
        generated = [make_inputs(dtypes, shapes, seed=100 + i)
                     for i in range(len(sanity.PROBE_NAMES))]
        how = "seeded noise"
    return samples + generated, ("samples + " if samples else "") + how


def _run(model: Model, ctx: PassContext, probes: list[list[np.ndarray]], target: Target,
         classes: bool, tapped: bool) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The raw maps `[P, K, h, w]` of the first image of each probe, its class scores (when
    `classes`) and, when `tapped`, the model's last output (`randomise.tap`)."""
    session = Session.open(model, ctx.backend.engine)
    keys: list[int | str] = [SALIENCY_OUTPUT, *([target.output_index] if classes else []),
                             *([-1] if tapped else [])]
    maps, scores, taps = [], [], []
    for out in _each(session, probes, keys):
        m = np.asarray(out[0], dtype=np.float64)
        maps.append(m if m.ndim == 3 else m[None])
        if classes:
            scores.append(np.asarray(out[1], dtype=np.float64).ravel())
        if tapped:
            taps.append(out[-1][None])
    return np.stack(maps), scores, taps


def _each(session: Session, probes: list[list[np.ndarray]], keys: list[int | str]
          ) -> list[list[np.ndarray]]:
    """The `keys` outputs of each probe's first image: the probes run as one batch when
    the model takes any batch and every probe is one image, else one run each."""
    dynamic = all(t.dims is not None and len(t.dims) > 0 and t.dims[0] is None
                  for t in session.inputs)
    if dynamic and len(probes) > 1 and all(a.shape[:1] == (1,) for p in probes for a in p):
        batch = [np.concatenate([p[i] for p in probes]) for i in range(len(probes[0]))]
        out = session.run(batch, outputs=keys)
        return [[o[i] for o in out] for i in range(len(probes))]
    return [[o[0] for o in session.run(p, outputs=keys)] for p in probes]


def _hint(ctx: PassContext, view: GraphView, target: Target, found: sanity.Degeneracy
          ) -> str:
    """What the model's weights say about a map without information."""
    if target.value.op not in view.ops:
        return ""
    steps = randomise.cascade(view, target)
    flat = {s.name: [randomise.weight_array(ctx.backend, view, c) for c in s.weights]
            for s in steps}
    every = [a for arrays in flat.values() for a in arrays]
    if every and all(_one_value(a) for a in every):
        return "every learned layer's weights are constant"
    head = flat.get("classifier", [])
    if head and all(_one_value(a) or _same_rows(a) for a in head):
        return "the classifier weighs every class alike"
    if found.same_for_inputs <= sanity.SAME_TOL and found.constant < found.probes:
        return "the map does not depend on the input (does it come from a constant branch?)"
    return ""


def _same_rows(a: np.ndarray | None) -> bool:
    """Whether a matrix's rows (or columns) are all equal: every class weighed alike."""
    return a is not None and a.ndim == 2 and a.size > 0 and (
        bool(np.all(a == a[:1])) or bool(np.all(a == a[:, :1])))


def _one_value(a: np.ndarray | None) -> bool:
    return a is not None and a.size > 0 and bool(np.all(a == a.flat[0]))

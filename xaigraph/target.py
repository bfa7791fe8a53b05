"""Where the target layer is chosen.

The classification output is the one `--class-output` names, else the model's output shaped
`[N, K]` (or `[N, K, 1, 1]`); of several, one computed from the others (logits from
embeddings), then one ending in a Softmax/Sigmoid, then the first. Its class scores are the
input of a final Softmax / LogSoftmax / Sigmoid when the output ends in one (through
reshapes), otherwise the output itself.

The target is the last 4-D feature map `[N, C, H, W]` with `H, W > 1` that dominates the class
scores (every path from the model inputs to them passes through it) and is followed by at
least one learned layer before the scores. Every dominating 4-D map is reported as a candidate
with the reason it lost, nearest the output first.

A vision transformer (transformer blocks after the last spatial map; see `xaigraph.tokens`)
gets its token map `[N, L, D]` at the input of the last block as the target instead, with the
token grid in `Target.tokens`. A transformer with several branches (CrossViT) gets one
token map per branch in `Target.branches`, the finest grid's first and as the target.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from xaigraph import signals
from xaigraph.detector import DetectorHead, find_detector_head
from xaigraph.errors import TargetError, UnknownLayerError, XaiGraphError
from xaigraph.graph_view import GraphView, Value
from xaigraph.tokens import TokenGrid, find_branch_targets, find_token_target, token_grid

__all__ = [
    "Branch",
    "Candidate",
    "Target",
    "class_scores",
    "classification_output",
    "detect",
    "find_detector_target",
    "find_target",
]


@dataclass
class Candidate:
    value: Value
    name: str
    shape: tuple[int | None, ...]
    reason: str | None = None  # why it lost; None for the chosen one


@dataclass(frozen=True)
class Branch:
    """One branch's token map of a transformer with several (see `xaigraph.tokens`)."""

    value: Value
    name: str
    tokens: TokenGrid


@dataclass
class Target:
    value: Value
    name: str
    shape: tuple[int | None, ...]
    output: Value
    output_index: int
    scores: Value
    num_classes: int
    dominates: bool
    forced: bool
    candidates: list[Candidate] = field(default_factory=list)
    tokens: TokenGrid | None = None  # set for a transformer's token map [N, L, D]
    detector: DetectorHead | None = None  # set for a single-stage detector's class maps
    # Set when the map is channels-last [N, H, W, C]: why. Methods need [N, C, H, W]; the
    # channels-first pass puts a transpose after it (see `xaigraph.layout`).
    channels_last: str | None = None
    # Set for a transformer with several branches (see `xaigraph.tokens`): every branch's
    # token map and grid, the one with the most grid tokens (`value`, `tokens`) first.
    branches: list[Branch] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """"map" (a CNN feature map), "tokens" (a transformer) or "detector"."""
        if self.detector is not None:
            return "detector"
        return "tokens" if self.tokens is not None else "map"

    @property
    def grid(self) -> tuple[int, int] | None:
        """The saliency maps' size when the target's own shape does not give it."""
        if self.detector is not None:
            return self.detector.shapes[0][2], self.detector.shapes[0][3]
        if self.tokens is not None:
            return self.tokens.height, self.tokens.width
        return None


def _shape(view: GraphView, v: Value) -> tuple[int | None, ...] | None:
    t = view.tensor(v)
    if t.probe is not None:
        return tuple(t.probe)
    return t.shape


def _output_names(view: GraphView, index: int) -> list[str]:
    """The names model output `index` goes by: its tensor's names, then its result's."""
    result = view.ops[view.results[index]]
    return [*sorted(view.tensor(result.inputs[0]).names), result.name]


def _listing(view: GraphView) -> str:
    return ", ".join(f"{_output_names(view, i)[0]} {_fmt(view.tensor(v).shape)}"
                     for i, v in enumerate(view.output_values()))


_NOT_SCORES = {"feature_vector", "saliency_map"}  # the Model API's XAI outputs, by name


def _classes(shape: tuple[int | None, ...] | None) -> int | None:
    """K when `shape` is `[N, K]` or `[N, K, 1, 1]` with K > 1, else None."""
    if shape is None or not (len(shape) == 2 or (len(shape) == 4 and shape[2:] == (1, 1))):
        return None
    return shape[1] if shape[1] is not None and shape[1] > 1 else None


def _named_output(view: GraphView, output: str | int) -> tuple[int, Value, int]:
    """The output named `output` (or at index `output`), which must hold class scores."""
    values = view.output_values()
    if isinstance(output, int):
        index = output
    else:
        found = [i for i in range(len(values)) if output in _output_names(view, i)]
        if not found:
            raise TargetError(f"unknown output '{output}' (--class-output); the model's "
                              f"outputs: {_listing(view)}")
        index = found[0]
    shape = _shape(view, values[index])
    k = _classes(shape)
    if k is None:
        raise TargetError(f"output '{_output_names(view, index)[0]}' {_fmt(shape)} does not "
                          "hold class scores: they are shaped [N, K] or [N, K, 1, 1]")
    return index, values[index], k


def classification_output_if_any(view: GraphView, output: str | int | None = None
                                 ) -> tuple[int, Value, int] | None:
    """`classification_output`, or None when no output holds class scores and none was
    named (a model a black-box method cannot read by class either)."""
    try:
        return classification_output(view, output)
    except XaiGraphError:
        signals.check()  # an interrupted run ends here, never goes on another way
        if output is not None:
            raise
        return None


def classification_output(view: GraphView, output: str | int | None = None
                          ) -> tuple[int, Value, int]:
    """(output index, value, number of classes) of the model's classification output.

    `output` names it (or gives its index). Otherwise it is the floating-point output shaped
    `[N, K]` (or `[N, K, 1, 1]`); of several, those computed from another such output (logits
    from embeddings) win, then those ending in a Softmax/Sigmoid, then the first. An integer
    output is never class scores: a detector's `labels [N, M]` (the Model API's layout) is
    not a classifier's output; nor is one named `feature_vector` or `saliency_map` (the
    Model API's explanation outputs, which it leaves out of its scores too)."""
    if output is not None:
        return _named_output(view, output)
    found = [(i, v, k) for i, v in enumerate(view.output_values())
             if not view.tensor(v).dtype.startswith(("i", "u", "bool"))
             and not set(_output_names(view, i)) & _NOT_SCORES
             and (k := _classes(_shape(view, v))) is not None]
    if not found:
        seen = ", ".join(_fmt(_shape(view, v)) for v in view.output_values())
        raise TargetError(
            "no classification output: expected an output shaped [N, K] or [N, K, 1, 1], "
            f"got {seen or 'no outputs'}"
        )
    later = [c for c in found
             if not any(o.op in view.value_descendants(c[1]) for _, o, _ in found)]
    scored = [c for c in later if class_scores(view, c[1]) != c[1]]
    return (scored or later or found)[0]


def class_scores(view: GraphView, out: Value) -> Value:
    """The input of a final Softmax/Sigmoid (seen through reshapes), else `out` itself."""
    v = out
    while True:
        op = view.ops[v.op]
        if op.kind == "score":
            return op.inputs[0]
        if op.kind == "shape" and op.inputs:
            v = op.inputs[0]
            continue
        return out


def _fmt(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "[...]"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


_CHANNELS_FIRST = {"conv", "batch_norm", "max_pool", "avg_pool"}  # neutral names
_TO_LAST, _TO_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)  # transposes [N,C,H,W] <-> [N,H,W,C]


def channels_last(view: GraphView, v: Value, head: set[str]) -> str | None:
    """Why the 4-D map `v` is laid out `[N, H, W, C]`, or None when nothing says so.

    The nearest ops that work on its channels tell, found by walking from `v` forwards (into
    the head) and backwards through ops that keep its shape, or that flatten it to
    `[N, H*W, C]` tokens (or back): a pooling over the spatial axes, a normalisation over
    the last axis (LayerNorm) or a matrix product over it (a linear layer) mean
    channels-last; a convolution, batch norm, pooling over axes 2, 3 or a reduction over
    axis 1 of the 4-D map mean channels-first. A transpose between the two layouts (as
    TensorFlow exports wrap each convolution) tells too: the map a (0, 2, 3, 1) transpose
    makes, or a (0, 3, 1, 2) transpose reads, is channels-last; the reverse, channels-first."""
    shape = view.tensor(v).probe
    if shape is None or len(shape) != 4:
        return None
    tokens = (shape[0], shape[1] * shape[2], shape[3])
    queue, seen = [v], {v}

    def walk(x: Value, forward: bool) -> list[Value]:
        """Where the walk goes on from op `x.op` (forwards: its output; backwards: its
        inputs), when that keeps the layout."""
        op = view.ops[x.op]
        if not (op.attrs.get("pointwise") or op.kind == "shape"):
            return []
        ins = [i for i in op.inputs if view.tensor(i).probe in (shape, tokens)]
        if forward:
            out = Value(x.op, 0)
            return [out] if op.outputs and op.outputs[0].probe in (shape, tokens) else []
        return ins

    while queue:
        x = queue.pop(0)
        flat = view.tensor(x).probe == tokens
        steps = [(Value(op_id, 0), port, True) for op_id, port in view.consumers(x)
                 if op_id in head]
        steps.append((x, -1, False))  # the producer
        for at, port, forward in steps:
            op = view.ops[at.op]
            axes = op.attrs.get("axes")
            if op.neutral in _CHANNELS_FIRST or op.kind == "gap":
                return None
            if not flat and axes in ((1,), (2, 3)):
                return None
            if forward and axes == ((1,) if flat else (1, 2)):
                return f"the head averages it over its positions ({op.type})"
            if axes == ((2,) if flat else (3,)):
                return f"a {op.type} normalises or reduces its last axis"
            if "matrix" in op.attrs and (port == 0 or not forward):
                return f"a {op.type} works on its last axis"
            perm = op.attrs.get("perm")
            if not flat and perm in (_TO_LAST, _TO_FIRST):  # the layout, stated by a transpose
                if (perm == _TO_LAST) == forward:
                    return None
                return (f"a {op.type} {list(perm)} "
                        + ("turns it to channels-first" if forward else "made it"))
            for y in walk(at, forward):
                if y not in seen:
                    seen.add(y)
                    queue.append(y)
    return None


def _reject_reason(view: GraphView, v: Value, scores: Value) -> str | None:
    shape = _shape(view, v)
    if shape is None or len(shape) != 4:
        return "not 4-D"
    h, w = shape[2], shape[3]
    if h == 1 or w == 1:
        return f"spatial size {_fmt(shape[2:])} has no extent to explain"
    head = view.ops_between(v, scores)
    evidence = channels_last(view, v, set(head))
    if evidence is not None:
        return f"channels-last (NHWC) map: {evidence}"
    if not any(view.ops[o].kind == "linear" for o in head):
        return "no learned layer between it and the scores: it is already a class-score map"
    return None


@dataclass(frozen=True)
class _ClassOutput:
    """The classification output a target is found for: what every `Target` of it shares."""

    value: Value
    index: int
    scores: Value
    num_classes: int

    def target(self, v: Value, name: str, shape: tuple[int | None, ...],
               candidates: list[Candidate], *, dominates: bool, forced: bool,
               tokens: TokenGrid | None = None, channels_last: str | None = None,
               branches: list[Branch] | None = None) -> Target:
        """A `Target` at `v` (named `name`, shaped `shape`) for these class scores."""
        return Target(v, name, shape, self.value, self.index, self.scores,
                      self.num_classes, dominates=dominates, forced=forced,
                      candidates=candidates, tokens=tokens, channels_last=channels_last,
                      branches=branches or [])


def find_target(view: GraphView, target_layer: str | None = None,
                output: str | int | None = None) -> Target:
    """The target of the class scores of `output` (see `classification_output`): the layer
    `target_layer` names, else a transformer's token map, else the last spatial map."""
    index, value, k = classification_output(view, output)
    out = _ClassOutput(value, index, class_scores(view, value), k)
    all_doms = view.dominators(out.scores)
    candidates = _candidates(view, all_doms, out)
    if target_layer is not None:
        return _forced_target(view, target_layer, all_doms, out, candidates)
    found = find_token_target(view, all_doms, out.scores)
    if found is not None:
        tokens, grid = found
        for c in candidates:
            c.reason = "before the transformer blocks (the token map is the target)"
        return out.target(tokens, view.describe(tokens), _shape(view, tokens) or (), candidates,
                          dominates=True, forced=False, tokens=grid)
    return _spatial_target(view, out, candidates)


def _candidates(view: GraphView, all_doms: list[Value], out: _ClassOutput) -> list[Candidate]:
    """Every 4-D map (not a model input) that dominates the scores, nearest the output
    first, each with the reason it cannot be the target (None for one that can). A 4-D
    score map before a final Softmax/Sigmoid is not its own candidate."""
    doms = [
        d for d in all_doms
        if len(_shape(view, d) or ()) == 4 and view.ops[d.op].kind != "input"
    ]
    if out.scores != out.value and len(_shape(view, out.scores) or ()) == 4:
        doms = [d for d in doms if d != out.scores]
    return [
        Candidate(d, view.describe(d), _shape(view, d) or (), _reject_reason(view, d, out.scores))
        for d in doms
    ]


def _forced_target(view: GraphView, target_layer: str, all_doms: list[Value], out: _ClassOutput,
                   candidates: list[Candidate]) -> Target:
    """The target `--target-layer` names: a 4-D map or a transformer's token map that feeds
    the scores; `UnknownLayerError` otherwise, with near names for an unknown one."""
    v = view.find(target_layer)
    if v is None:
        near = difflib.get_close_matches(target_layer, view.all_names(), n=5, cutoff=0.4)
        hint = f"; near names: {', '.join(near)}" if near else ""
        raise UnknownLayerError(f"unknown target layer '{target_layer}'{hint}")
    if out.scores.op not in view.value_descendants(v):
        raise UnknownLayerError(
            f"target layer '{target_layer}' does not feed the classification output "
            f"'{view.describe(out.value)}'"
        )
    shape = _shape(view, v) or ()
    grid = token_grid(view, v, all_doms) if len(shape) == 3 else None
    if len(shape) != 4 and grid is None:
        raise UnknownLayerError(
            f"target layer '{target_layer}' has shape {_fmt(shape)}; a 4-D [N, C, H, W] "
            "feature map (or a transformer's [N, L, D] token map) is needed"
        )
    for c in candidates:
        c.reason = "overridden by --target-layer" if c.value != v else None
    return out.target(v, view.describe(v), shape, candidates, dominates=v in all_doms,
                      forced=True, tokens=grid)


def _spatial_target(view: GraphView, out: _ClassOutput, candidates: list[Candidate]) -> Target:
    """The candidate nearest the output that nothing rejects (the others lose to it), or
    the nearest channels-last one (marked so) when that comes first; failing both, a
    multi-branch transformer's token maps (see `_branch_target`)."""
    chosen: Candidate | None = None
    for c in candidates:
        if chosen is not None:
            c.reason = f"further from the output than {chosen.name}"
        elif c.reason is None:
            chosen = c
        elif c.reason.startswith("channels-last"):  # the target, seen through a transpose
            evidence = c.reason.split(": ", 1)[-1]
            return out.target(c.value, c.name, c.shape, candidates, dominates=True,
                              forced=False, channels_last=(
                                  f"the last spatial feature map {c.name} {_fmt(c.shape)} is "
                                  f"channels-last (NHWC: {evidence})"))
    if chosen is None:
        return _branch_target(view, out, candidates)
    return out.target(chosen.value, chosen.name, chosen.shape, candidates, dominates=True,
                      forced=False)


def _branch_target(view: GraphView, out: _ClassOutput, candidates: list[Candidate]) -> Target:
    """The first branch's token map of a transformer with several branches, all of them in
    `branches`; `TargetError` naming the nearest candidates when the model has none."""
    found_branches = find_branch_targets(view, out.scores)
    if found_branches is None:
        lost = "; ".join(f"{c.name} {_fmt(c.shape)}: {c.reason}" for c in candidates[:3])
        detail = f" (candidates: {lost})" if lost else ""
        hint = "; pass --target-layer NAME to choose one" if candidates else (
            "; a black-box method (explain --method rise) explains it")
        raise TargetError(
            "no spatial feature map: no 4-D [N, C, H, W] tensor with H, W > 1 lies on every "
            f"path to the output '{view.describe(out.value)}'{detail}{hint}"
        )
    branches = [Branch(v, view.describe(v), g) for v, g in found_branches]
    first = branches[0]
    return out.target(first.value, first.name, _shape(view, first.value) or (), candidates,
                      dominates=False, forced=False, tokens=first.tokens, branches=branches)


def find_detector_target(view: GraphView, target_layer: str | None = None,
                         num_anchors: int | None = None) -> Target | None:
    """A target standing for a detector's per-level class-score maps, or None."""
    layers = [n.strip() for n in target_layer.split(",")] if target_layer else None
    det = find_detector_head(view, layers, num_anchors)
    if det is None:
        return None
    first = det.levels[0]
    return Target(first, det.names[0], det.shapes[0], first, 0, first, det.num_classes,
                  dominates=False, forced=target_layer is not None, detector=det)


def detect(view: GraphView, target_layer: str | None = None,
           num_anchors: int | None = None, output: str | None = None) -> Target:
    """The classifier's (or transformer's) target, else a detector's class-score maps.

    Analysis only: a channels-last map comes back with `channels_last` set (unless the model
    is a detector), for the channels-first pass to make a channels-first target of it."""
    if target_layer is not None and "," in target_layer:  # a detector's levels, by name
        found = find_detector_target(view, target_layer, num_anchors)
        assert found is not None
        return found
    try:
        target = find_target(view, target_layer, output)
    except TargetError:
        if target_layer is not None or output is not None:
            raise
        detector = find_detector_target(view, None, num_anchors)
        if detector is None:
            raise
        return detector
    if target.channels_last is None:
        return target
    return find_detector_target(view, None, num_anchors) or target

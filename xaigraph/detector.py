"""Single-stage detectors: where the per-level class-score maps are.

SSD, RetinaNet and FCOS/ATSS-style heads run a classification convolution on every feature
level, giving `[N, A*K, h_l, w_l]` (A anchors per location, K classes, anchor-major: channel
`a*K + k`), then move the classes last and join the levels: each level goes through reshapes
and transposes only, and a Concat along the anchor axis gives `[N, M, K]`. The box branch has
the same shape with 4 instead of K. `find_detector_head` looks for such a Concat (levels with
different spatial sizes, a last dimension other than 4) and reads K from it.

With `--target-layer a,b,c` the levels are given by name; `--num-anchors` then fixes A (K is
the channel count over A), else K is read from an automatically found Concat, else A = 1.
That is the way for YOLOX/YOLOv8-style heads, whose class convolutions are joined with the box
branch before the levels are: name the per-level class convolutions, `--num-anchors 1`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xaigraph.errors import TargetError, UnknownLayerError
from xaigraph.graph_view import GraphView, Value
from xaigraph.opkinds import MOVES

__all__ = ["DetectorHead", "find_detector_head"]


@dataclass
class DetectorHead:
    levels: list[Value]  # per-level class-score maps [N, A*K, h, w], largest first
    names: list[str]
    shapes: list[tuple[int, ...]]
    num_classes: int
    num_anchors: list[int]
    joined: Value | None  # the Concat of the levels' class scores, when found

    def describe(self) -> str:
        levels = ", ".join(f"{n} [{s[1]}x{s[2]}x{s[3]}]" for n, s in zip(
            self.names, self.shapes, strict=True))
        return (f"{len(self.levels)} levels, {self.num_classes} classes, anchors "
                f"{'/'.join(map(str, self.num_anchors))}: {levels}")


def _probe(view: GraphView, v: Value) -> tuple[int, ...] | None:
    return view.tensor(v).probe


def _source_map(view: GraphView, v: Value) -> Value | None:
    """Walk back from `v` through reshapes and transposes to a 4-D map."""
    for _ in range(8):
        shape = _probe(view, v)
        op = view.ops[v.op]
        if shape is not None and len(shape) == 4 and op.neutral not in MOVES:
            return v
        if op.neutral not in MOVES or not op.inputs:
            return None
        v = op.inputs[0]
    return None


def _joins(view: GraphView) -> list[tuple[Value, list[Value], int]]:
    """(Concat output, its per-level source maps, last dim) for every level-joining Concat."""
    found = []
    for op in view.ops.values():
        if op.neutral != "concat" or len(op.inputs) < 2:
            continue
        out = Value(op.id, 0)
        shape = _probe(view, out)
        if shape is None or len(shape) != 3:
            continue
        if any((_probe(view, v) or (0,))[-1] != shape[-1] for v in op.inputs):
            continue  # not joined along the anchor axis of [N, M, K]
        sources = [_source_map(view, v) for v in op.inputs]
        if any(s is None for s in sources):
            continue
        maps = [s for s in sources if s is not None]
        sizes = {(_probe(view, s) or ())[2:] for s in maps}
        if len(sizes) < 2:
            continue
        if all(((_probe(view, s) or (0, 0))[1]) % shape[-1] == 0 for s in maps):
            found.append((out, maps, shape[-1]))
    return found


def find_detector_head(view: GraphView, target_layers: list[str] | None = None,
                       num_anchors: int | None = None) -> DetectorHead | None:
    joins = [j for j in _joins(view) if j[2] not in (1, 4)]
    if target_layers is None:
        if not joins:
            return None
        out, maps, k = max(joins, key=lambda j: j[2])
        return _head(view, maps, k, out)
    maps = []
    for name in target_layers:
        v = view.find(name)
        if v is None:
            raise UnknownLayerError(f"unknown target layer '{name}'")
        shape = _probe(view, v)
        if shape is None or len(shape) != 4:
            raise UnknownLayerError(f"target layer '{name}' is not a 4-D [N, A*K, h, w] map")
        maps.append(v)
    if num_anchors is not None:
        channels = (_probe(view, maps[0]) or (0, 0))[1]
        if channels % num_anchors:
            raise TargetError(f"{channels} channels do not split into {num_anchors} anchors")
        return _head(view, maps, channels // num_anchors, None)
    k = joins[0][2] if joins else (_probe(view, maps[0]) or (0, 0))[1]
    return _head(view, maps, k, None)


def _head(view: GraphView, maps: list[Value], k: int, joined: Value | None) -> DetectorHead:
    shapes = [_probe(view, m) for m in maps]
    anchors = []
    for m, s in zip(maps, shapes, strict=True):
        if s is None or s[1] % k:
            raise TargetError(
                f"{view.describe(m)} has {s[1] if s else '?'} channels, not a multiple of "
                f"{k} classes; pass --num-anchors"
            )
        anchors.append(s[1] // k)
    order = sorted(range(len(maps)), key=lambda i: -((shapes[i] or (0, 0, 0, 0))[2]
                                                     * (shapes[i] or (0, 0, 0, 0))[3]))
    return DetectorHead(
        levels=[maps[i] for i in order],
        names=[view.describe(maps[i]) for i in order],
        shapes=[tuple(shapes[i] or ()) for i in order],
        num_classes=k,
        num_anchors=[anchors[i] for i in order],
        joined=joined,
    )

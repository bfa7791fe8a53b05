"""The one builder of `GraphView`s, fed by each backend's translator.

A backend's view (`xaigraph.backends.*.view`) does three native things and nothing else:

1. translate its ops, in topological order, into `Translated` records: an `OpInfo` with the
   native type, the neutral name (`xaigraph.opkinds`), the inputs and the declared output
   tensors, plus the neutral facts read from its native attributes;
2. given the probe input shapes (`probe_input_shapes`, from the translated graph), fill in
   each tensor's probe shape and small probe value, by its own shape inference;
3. hand the records to `assemble`, which derives kinds and attributes (`opkinds.describe`),
   which values are fixed, and the graph's edges.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from xaigraph import opkinds
from xaigraph.graph_view import Dim, GraphView, OpInfo, fixed_value

__all__ = ["DEFAULT_SPATIAL", "Translated", "assemble", "probe_input_shapes", "unique_id"]

DEFAULT_SPATIAL = 224
_CHANNEL_SEARCH_DEPTH = 6


@dataclass
class Translated:
    """One op as a translator describes it: `info.kind` and `info.attrs` are left to
    `assemble`; `facts` holds the neutral facts read from its native attributes (see
    `opkinds.FACTS`)."""

    info: OpInfo
    native: Any
    facts: dict[str, Any] = field(default_factory=dict)


def unique_id(base: str, taken: set[str] | dict[str, Any]) -> str:
    """`base`, or `base#2`, `base#3`, ... : the first not in `taken`."""
    oid, k = base, 1
    while oid in taken:
        k += 1
        oid = f"{base}#{k}"
    return oid


def _input_channels(ops: list[Translated], start: str) -> int | None:
    """Channels expected by the first convolution reading (through at most a few ops) the
    output of op `start`."""
    readers: dict[str, list[tuple[Translated, int]]] = {}
    for t in ops:
        for port, v in enumerate(t.info.inputs):
            readers.setdefault(v.op, []).append((t, port))
    queue: deque[tuple[str, int]] = deque([(start, 0)])
    seen: set[str] = set()
    while queue:
        op_id, depth = queue.popleft()
        for reader, port in readers.get(op_id, []):
            if reader.info.id in seen:
                continue
            seen.add(reader.info.id)
            if reader.info.neutral == "conv" and port == 0:
                if reader.facts.get("in_channels") is not None:
                    return int(reader.facts["in_channels"])
            elif depth < _CHANNEL_SEARCH_DEPTH:
                queue.append((reader.info.id, depth + 1))
    return None


def _guess(dims: tuple[Dim, ...] | None, bounds: list[tuple[int, int]] | None,
           channels: int, spatial: int) -> tuple[int, ...]:
    """A concrete input shape: static dims kept, batch 1, spatial `spatial`, `channels` at
    axis 1 of a 4-D input, each within its bounds (min, max; max < 0: unbounded)."""
    if dims is None:
        return (1, channels, spatial, spatial)
    rank = len(dims)
    out = []
    for i, d in enumerate(dims):
        if d is not None and d > 0:
            out.append(d)
            continue
        if rank == 4 and i == 1:
            want = channels
        elif rank >= 3 and i >= rank - 2:
            want = spatial
        else:
            want = 1
        lo, hi = bounds[i] if bounds else (0, -1)
        want = max(want, lo)
        out.append(min(want, hi) if hi >= 0 else want)
    return tuple(out)


def probe_input_shapes(ops: list[Translated], inputs: list[str],
                       spatial: int = DEFAULT_SPATIAL) -> list[tuple[int, ...]]:
    """Concrete shapes for the model inputs `inputs` (op ids, in model order): static dims
    kept, dynamic ones batch 1, spatial `spatial`, channels those of the first convolution
    that reads the input (else 3)."""
    by_id = {t.info.id: t for t in ops}
    shapes = []
    for op_id in inputs:
        t = by_id[op_id]
        channels = _input_channels(ops, op_id) or 3
        shapes.append(_guess(t.info.outputs[0].shape, t.facts.get("bounds"), channels, spatial))
    return shapes


def assemble(ops: list[Translated], inputs: list[str], results: list[str],
             probe_inputs: list[tuple[int, ...]]) -> GraphView:
    """The view of translated ops (topological order, probe shapes filled in)."""
    infos: dict[str, OpInfo] = {}
    native: dict[str, Any] = {}
    fixed: dict[str, bool] = {}
    graph = nx.DiGraph()
    for t in ops:
        info = t.info
        if not t.facts.keys() <= opkinds.FACTS:
            raise ValueError(f"{info.type}: facts outside the vocabulary: "
                             f"{sorted(t.facts.keys() - opkinds.FACTS)}")
        ins = [infos[v.op].outputs[v.port] for v in info.inputs]
        const_in = [fixed[v.op] for v in info.inputs]
        info.kind, attrs = opkinds.describe(info.neutral, ins, const_in, t.facts)
        info.attrs.update(attrs)
        fixed[info.id] = fixed_value(info.kind, const_in)
        infos[info.id] = info
        native[info.id] = t.native
        graph.add_node(info.id)
        for dst, v in enumerate(info.inputs):
            if graph.has_edge(v.op, info.id):
                graph.edges[v.op, info.id]["ports"].append((v.port, dst))
            else:
                graph.add_edge(v.op, info.id, ports=[(v.port, dst)])
    view = GraphView(ops=infos, order=[t.info.id for t in ops], inputs=inputs, results=results,
                     graph=graph, native=native, probe_inputs=probe_inputs)
    view._const_derived = fixed
    return view

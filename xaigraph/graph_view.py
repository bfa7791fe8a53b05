"""A read-only networkx view of a model, shared by every analysis.

The native model (`ov.Model`, `onnx.ModelProto`) stays the source of truth. The view records,
for each op, its type, its inputs (as `Value`s: an op's output port), its declared output
shapes (dynamic dims as `None`), and its *probe* shapes: the concrete shapes at one input
size (dynamic input dims set to batch 1 and spatial 224 unless the model fixes them).
Analysis reasons about structure (paths, dominators) and probe shapes; it never looks at node
names.

Each op also carries its backend-neutral name (`OpInfo.neutral`: ``add``, ``conv``,
``reshape``, ...), a coarse `kind` (``input``, ``gap``, ``linear``, ``score``, ...) and
neutral attributes (``pointwise``, ``affine``, ``attention``, ``matrix``, ``axes``), all
defined in `xaigraph.opkinds`; analysis reads only those. `OpInfo.type` is the native op
type, for display. Views are built by `xaigraph.view_builder` from what each backend's
translator (`xaigraph.backends.*.view`) says about its ops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

__all__ = ["Dim", "GraphView", "OpInfo", "TensorInfo", "Value", "fixed_value"]

log = logging.getLogger(__name__)

Dim = int | None
SOURCE = "\x00source"


@dataclass(frozen=True, order=True)
class Value:
    """A tensor in the graph: output `port` of op `op`."""

    op: str
    port: int = 0


@dataclass
class TensorInfo:
    shape: tuple[Dim, ...] | None  # declared; None when even the rank is dynamic
    probe: tuple[int, ...] | None  # concrete at the probe input size; None if unknown
    dtype: str
    names: tuple[str, ...] = ()
    probe_value: np.ndarray | None = None  # small values known at the probe input size

    @property
    def rank(self) -> int | None:
        if self.probe is not None:
            return len(self.probe)
        return None if self.shape is None else len(self.shape)


@dataclass
class OpInfo:
    id: str
    name: str
    type: str
    kind: str
    inputs: list[Value]
    outputs: list[TensorInfo]
    attrs: dict[str, Any] = field(default_factory=dict)
    neutral: str = "other"  # the backend-neutral name (see xaigraph.opkinds)


def fixed_value(kind: str, inputs_fixed: list[bool]) -> bool:
    """Whether an op of `kind` has a fixed value (no model input reaches it), given which of
    its inputs have one; an op without inputs has one only when it is a const."""
    if kind in ("input", "const"):
        return kind == "const"
    return bool(inputs_fixed) and all(inputs_fixed)


@dataclass
class GraphView:
    """Ops keyed by id, a DiGraph of data edges, model inputs/outputs in model order."""

    ops: dict[str, OpInfo]
    order: list[str]
    inputs: list[str]
    results: list[str]
    graph: nx.DiGraph
    native: dict[str, Any]
    probe_inputs: list[tuple[int, ...]]
    _const_derived: dict[str, bool] = field(default_factory=dict, repr=False)
    _reads_data: dict[str, bool] = field(default_factory=dict, repr=False)

    # -- values -----------------------------------------------------------------------------
    def tensor(self, v: Value) -> TensorInfo:
        return self.ops[v.op].outputs[v.port]

    def output_values(self) -> list[Value]:
        """The value feeding each model output, in output order."""
        return [self.ops[r].inputs[0] for r in self.results]

    def consumers(self, v: Value) -> list[tuple[str, int]]:
        """(op id, input index) pairs that read `v`."""
        out = []
        for succ in self.graph.successors(v.op):
            for src_port, dst_port in self.graph.edges[v.op, succ]["ports"]:
                if src_port == v.port:
                    out.append((succ, dst_port))
        return out

    def const_value(self, v: Value) -> np.ndarray | None:
        """The value of a small constant (up to 64 elements), else None."""
        value = self.ops[v.op].attrs.get("value")
        return None if value is None else np.asarray(value)

    def probe_value(self, v: Value) -> np.ndarray | None:
        """The value of `v` at the probe input size when it is small and fixed there (a
        constant, or a shape computation); None otherwise."""
        t = self.tensor(v)
        return t.probe_value if t.probe_value is not None else self.const_value(v)

    def describe(self, v: Value) -> str:
        op = self.ops[v.op]
        suffix = f":{v.port}" if len(op.outputs) > 1 else ""
        return f"{op.name}{suffix}"

    # -- structure --------------------------------------------------------------------------
    def is_const_derived(self, op_id: str) -> bool:
        """True when no model input reaches `op_id` (its value is fixed)."""
        if not self._const_derived:
            for oid in self.order:
                info = self.ops[oid]
                self._const_derived[oid] = fixed_value(
                    info.kind, [self._const_derived[v.op] for v in info.inputs])
        return self._const_derived[op_id]

    def reads_input_data(self, op_id: str) -> bool:
        """True when `op_id` depends on the values of a model input (a path that does not
        go through a shape-reading op); False for constants and shape computations."""
        if not self._reads_data:
            for oid in self.order:
                info = self.ops[oid]
                if info.kind == "input":
                    self._reads_data[oid] = True
                elif info.kind in ("const", "shapeof"):
                    self._reads_data[oid] = False
                else:
                    self._reads_data[oid] = any(self._reads_data[v.op] for v in info.inputs)
        return self._reads_data[op_id]

    def is_shape_computation(self, op_id: str) -> bool:
        """Constants, and ops that only compute small integer tensors (shapes, axes)."""
        op = self.ops[op_id]
        if op.kind in ("const", "shapeof"):
            return True
        return bool(op.outputs) and all(
            t.dtype in ("i64", "i32") and t.rank is not None and t.rank <= 1 for t in op.outputs
        )

    def op_chain(self, op_ids: list[str]) -> str:
        """`A > B > C`: the types of the ops, shape computations left out."""
        return " > ".join(self.ops[o].type for o in op_ids if not self.is_shape_computation(o))

    def value_descendants(self, v: Value) -> set[str]:
        """Ops that depend on value `v` (not including its producer)."""
        seeds = {c for c, _ in self.consumers(v)}
        out: set[str] = set()
        for s in seeds:
            out.add(s)
            out |= nx.descendants(self.graph, s)
        return out

    def ops_between(self, start: Value, end: Value) -> list[str]:
        """Ops on some path from `start` to `end`, `end`'s producer included, in topo order."""
        down = self.value_descendants(start)
        if end.op not in down:
            return []
        up = nx.ancestors(self.graph, end.op) | {end.op}
        keep = down & up
        return [o for o in self.order if o in keep]

    def dominators(self, v: Value) -> list[Value]:
        """Values through which every path from the model inputs to `v` passes.

        Nearest first. A multi-output op contributes the single port through which all its
        paths to `v` leave; when paths leave through several ports, no value of it dominates.
        """
        # Data flow only: a shape-reading op does not depend on its input's values, so a path
        # through it (such as `x.view(x.size(0), -1)` reading the image's batch size) does
        # not bypass the feature maps.
        g = nx.DiGraph()
        g.add_nodes_from(self.graph.nodes)
        g.add_edges_from((u, v) for u, v in self.graph.edges if self.ops[v].kind != "shapeof")
        g.add_node(SOURCE)
        for i in self.inputs:
            g.add_edge(SOURCE, i)
        if v.op not in nx.descendants(g, SOURCE):
            return []
        idom = nx.immediate_dominators(g, SOURCE)
        chain = []
        node = idom[v.op]
        while node != SOURCE:
            chain.append(node)
            node = idom[node]
        reach = nx.ancestors(g, v.op) | {v.op}
        out = []
        for op_id in chain:
            ports = {
                p
                for succ in g.successors(op_id)
                if succ in reach
                for p, _ in self.graph.edges[op_id, succ]["ports"]
            }
            if len(ports) == 1:
                out.append(Value(op_id, ports.pop()))
        return out

    def find(self, name: str) -> Value | None:
        """The value named `name`: an op's name (port 0, or `name:port`) or a tensor name."""
        base, _, port_text = name.rpartition(":")
        candidates = [(name, 0)]
        if base and port_text.isdigit():
            candidates.append((base, int(port_text)))
        for op_name, port in candidates:
            for oid in self.order:
                op = self.ops[oid]
                if op.name == op_name and port < len(op.outputs) and op.kind != "output":
                    return Value(oid, port)
        for oid in self.order:
            op = self.ops[oid]
            if op.kind == "output":
                continue
            for port, t in enumerate(op.outputs):
                if name in t.names:
                    return Value(oid, port)
        return None

    def all_names(self) -> list[str]:
        names = []
        for oid in self.order:
            op = self.ops[oid]
            if op.kind in ("const", "output"):
                continue
            names.append(op.name)
            for t in op.outputs:
                names.extend(t.names)
        return names

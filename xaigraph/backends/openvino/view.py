"""Build a `GraphView` from an `ov.Model`: the OpenVINO translator.

It names each op type in the neutral vocabulary (`xaigraph.opkinds`), reads the few native
attributes the vocabulary's rules need, and fills in probe shapes with OpenVINO's own shape
inference and constant folding; `xaigraph.view_builder` does the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import openvino as ov
from openvino.passes import ConstantFolding, Manager

from xaigraph import signals
from xaigraph.graph_view import Dim, GraphView, OpInfo, TensorInfo, Value
from xaigraph.opkinds import REDUCTIONS
from xaigraph.view_builder import (
    DEFAULT_SPATIAL,
    Translated,
    assemble,
    probe_input_shapes,
    unique_id,
)

__all__ = ["build_view"]

log = logging.getLogger(__name__)

_TAG = "xaigraph_probe_index"

# Native op type -> neutral name (xaigraph.opkinds); anything else is "other".
NEUTRAL = {
    "Parameter": "input", "Constant": "const", "Result": "output", "ShapeOf": "shapeof",
    "Add": "add", "Subtract": "sub", "Multiply": "mul", "Divide": "div", "Maximum": "max",
    "Minimum": "min", "Power": "pow", "SquaredDifference": "squared_difference",
    "PRelu": "prelu", "Relu": "relu", "Sigmoid": "sigmoid", "Swish": "swish",
    "HSwish": "hard_swish", "HSigmoid": "hsigmoid", "Clamp": "clip", "Exp": "exp",
    "Tanh": "tanh", "Gelu": "gelu", "Mish": "mish", "SoftPlus": "softplus", "Elu": "elu",
    "Abs": "abs", "Negative": "neg", "Sqrt": "sqrt", "Erf": "erf", "Convert": "cast",
    "Log": "log", "Floor": "floor", "Ceiling": "ceil", "Sign": "sign", "SoftSign": "softsign",
    "Selu": "selu", "BatchNormInference": "batch_norm", "Softmax": "softmax",
    "LogSoftmax": "log_softmax", "Reshape": "reshape", "Squeeze": "squeeze",
    "Unsqueeze": "unsqueeze", "Transpose": "transpose", "Concat": "concat", "Gather": "gather",
    "Convolution": "conv", "GroupConvolution": "conv",
    "ConvolutionBackpropData": "conv_transpose", "MatMul": "matmul", "AvgPool": "avg_pool",
    "MaxPool": "max_pool", "AdaptiveAvgPool": "adaptive_avg_pool", "ReduceMean": "reduce_mean",
    "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max", "ReduceMin": "reduce_min",
    "ReduceProd": "reduce_prod", "ReduceL1": "reduce_l1", "ReduceL2": "reduce_l2",
    "ReduceLogicalAnd": "reduce_logical_and", "ReduceLogicalOr": "reduce_logical_or",
    "MVN": "mvn", "ScaledDotProductAttention": "sdpa", "FakeQuantize": "fake_quantize",
    "ConvertLike": "cast",
}


def _dims(ps: ov.PartialShape) -> tuple[Dim, ...] | None:
    if ps.rank.is_dynamic:
        return None
    return tuple(d.get_length() if d.is_static else None for d in ps)


def _in_channels(node: ov.Node) -> int | None:
    """A convolution's input channels, from its weight: `[O, I, ...]`, or `[G, O/G, I/G, ...]`
    for a grouped one."""
    w = node.input_value(1).get_partial_shape()
    if w.rank.is_dynamic or not w[1].is_static:
        return None
    if node.get_type_name() == "Convolution":
        return int(w[1].get_length())
    if w[0].is_static and w[2].is_static:
        return int(w[0].get_length() * w[2].get_length())
    return None


def _windows(attrs: dict[str, Any]) -> dict[str, Any]:
    pads = list(attrs.get("pads_begin", [])) + list(attrs.get("pads_end", []))
    facts = {"pads": pads, "auto_pad": str(attrs.get("auto_pad", "explicit")).lower(),
             "strides": list(attrs.get("strides", []))}
    if "kernel" in attrs:
        facts["kernel"] = list(attrs["kernel"])
    return facts


def _facts(node: ov.Node, neutral: str, outputs: list[TensorInfo]) -> dict[str, Any]:
    """The neutral facts (`opkinds.FACTS`) of `node`, read from its native attributes."""
    if neutral == "const":
        shape = outputs[0].shape
        small = shape is not None and _size(shape) <= 64
        return {"value": _const_array(node)} if small else {}
    if neutral == "input":
        ps = node.get_partial_shape()
        return {} if ps.rank.is_dynamic else {
            "bounds": [(d.get_min_length(), d.get_max_length()) for d in ps]}
    if neutral in ("conv", "avg_pool"):
        facts = _windows(node.get_attributes())
        if neutral == "conv":
            facts["in_channels"] = _in_channels(node)
        return facts
    if neutral in ("softmax", "log_softmax"):
        return {"axis": int(node.get_attributes().get("axis", -1))}
    if neutral == "matmul":
        attrs = node.get_attributes()
        return {"transpose_a": bool(attrs.get("transpose_a")),
                "transpose_b": bool(attrs.get("transpose_b"))}
    if neutral in REDUCTIONS or neutral == "mvn":
        return {"axes_input": 1}
    if neutral == "transpose":
        return {"perm_input": 1}
    return {}


def _translate(ops: list[ov.Node]) -> list[Translated]:
    """Every op of `ops` (in order) as the view builder takes it. Op ids are friendly names,
    made unique; nodes are matched by their instance id."""
    ids: dict[int, str] = {}
    taken: set[str] = set()
    for node in ops:
        oid = unique_id(node.get_friendly_name() or node.get_type_name(), taken)
        ids[node.get_instance_id()] = oid
        taken.add(oid)
    out = []
    for node in ops:
        inputs = []
        for inp in node.inputs():
            src = inp.get_source_output()
            inputs.append(Value(ids[src.get_node().get_instance_id()], src.get_index()))
        outputs = [
            TensorInfo(shape=_dims(o.get_partial_shape()), probe=None,
                       dtype=o.get_element_type().get_type_name(),
                       names=tuple(sorted(o.get_names())))
            for o in node.outputs()
        ]
        t = node.get_type_name()
        neutral = NEUTRAL.get(t, "other")
        info = OpInfo(id=ids[node.get_instance_id()], name=node.get_friendly_name(), type=t,
                      kind="other", inputs=inputs, outputs=outputs, neutral=neutral)
        out.append(Translated(info, node, _facts(node, neutral, outputs)))
    return out


Probe = tuple[tuple[int, ...] | None, np.ndarray | None]


def _probe(model: ov.Model, shapes: list[tuple[int, ...]]) -> list[list[Probe]]:
    """For every op output (in `get_ordered_ops` order): its shape at the given input shapes,
    and its value when that is a small constant there (folded shape computations included).

    The probe runs on a clone: reshaped, then constant-folded. Reshaping may rebuild folded
    shape subgraphs and folding replaces ops by constants, so clone nodes are tagged with
    their original position first and matched back by tag afterwards.
    """
    ops = model.get_ordered_ops()
    unknown: list[list[Probe]] = [[(None, None)] * n.get_output_size() for n in ops]
    clone = model.clone()
    cloned = clone.get_ordered_ops()
    if len(cloned) != len(ops) or any(
        a.get_type_name() != b.get_type_name() for a, b in zip(ops, cloned, strict=True)
    ):
        log.info("the cloned model orders ops differently; shapes stay symbolic")
        return unknown
    for i, node in enumerate(cloned):
        node.get_rt_info()[_TAG] = i
    declared = [p.get_partial_shape() for p in model.get_parameters()]
    pairs = zip(declared, shapes, strict=True)
    try:
        if not all(ps.is_static and tuple(ps.to_shape()) == s for ps, s in pairs):
            clone.reshape({i: ov.PartialShape(list(s)) for i, s in enumerate(shapes)})
        manager = Manager()
        manager.register_pass(ConstantFolding())
        manager.run_passes(clone)
    except Exception as exc:
        signals.check()  # an interrupted run ends here, never goes on another way
        log.info("cannot propagate shapes at input %s (%s); shapes stay symbolic",
                    shapes, str(exc).strip().splitlines()[-1:])
        return unknown
    twins: dict[int, Any] = {}
    for node in clone.get_ordered_ops():
        info = node.get_rt_info()
        if _TAG not in info:
            continue
        i = int(info[_TAG].astype(int))
        kind = node.get_type_name()
        if kind == ops[i].get_type_name() or (kind == "Constant" and i not in twins):
            twins[i] = node
    out = []
    for i, node in enumerate(ops):
        twin = twins.get(i)
        if twin is None:
            out.append(unknown[i])
            continue
        row: list[Probe] = []
        for port in range(node.get_output_size()):
            ps = twin.get_output_partial_shape(min(port, twin.get_output_size() - 1))
            shape = tuple(int(x) for x in ps.to_shape()) if ps.is_static else None
            value = None
            if twin.get_type_name() == "Constant" and shape is not None and _size(shape) <= 64:
                value = _const_array(twin)
            row.append((shape, value))
        out.append(row)
    return out


def _size(shape: tuple[Dim, ...]) -> int:
    n = 1
    for d in shape:
        n *= d if d is not None else 1 << 30
    return n


def _const_array(node: ov.Node) -> np.ndarray | None:
    if node.get_type_name() != "Constant":
        return None
    try:
        return np.asarray(node.get_data())
    except Exception:
        return None


def build_view(model: ov.Model, spatial: int = DEFAULT_SPATIAL) -> GraphView:
    ops = model.get_ordered_ops()
    translated = _translate(ops)
    ids = {node.get_instance_id(): t.info.id for node, t in zip(ops, translated, strict=True)}
    inputs = [ids[p.get_instance_id()] for p in model.get_parameters()]
    results = [ids[r.get_instance_id()] for r in model.get_results()]
    probe_inputs = probe_input_shapes(translated, inputs, spatial)
    for t, row in zip(translated, _probe(model, probe_inputs), strict=True):
        for tensor, (shape, value) in zip(t.info.outputs, row, strict=True):
            tensor.probe, tensor.probe_value = shape, value
    return assemble(translated, inputs, results, probe_inputs)

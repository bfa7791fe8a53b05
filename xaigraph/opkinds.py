"""The op vocabulary: backend-neutral names for what an op does, and the facts derived from them.

Every backend's view translates its native op types into the neutral names below (a table,
`OpInfo.neutral`) and reads the few native attributes the rules need into neutral *facts*;
`describe` turns a name, its facts and its input tensors into the `OpInfo.kind` and
`OpInfo.attrs` that analysis reads. Analysis never matches native op types: `OpInfo.type`
(`Multiply`, `Mul`) is for display only. A new backend adds a translator, not a rule.

Neutral names, by group:

- ``input``, ``const``, ``output``, ``shapeof`` (reads only its input's shape)
- elementwise: `UNARY` (``relu``, ``cast``, ``batch_norm``, ...) and `BINARY` (``add``,
  ``sub``, ``mul``, ``div``, ``max``, ..., and the `QUANTIZERS`); the names of the four
  arithmetic ones are also the `OpBuilder` methods that build them
- `SCORES`: ``softmax``, ``log_softmax``, ``sigmoid``
- shape moves: `RESHAPES` (keep the values and their order: ``reshape``, ``squeeze``,
  ``unsqueeze``, ``flatten``, ``identity``), ``transpose``, ``concat``, ``gather``
- `LINEAR`: ``conv`` (grouped too), ``conv_transpose``, ``matmul``, ``gemm`` (a matrix
  product `alpha * A @ B + beta * C`: its input 2 is added)
- pooling: ``avg_pool``, ``max_pool``, ``global_avg_pool``, ``adaptive_avg_pool`` (output
  size in input 1)
- `REDUCTIONS` (``reduce_mean``, ...) and `NORMS` (``mvn``, ``layer_norm``), with axes
- ``sdpa``: a fused scaled-dot-product attention
- `QUANTIZERS`: ``fake_quantize`` (OpenVINO's FakeQuantize: round to one of `levels` steps
  in a range), ``quantize`` and ``dequantize`` (ONNX QuantizeLinear / DequantizeLinear):
  elementwise, their other inputs (ranges, scales, zero points) broadcast like a binary op's;
  a dequantization `(q - zero) * scale` is affine, a quantization is not. On constant
  weights (INT8 or FP16 weight compression: a Convert, Subtract, Multiply chain) they are
  constant-derived like any op whose inputs are all fixed
- ``other``: everything else

Facts a translator may give (`FACTS`): ``value`` (a const's value, when small), ``bounds``
(an input's per-dim (min, max), max < 0 when unbounded), ``in_channels`` (a convolution's,
from its weight), ``strides``, ``pads`` (begins then ends), ``auto_pad`` (lower case:
``explicit``, ``notset``, ``valid``, ``same_upper``, ...), ``kernel`` (a pooling's window),
``axis`` (a softmax's, only when it normalises along that one axis), the axes of a reduction
or normalisation as one of ``axes`` (ints, may be negative), ``axes_input`` (the input that
holds them), ``axes_from`` (this axis to the last) or ``axes_all``; ``transpose_a``,
``transpose_b`` and ``scaled`` (alpha or beta not 1) for matrix products; a transpose's
order as ``perm`` (ints) or ``perm_input`` (the input that holds it).

`OpInfo.kind` (coarse, what most analysis asks first):

- ``input``, ``const``, ``output``, ``shapeof``
- ``gap``: global average pooling over the two spatial axes of a 4-D tensor (a global or
  full-window average pool, a mean over axes 2 and 3, an adaptive pool to 1x1)
- ``linear``: a learned layer (`LINEAR` with a constant operand)
- ``score``: `SCORES`
- ``shape``: ops that keep the values (`RESHAPES`, ``cast``, ``dropout``)
- ``other``: everything else

`OpInfo.attrs`, derived here:

- ``pointwise``: whether the op acts on each spatial location on its own: ``unary``
  (elementwise on input 0, a 1x1 stride-1 unpadded convolution, a softmax over channels) or
  ``binary`` (elementwise with broadcasting)
- ``affine``: how it is affine in its data: ``always`` (shape moves, per-channel affine maps),
  ``single`` (when one operand carries data: linear layers, sums, products), ``numerator``
  (x / c)
- ``attention``: ``sdpa``, or ``softmax`` (a softmax over keys, `[..., L, L]` logits)
- ``matrix``: for a matrix product `x @ W` of a data input `x` and a constant 2-D weight
  (input 1; a gemm with alpha = beta = 1, its bias as input 2), how `W` is stored: ``kc``
  (`[classes, channels]`, used transposed) or ``ck``
- ``axes``: for reductions and normalisations, the axes of input 0 it works over, as sorted
  non-negative ints
- ``value``: a small constant's value
- ``perm``: a transpose's order of the input's axes, when known, as a tuple of ints
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaigraph.graph_view import TensorInfo

__all__ = [
    "AFFINE", "BINARY", "FACTS", "LINEAR", "MOVES", "NORMS", "QUANTIZERS", "REDUCTIONS",
    "RESHAPES", "SCORES", "UNARY", "describe", "norm_axes",
]

UNARY = frozenset({
    "relu", "leaky_relu", "sigmoid", "hsigmoid", "hard_sigmoid", "swish", "hard_swish", "clip",
    "exp", "log", "tanh", "gelu", "mish", "softplus", "softsign", "elu", "selu", "abs", "neg",
    "sqrt", "erf", "floor", "ceil", "sign", "cast", "identity", "dropout", "batch_norm",
})
# Elementwise on input 0, the other inputs (ranges, scales, zero points) broadcast against it.
QUANTIZERS = frozenset({"fake_quantize", "quantize", "dequantize"})
BINARY = frozenset({"add", "sub", "mul", "div", "max", "min", "pow", "squared_difference",
                    "prelu"}) | QUANTIZERS  # elementwise with broadcasting
SCORES = frozenset({"softmax", "log_softmax", "sigmoid"})
RESHAPES = frozenset({"reshape", "squeeze", "unsqueeze", "flatten", "identity"})
MOVES = RESHAPES | {"transpose"}  # shape moves: reshapes and transposes
LINEAR = frozenset({"conv", "conv_transpose", "matmul", "gemm"})
REDUCTIONS = frozenset({
    "reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_l1",
    "reduce_l2", "reduce_log_sum", "reduce_log_sum_exp", "reduce_sum_square",
    "reduce_logical_and", "reduce_logical_or",
})
NORMS = frozenset({"mvn", "layer_norm"})
_KEEPS_VALUES = RESHAPES | {"cast", "dropout"}
AFFINE = {
    **dict.fromkeys(["reshape", "squeeze", "unsqueeze", "flatten", "transpose", "identity",
                     "dropout", "cast", "batch_norm", "dequantize"], "always"),
    **dict.fromkeys(["matmul", "gemm", "conv", "add", "sub", "mul"], "single"),
    "div": "numerator",
}
FACTS = frozenset({
    "value", "bounds", "in_channels", "strides", "pads", "auto_pad", "kernel", "axis", "axes",
    "axes_input", "axes_from", "axes_all", "transpose_a", "transpose_b", "scaled", "perm",
    "perm_input",
})
_UNPADDED = ("explicit", "notset", "valid")  # auto_pad values that add no padding of their own


def norm_axes(axes: Any, rank: int | None) -> tuple[int, ...] | None:
    """`axes` (ints, possibly negative) as sorted non-negative ints, or None if unknown."""
    if axes is None or rank is None:
        return None
    return tuple(sorted({int(a) % rank for a in np.atleast_1d(np.asarray(axes)).ravel()}))


def _axes(facts: dict[str, Any], ins: list[TensorInfo]) -> tuple[int, ...] | None:
    rank = ins[0].rank if ins else None
    if rank is None:
        return None
    if "axes" in facts:
        return norm_axes(facts["axes"], rank)
    if "axes_from" in facts:
        return tuple(range(int(facts["axes_from"]) % rank, rank))
    if "axes_input" in facts:
        i = int(facts["axes_input"])
        return norm_axes(ins[i].probe_value, rank) if len(ins) > i else None
    return tuple(range(rank)) if facts.get("axes_all") else None


def _unpadded(facts: dict[str, Any]) -> bool:
    return not any(facts.get("pads", [])) and facts.get("auto_pad", "explicit") in _UNPADDED


def _is_gap(op: str, ins: list[TensorInfo], facts: dict[str, Any],
            axes: tuple[int, ...] | None) -> bool:
    """Global average pooling over the two spatial axes of a 4-D input."""
    data = ins[0] if ins else None
    if data is None:
        return False
    if op == "global_avg_pool":
        return data.rank == 4
    if op == "reduce_mean":
        return data.rank == 4 and axes == (2, 3)
    if op == "avg_pool":
        return (data.probe is not None and len(data.probe) == 4 and _unpadded(facts)
                and list(facts.get("kernel", [])) == list(data.probe[2:]))
    if op == "adaptive_avg_pool":
        size = ins[1].probe_value if len(ins) > 1 else None
        return size is not None and [int(s) for s in np.atleast_1d(size)] == [1, 1]
    return False


def _perm(facts: dict[str, Any], ins: list[TensorInfo]) -> tuple[int, ...] | None:
    if "perm" in facts:
        return tuple(int(a) for a in facts["perm"])
    i = facts.get("perm_input")
    value = ins[i].probe_value if i is not None and len(ins) > i else None
    return None if value is None else tuple(int(a) for a in np.asarray(value).ravel())


def _pointwise(op: str, ins: list[TensorInfo], facts: dict[str, Any]) -> str | None:
    if op in UNARY:
        return "unary"
    if op in BINARY:
        return "binary"
    if op == "conv" and len(ins) >= 2:
        w = ins[1].probe or ins[1].shape
        if (w is not None and tuple(w[-2:]) == (1, 1)
                and list(facts.get("strides", [])) == [1, 1] and _unpadded(facts)):
            return "unary"
    if (op in ("softmax", "log_softmax") and ins and ins[0].rank == 4
            and "axis" in facts and int(facts["axis"]) % 4 == 1):
        return "unary"
    return None


def _attention(op: str, ins: list[TensorInfo]) -> str | None:
    if op == "sdpa":
        return "sdpa"
    logits = ins[0].probe if ins else None
    if op != "softmax" or logits is None or len(logits) < 3:
        return None
    return "softmax" if logits[-1] == logits[-2] and logits[-1] > 1 else None


def _matrix(op: str, ins: list[TensorInfo], const_in: list[bool],
            facts: dict[str, Any]) -> str | None:
    """How the constant 2-D weight (input 1) of a plain matrix product is stored."""
    if op not in ("matmul", "gemm") or len(ins) < 2 or facts.get("scaled"):
        return None
    if facts.get("transpose_a") or const_in[0] or not const_in[1] or ins[1].rank != 2:
        return None
    return "kc" if facts.get("transpose_b") else "ck"


def _kind(op: str, ins: list[TensorInfo], const_in: list[bool], facts: dict[str, Any],
          axes: tuple[int, ...] | None) -> str:
    if op in ("input", "const", "output", "shapeof"):
        return op
    if op in SCORES:
        return "score"
    if op in _KEEPS_VALUES:
        return "shape"
    if op in LINEAR and len(const_in) >= 2 and (const_in[0] or const_in[1]):
        return "linear"
    return "gap" if _is_gap(op, ins, facts, axes) else "other"


def describe(op: str, ins: list[TensorInfo], const_in: list[bool], facts: dict[str, Any]
             ) -> tuple[str, dict[str, Any]]:
    """(`OpInfo.kind`, `OpInfo.attrs`) of an op named `op` (neutral) whose inputs are `ins`
    (`const_in`: which of them have fixed values), given its translator's `facts`."""
    axes = _axes(facts, ins) if op in REDUCTIONS or op in NORMS else None
    attrs: dict[str, Any] = {}
    if facts.get("value") is not None:
        attrs["value"] = facts["value"]
    found = {
        "pointwise": _pointwise(op, ins, facts),
        "affine": AFFINE.get(op),
        "attention": _attention(op, ins),
        "axes": axes,
        "matrix": _matrix(op, ins, const_in, facts),
        "perm": _perm(facts, ins) if op == "transpose" else None,
    }
    attrs.update((k, v) for k, v in found.items() if v is not None)
    return _kind(op, ins, const_in, facts, axes), attrs

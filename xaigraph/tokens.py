"""Transformer structure: the token map that ViT-ReciproCAM explains.

A vision transformer's class scores are computed from a token sequence `[N, L, D]`. Walking
the dominators of the scores from the output back, each block shows up as two residual Adds
(both inputs `[N, L, D]`): after the attention and after the MLP. The first residual Add whose
branch holds an attention op (Softmax, or a fused ScaledDotProductAttention) is the last
block's attention residual; its skip input is the last block's input, "the residual Add
between the last two blocks": the target.

The token grid comes from the last 4-D map `[N, D', H, W]` before the target (the patch
embedding): `L = prefix + H * W`, the prefix being the CLS, distillation or register tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from xaigraph.graph_view import GraphView, Value

__all__ = ["ATTENTION_OPS", "TokenGrid", "find_token_target", "token_grid"]

ATTENTION_OPS = {"softmax", "sdpa"}  # neutral names (xaigraph.opkinds)
MAX_PREFIX = 16


@dataclass(frozen=True)
class TokenGrid:
    prefix: int  # non-spatial tokens before the grid (CLS, distillation, registers)
    height: int
    width: int
    source: str  # where the grid was read: the patch-embedding map, or "square"
    residual: str | None = None  # the last block's attention residual Add (op id)
    skip_port: int = 0  # which of its inputs is the token map

    @property
    def locations(self) -> int:
        return self.height * self.width


def _shape(view: GraphView, v: Value) -> tuple[int | None, ...] | None:
    t = view.tensor(v)
    return t.probe if t.probe is not None else t.shape


def _is_residual(view: GraphView, v: Value) -> bool:
    op = view.ops[v.op]
    if op.neutral != "add" or len(op.inputs) != 2:
        return False
    shapes = [_shape(view, x) for x in op.inputs]
    return all(s is not None and len(s) == 3 for s in shapes) and shapes[0] == shapes[1]


def find_token_target(view: GraphView, dominators: list[Value]) -> tuple[Value, TokenGrid] | None:
    """(the last block's input, its token grid), or None when the model shows no transformer
    block after its last spatial feature map. `dominators`: nearest the output first."""
    dominating = set(dominators)
    for v in dominators:
        shape = _shape(view, v)
        if shape is not None and len(shape) == 4 and all(d and d > 1 for d in shape[2:]):
            return None  # reached the spatial maps without meeting a transformer block
        if not _is_residual(view, v):
            continue
        add = view.ops[v.op]
        skips = [x for x in add.inputs if x in dominating]
        if len(skips) != 1:
            continue
        branch = view.ops_between(skips[0], v)
        if any(view.ops[o].neutral in ATTENTION_OPS for o in branch):
            grid = token_grid(view, skips[0], dominators)
            if grid is None:
                return None
            port = add.inputs.index(skips[0])
            return skips[0], replace(grid, residual=v.op, skip_port=port)
    return None


def token_grid(view: GraphView, tokens: Value, dominators: list[Value]) -> TokenGrid | None:
    """The grid of the token map `tokens` (`[N, L, D]`): from the last 4-D map that dominates
    it, else the largest square that leaves at most `MAX_PREFIX` leading tokens."""
    shape = _shape(view, tokens)
    if shape is None or len(shape) != 3 or shape[1] is None:
        return None
    length = shape[1]
    if tokens in dominators:
        earlier = dominators[dominators.index(tokens) + 1:]
    else:
        earlier = view.dominators(tokens)
    for v in earlier:
        s = _shape(view, v)
        if s is not None and len(s) == 4 and s[2] and s[3] and s[2] * s[3] > 1:
            prefix = length - s[2] * s[3]
            if 0 <= prefix <= MAX_PREFIX:
                return TokenGrid(prefix, s[2], s[3], view.describe(v))
            break
    for prefix in range(MAX_PREFIX + 1):
        side = math.isqrt(length - prefix) if length > prefix else 0
        if side > 1 and side * side == length - prefix:
            return TokenGrid(prefix, side, side, "square")
    return None

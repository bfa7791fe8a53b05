"""Transformer structure: the token map that ViT-ReciproCAM explains.

A vision transformer's class scores are computed from a token sequence `[N, L, D]`. Walking
the dominators of the scores from the output back, each block shows up as two residual Adds
(both inputs `[N, L, D]`): after the attention and after the MLP. The first residual Add whose
branch holds an attention op (Softmax, or a fused ScaledDotProductAttention) is the last
block's attention residual; its skip input is the last block's input, "the residual Add
between the last two blocks": the target.

Class attention (CaiT, XCiT, VOLO): the last blocks let a few class tokens attend to the patch
tokens (queries: the class tokens, keys: all tokens; the patch tokens pass on unchanged).
There the target is the token map entering that stage (the nearest dominator of the scores
with every class-attention op after it), so that the mosaic runs through all of them. An
attention op is told apart by its logits `[..., q, L]` (or a fused one's query and key
lengths): self-attention when `q == L`, class attention when `q < L` and `q <= MAX_PREFIX`.

Several branches (CrossViT: a branch per patch size, their class tokens exchanging through
cross-attention, their heads averaged): no single token map dominates the scores. The target
is then one token map per branch: the input of each branch's last self-attention block (the
skip input of a residual Add whose branch holds self-attention and reads only it), those
with no other such block after them, when together they cut every path from the inputs to
the scores. The branch with the most grid tokens comes first.

The token grid comes from the last 4-D map `[N, D', H, W]` (or channels-last `[N, H, W, D']`)
before the target (the patch embedding): `L = prefix + H * W`, the prefix being the CLS,
distillation or register tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import networkx as nx

from xaigraph.graph_view import GraphView, Value

__all__ = ["ATTENTION_OPS", "TokenGrid", "attention_kind", "find_branch_targets",
           "find_token_target", "token_grid"]

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


def attention_kind(view: GraphView, op_id: str) -> str | None:
    """"self" or "class" for an attention op (see the module doc), else None."""
    op = view.ops[op_id]
    if op.neutral == "sdpa" and len(op.inputs) >= 2:
        q, k = _shape(view, op.inputs[0]), _shape(view, op.inputs[1])
        queries, keys = (q[-2], k[-2]) if q and k and len(q) >= 3 and len(k) >= 3 else (0, 0)
    elif op.neutral == "softmax" and op.inputs:
        logits = _shape(view, op.inputs[0])
        queries, keys = (logits[-2], logits[-1]) if logits and len(logits) >= 3 else (0, 0)
    else:
        return None
    if not queries or not keys:
        return None
    if queries == keys and keys > 1:
        return "self"
    return "class" if queries < keys and queries <= MAX_PREFIX else None


def _class_attention_entry(view: GraphView, dominators: list[Value], scores: Value
                           ) -> Value | None:
    """The token map entering the class-attention stage: the nearest dominator of `scores`
    with every class-attention op that feeds them after it and no self-attention."""
    ancestors = set(view.ops_between(dominators[-1], scores)) if dominators else set()
    wanted = {o for o in ancestors if attention_kind(view, o) == "class"}
    if not wanted:
        return None
    for v in dominators:
        shape = _shape(view, v)
        if shape is not None and len(shape) == 4:
            return None
        region = set(view.ops_between(v, scores))
        if any(attention_kind(view, o) == "self" for o in region):
            return None
        if wanted <= region:
            return v if shape is not None and len(shape) == 3 else None
    return None


def find_token_target(view: GraphView, dominators: list[Value], scores: Value | None = None
                      ) -> tuple[Value, TokenGrid] | None:
    """(the last block's input, its token grid), or None when the model shows no transformer
    block after its last spatial feature map. `dominators`: those of `scores`, nearest the
    output first; with `scores`, a class-attention stage's entry comes first."""
    entry = _class_attention_entry(view, dominators, scores) if scores is not None else None
    if entry is not None:
        grid = token_grid(view, entry, dominators)
        return (entry, grid) if grid is not None else None
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
        if s is None or len(s) != 4:
            continue
        for h, w in ((s[2], s[3]), (s[1], s[2])):  # channels-first, channels-last
            if h and w and h * w > 1 and 0 <= length - h * w <= MAX_PREFIX:
                return TokenGrid(length - h * w, h, w, view.describe(v))
        break
    for prefix in range(MAX_PREFIX + 1):
        side = math.isqrt(length - prefix) if length > prefix else 0
        if side > 1 and side * side == length - prefix:
            return TokenGrid(prefix, side, side, "square")
    return None


def _block_input(view: GraphView, add_id: str) -> Value | None:
    """The skip input of the residual Add `add_id` when its other input is a self-attention
    branch computed from that skip input alone (every path to it passes through it)."""
    add = view.ops[add_id]
    if not _is_residual(view, Value(add_id, 0)):
        return None
    for port, skip in enumerate(add.inputs):
        other = add.inputs[1 - port]
        branch = view.ops_between(skip, other)
        if any(attention_kind(view, o) == "self" for o in branch) and \
                skip in view.dominators(other):
            return skip
    return None


def _cuts(view: GraphView, values: list[Value], scores: Value) -> bool:
    """Whether every data path from the model inputs to `scores` passes through `values`
    (paths through shape-reading ops do not count, as for dominators)."""
    blocked = {v.op for v in values}  # each value's producer: its only output on the paths
    seen, stack = set(), [i for i in view.inputs]
    while stack:
        o = stack.pop()
        if o in seen or o in blocked:
            continue
        seen.add(o)
        if o == scores.op:
            return False
        stack.extend(s for s in view.graph.successors(o) if view.ops[s].kind != "shapeof")
    return True


def _branch_grid(view: GraphView, tokens: Value) -> TokenGrid | None:
    """A branch's grid: from the nearest 4-D map before it that no token map precedes (a
    patch embedding) whose `H * W` leaves at most `MAX_PREFIX` leading tokens (the branches'
    patch embeddings differ in size), else the largest square."""
    shape = _shape(view, tokens)
    if shape is None or len(shape) != 3 or shape[1] is None:
        return None
    length = shape[1]
    before = _ancestors(view, tokens.op)
    after_tokens: set[str] = set()  # ops with a 3-D data tensor at or before them
    for o in view.order:
        op = view.ops[o]
        if view.is_const_derived(o):
            continue
        if any(i.op in after_tokens for i in op.inputs) or any(
                len(_shape(view, Value(o, p)) or ()) == 3 for p in range(len(op.outputs))):
            after_tokens.add(o)
    for o in reversed(view.order):
        if o not in before or o in after_tokens or view.is_const_derived(o):
            continue
        for port in range(len(view.ops[o].outputs)):
            s = _shape(view, Value(o, port))
            if s is None or len(s) != 4:
                continue
            for h, w in ((s[2], s[3]), (s[1], s[2])):  # channels-first, channels-last
                if h and w and h > 1 and w > 1 and 0 <= length - h * w <= MAX_PREFIX:
                    return TokenGrid(length - h * w, h, w, view.describe(Value(o, port)))
    return token_grid(view, tokens, [])


def _ancestors(view: GraphView, op_id: str) -> set[str]:
    """Ops that `op_id` depends on."""
    return set(nx.ancestors(view.graph, op_id))


def find_branch_targets(view: GraphView, scores: Value) -> list[tuple[Value, TokenGrid]] | None:
    """One token map per branch with its grid (see the module doc), the branch with the most
    grid tokens first; None unless there are several and they cut the scores off the inputs."""
    region = _ancestors(view, scores.op)
    inputs = [v for o in view.order if o in region and view.ops[o].neutral == "add"
              and (v := _block_input(view, o)) is not None]
    later = {v: view.value_descendants(v) for v in inputs}
    last = [v for v in inputs if not any(u.op in later[v] for u in inputs if u != v)]
    last = list(dict.fromkeys(last))
    if len(last) < 2 or not _cuts(view, last, scores):
        return None
    found = [(v, g) for v in last if (g := _branch_grid(view, v)) is not None]
    if len(found) != len(last):
        return None
    return sorted(found, key=lambda vg: -vg[1].locations)

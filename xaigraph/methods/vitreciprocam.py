"""ViT-ReciproCAM (Byun & Lee, arXiv 2310.02588), built inside the graph.

The target is the token map `X` `[N, L, D]` at the input of the last transformer block: `P`
prefix tokens (CLS, distillation, registers) then an `H x W` grid. For each grid location
`m = (i, j)` the mosaic keeps the prefix tokens, weights the grid tokens by a 3x3 binomial
kernel centred on `m` (1 at `m`, 1/2 at its edge neighbours, 1/4 at its corners, 0 elsewhere)
and runs the last block, the final norm and the head on it: `S[k, i, j]` is class `k`'s score.

Plain form: a copy of that head runs on the batch of `H*W` masked sequences per image.

Fast form (exact): a mosaic holds at most 9 distinct grid tokens; every other grid token is
the zero vector, and zero tokens are all alike. Each mosaic is compressed to its prefix tokens,
its 9 neighbourhood slots and one zero token (`P + 10` tokens instead of `P + H*W`), with a
multiplicity per token (1, 1 or 0 for a slot off the grid, and `H*W` minus the slots used for
the zero token). Per-token ops do not care; attention does, and `log(multiplicity)` added to
its logits makes the softmax over the compressed keys equal to the softmax over the full
sequence, where a key repeated `m` times carries `m` times the weight. Heads that read the
prefix tokens (CLS, distillation) are then exact; a head that averages over all tokens is not,
so models without prefix tokens use the plain form. The insert pass checks the fast form
against the plain form on a random input, and falls back to the plain form if they differ.

Several branches (CrossViT, see `xaigraph.tokens`): one token map per branch, each with its
own grid. Each branch's map comes from its own mosaics, the other branches' token maps
unmasked (repeated for every mosaic), run through the whole head (every branch's remaining
blocks, the cross-attention and the heads) in the plain form: `S_b[k, i, j]` is class `k`'s
score with only branch `b`'s tokens near `(i, j)` kept. The grids tile the same image, so
each map is resized to the finest grid by bilinear interpolation (cell centres aligned,
`resize_matrix`) and the maps are averaged, with equal weights as the model averages its
branches' heads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaigraph.classifier import chosen_scores, find_classifier
from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.methods.base import Method
from xaigraph.methods.headcopy import copy_head
from xaigraph.methods.pooled import to_maps
from xaigraph.ops import NUMPY_TYPES, OpBuilder, T, ints
from xaigraph.target import Target
from xaigraph.tokens import TokenGrid, attention_kind

__all__ = ["ViTReciproCAM", "resize_matrix", "slot_tables", "token_masks"]

KERNEL = np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5])  # 3x3, 1 at the centre


def token_masks(grid: TokenGrid) -> np.ndarray:
    """`[H*W, L]`: the weight of every token in the mosaic of each grid location."""
    h, w, p = grid.height, grid.width, grid.prefix
    masks = np.zeros((h * w, p + h * w), dtype=np.float32)
    masks[:, :p] = 1.0
    for i in range(h):
        for j in range(w):
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    ti, tj = i + di, j + dj
                    if 0 <= ti < h and 0 <= tj < w:
                        masks[i * w + j, p + ti * w + tj] = KERNEL[di + 1, dj + 1]
    return masks


def slot_tables(grid: TokenGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the fast form: grid-token index `[H*W * 9]` and weight `[H*W, 9]` of each mosaic's
    neighbourhood slots, and the log-multiplicity `[H*W, P + 10]` of its compressed tokens."""
    h, w, p = grid.height, grid.width, grid.prefix
    index = np.zeros((h * w, 9), dtype=np.int64)
    weight = np.zeros((h * w, 9), dtype=np.float32)
    count = np.zeros((h * w, p + 10), dtype=np.float64)
    count[:, :p] = 1
    for i in range(h):
        for j in range(w):
            m = i * w + j
            for s, (di, dj) in enumerate((a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)):
                ti, tj = i + di, j + dj
                if 0 <= ti < h and 0 <= tj < w:
                    index[m, s] = ti * w + tj
                    weight[m, s] = KERNEL[di + 1, dj + 1]
                    count[m, p + s] = 1
            count[m, p + 9] = h * w - count[m, p : p + 9].sum()
    with np.errstate(divide="ignore"):
        log_count = np.log(count).astype(np.float32)  # log 0 = -inf: a slot that is not there
    return index.reshape(-1), weight, log_count


def _linear_weights(n: int, size: int) -> np.ndarray:
    """`[size, n]`: bilinear interpolation weights from `n` cells to `size` cells along one
    axis, cell centres aligned (`align_corners=False`; positions clamped at the borders)."""
    out = np.zeros((size, n), dtype=np.float64)
    for i in range(size):
        x = min(max((i + 0.5) * n / size - 0.5, 0.0), n - 1.0)
        lo = int(np.floor(x))
        hi = min(lo + 1, n - 1)
        out[i, lo] += 1.0 - (x - lo)
        out[i, hi] += x - lo
    return out


def resize_matrix(h: int, w: int, height: int, width: int) -> np.ndarray:
    """`[h*w, height*width]`: a row-major `h x w` map times it is that map resized to
    `height x width` by bilinear interpolation (see `_linear_weights`)."""
    return np.kron(_linear_weights(h, height), _linear_weights(w, width)).T


class ViTReciproCAM(Method):
    name = "vitreciprocam"
    per_class = True
    summary = "last block + head re-run on kernel-masked token maps, [N, K, H, W]"
    target_kind = "tokens"
    forms = ("fast", "plain")  # the insert pass checks the first against the last
    form_names = forms

    def __init__(self, form: str | None = None) -> None:
        self.forced_form = form  # for comparisons (benchmark, tests) only

    def pick_form(self, view: GraphView, target: Target, head: Head) -> str:
        if self.forced_form is not None:
            return self.forced_form
        grid = target.tokens
        if grid is None or grid.prefix == 0 or target.branches:
            return "plain"  # a head averaging over all tokens needs them all
        if not any(view.ops[o].attrs.get("attention") for o in head.ops):
            return "plain"
        return "fast"

    def check(self, view: GraphView, target: Target, head: Head) -> str | None:
        if head.side_inputs:
            names = ", ".join(view.describe(v) for v in head.side_inputs[:3])
            return f"the head also reads {names}, which does not come from the token map"
        if view.tensor(target.value).dtype not in ("f32", "f16"):
            return "the token map is not a float tensor"
        return None

    def form(self, view: GraphView, target: Target, head: Head, form: str | None = None) -> str:
        grid = target.tokens
        assert grid is not None
        form = form or self.pick_form(view, target, head)
        tokens = f"{grid.prefix} prefix + {grid.height}x{grid.width} grid tokens"
        if form == "fast":
            pruned = (", only the prefix tokens going on after it"
                      if self._prunable(view, target, head) else "")
            return (f"fast exact form: the last block and the head run on {grid.locations} "
                    f"compressed mosaics of {grid.prefix + 10} tokens per image ({tokens}), "
                    f"attention weighted by token multiplicity{pruned}")
        if target.branches:
            each = ", ".join(f"{br.tokens.prefix} prefix + {br.tokens.height}x"
                             f"{br.tokens.width} grid tokens" for br in target.branches)
            return (f"plain form, {len(target.branches)} branches ({each}): each branch's "
                    "masked copies of its token map, the other branches unmasked, run "
                    "through the head; the maps resized (bilinear) to "
                    f"{grid.height}x{grid.width} and averaged")
        why = ""
        if grid.prefix == 0 and any(attention_kind(view, o) == "class" for o in head.ops):
            why = " (no prefix token: the class tokens join the sequence in the head)"
        elif grid.prefix == 0:
            why = " (no prefix token: the head averages all tokens)"
        return (f"plain form: the last block and the head run on {grid.locations} masked copies "
                f"of the token map per image ({tokens}){why}")

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
              form: str | None = None) -> T:
        return self.build_chosen(b, view, target, head, None, form)

    def chooses_classes(self, view: GraphView, target: Target, head: Head,
                        form: str | None = None) -> bool:
        if target.branches:
            return False
        return find_classifier(view, head, target.num_classes, after_pool=False) is not None

    def chosen_form(self, view: GraphView, target: Target, head: Head,
                    form: str | None = None) -> str:
        clf = find_classifier(view, head, target.num_classes, after_pool=False)
        assert clf is not None
        return (self.form(view, target, head, form) + "; then the chosen classes' rows of "
                f"the classifier ({view.op_chain(clf.tail[::-1])})")

    def build_chosen(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
                     classes: T | None, form: str | None = None) -> T:
        form = form or self.pick_form(view, target, head)
        if target.branches:
            maps = self._branches(b, view, target, head)
        elif form == "fast":
            maps = self._fast(b, view, target, head, classes)
        else:
            maps = self._plain(b, view, target, head, classes)
        return maps if b.dtype(maps) == "f32" else b.cast(maps, "f32")

    def _fast(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
              classes: T | None) -> T:
        grid = target.tokens
        assert grid is not None
        p, hw, length = grid.prefix, grid.locations, grid.prefix + 10
        x = b.value(target.value)  # [N, L, D]
        np_type = NUMPY_TYPES[b.dtype(x)]
        n, d = b.dims(x, [0]), b.dims(x, [2])
        index, weight, log_count = slot_tables(grid)

        def i64(*values: int) -> T:
            return b.const(ints(*values))

        slots = b.take(b.slice(x, p, None, axis=1), b.const(index), axis=1)  # [N, HW*9, D]
        slots = b.reshape(slots, b.concat([n, i64(hw, 9), d], 0))  # [N, HW, 9, D]
        slots = b.mul(slots, b.const(weight.reshape(1, hw, 9, 1).astype(np_type)))
        zero = b.mul(b.slice(slots, 0, 1, axis=2), b.const(np.zeros((), dtype=np_type)))
        prefix = b.expand(b.unsqueeze(b.slice(x, 0, p, axis=1), [1]),
                          b.concat([n, i64(hw, p), d], 0))  # [N, HW, P, D]
        seq = b.concat([prefix, slots, zero], 2)  # [N, HW, P + 10, D]
        seq = b.reshape(seq, b.concat([i64(-1, length), d], 0))  # [N*HW, P + 10, D]
        bias = b.expand(b.const(log_count.reshape(1, hw, length).astype(np_type)),
                        b.concat([n, i64(hw, length)], 0))
        bias = b.reshape(bias, i64(-1, 1, 1, length))  # [N*HW, 1, 1, P + 10]
        keep = {grid.residual: p} if self._prunable(view, target, head) and grid.residual \
            else None
        return self._run(b, view, target, head, seq, classes, attention_bias=bias,
                         keep_rows=keep)

    def _run(self, b: OpBuilder, view: GraphView, target: Target, head: Head, seq: T,
             classes: T | None, **copy_args: Any) -> T:
        """The head on the `[N*HW, L', D]` sequences: maps `[N, K, H, W]`, or with
        `classes` `[N, k]` the chosen classes' maps through their rows of the classifier."""
        grid = target.tokens
        assert grid is not None
        n = b.dims(b.value(target.value), [0])
        h, w = b.const(ints(grid.height)), b.const(ints(grid.width))
        batch = b.dims(seq, [0])
        if classes is None:
            (out,) = copy_head(b, view, head, head.ops, {target.value: seq}, [head.scores],
                               batch, **copy_args)
            return to_maps(b, target, out, n, h, w)
        clf = find_classifier(view, head, target.num_classes, after_pool=False)
        assert clf is not None
        ops = [o for o in head.ops if o not in clf.tail]
        (vectors,) = copy_head(b, view, head, ops, {target.value: seq}, [clf.data], batch,
                               **copy_args)  # [N*HW, C]
        x = b.reshape(vectors, b.concat([n, b.const(ints(-1)), b.dims(vectors, [1])], 0))
        scores = chosen_scores(b, clf, x, classes)  # [N, k, HW]
        return b.reshape(scores, b.concat([n, b.const(ints(-1)), h, w], 0))

    @staticmethod
    def _prunable(view: GraphView, target: Target, head: Head) -> bool:
        """Whether only the prefix tokens need to go on after the attention residual: the
        ops after it act per token (LayerNorm, MLP, residual) up to a head that reads the
        prefix tokens. Cutting both inputs of that Add to the prefix rows keeps the rest of
        the block to `P` tokens per mosaic; the insert pass's self-check catches a model
        where something after it does read the other tokens."""
        grid = target.tokens
        return grid is not None and grid.residual is not None and grid.residual in head.ops

    def _plain(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
               classes: T | None) -> T:
        grid = target.tokens
        assert grid is not None
        x = b.value(target.value)
        masks = token_masks(grid)
        masks = masks.astype(NUMPY_TYPES[b.dtype(x)])
        weights = b.const(masks.reshape(1, grid.locations, -1, 1))  # [1, HW, L, 1]
        mosaics = b.mul(b.unsqueeze(x, [1]), weights)  # [N, HW, L, D]
        flat = b.reshape(mosaics, b.concat([b.const(ints(-1)),
                                            b.dims(x, [1, 2])], 0))  # [N*HW, L, D]
        return self._run(b, view, target, head, flat, classes)

    def _branches(self, b: OpBuilder, view: GraphView, target: Target, head: Head) -> T:
        """`[N, K, H, W]` on the finest grid: the mean of every branch's maps (module doc)."""
        assert target.tokens is not None
        height, width = target.tokens.height, target.tokens.width
        n = b.dims(b.value(target.value), [0])
        total: T | None = None
        for branch in target.branches:
            v, grid = branch.value, branch.tokens
            x = b.value(v)
            masks = token_masks(grid).astype(NUMPY_TYPES[b.dtype(x)])
            mosaics = b.mul(b.unsqueeze(x, [1]), b.const(masks.reshape(1, grid.locations, -1, 1)))
            inputs = {v: b.reshape(mosaics, b.concat([b.const(ints(-1)), b.dims(x, [1, 2])], 0))}
            for other in target.branches:  # the others, unmasked, once per mosaic
                if (u := other.value) != v:
                    y = b.value(u)
                    wide = b.expand(b.unsqueeze(y, [1]), b.concat(
                        [n, b.const(ints(grid.locations)), b.dims(y, [1, 2])], 0))
                    inputs[u] = b.reshape(wide, b.concat([b.const(ints(-1)), b.dims(y, [1, 2])],
                                                         0))
            (out,) = copy_head(b, view, head, head.ops, inputs, [head.scores],
                               b.dims(inputs[v], [0]))  # [N*hw, K]
            k = b.const(ints(target.num_classes))
            maps = b.transpose(b.reshape(out, b.concat([n, b.const(ints(grid.locations)), k], 0)),
                               [0, 2, 1])  # [N, K, hw]
            if (grid.height, grid.width) != (height, width):
                resize = resize_matrix(grid.height, grid.width, height, width)
                maps = b.matmul(maps, b.const(resize.astype(NUMPY_TYPES[b.dtype(maps)])))
            total = maps if total is None else b.add(total, maps)
        assert total is not None
        mean = b.mul(total, b.const(np.asarray(1.0 / len(target.branches),
                                               dtype=NUMPY_TYPES[b.dtype(total)])))
        return b.reshape(mean, b.concat([n, b.const(ints(-1, height, width))], 0))

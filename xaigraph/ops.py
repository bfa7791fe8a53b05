"""The op-building interface that methods are written against.

A method builds its subgraph once, through an `OpBuilder`; each backend (OpenVINO, ONNX)
implements the interface. Tensors are opaque handles of the backend (`T`). Shapes are 1-D
int64 tensors; `dims(x, [i, j])` gathers dimensions of `x` as such a tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from xaigraph.graph_view import GraphView, Value

__all__ = ["NUMPY_TYPES", "BuilderBase", "OpBuilder", "T", "broadcast_fixed", "ints",
           "relax_shape"]

T = Any  # a backend tensor handle: ov.Output, or an ONNX value name

# element type names (as `OpBuilder.dtype` returns them) and their numpy types
NUMPY_TYPES: dict[str, type[np.generic]] = {
    "f32": np.float32, "f16": np.float16, "f64": np.float64,
    "i64": np.int64, "i32": np.int32, "u8": np.uint8,
}


def ints(*values: int) -> np.ndarray:
    """A 1-D int64 array: shapes, axes and indices for `OpBuilder.const`."""
    return np.asarray(values, dtype=np.int64)


def relax_shape(shape: np.ndarray, data: tuple[int, ...], special_zero: bool
                ) -> np.ndarray | None:
    """A Reshape target shape that no longer fixes the batch (dim 0) or the sequence length
    (dim 1), or None when it fixes neither. Both builders relax the Reshapes they copy.

    `shape[i]` (i = 0, 1) is fixed when it is a positive literal equal to the input's (probed)
    dim `i`: it becomes 0, "copy the input's dimension", so that a copy of the op also accepts
    another batch or sequence length. That needs special-zero semantics; when the original did
    not have them, any other 0 would change meaning, so we give up.

    Otherwise, when the Reshape merges the batch with the dims after it into its dim 0
    (`[N, L, D] -> [N*L, D]`) or splits it back out (`[N*L, D] -> [N, L, D]`), as a static
    export writes `x.flatten(0, 1)` and `reshape_as`, shape[0] becomes -1: the other dims do
    not hold the batch, so the copy's dim 0 scales with its batch (see `_moves_batch`).
    """
    flat = np.asarray(shape).reshape(-1)
    fixed = [i for i in (0, 1)
             if i < flat.size and i < len(data) and int(flat[i]) > 0 and int(flat[i]) == data[i]]
    if not fixed:
        if not _moves_batch(flat, data):
            return None
        out = flat.copy()
        out[0] = -1
        return out
    if not special_zero and np.any(flat == 0):
        return None
    out = flat.copy()
    out[fixed] = 0
    return out


def _moves_batch(flat: np.ndarray, data: tuple[int, ...]) -> bool:
    """Whether the literal shape `flat` (all positive, no -1 or 0) makes its dim 0 from the
    input's first dims `data[:k]` (k >= 2, a merge) or makes its first dims `flat[:k]` from
    the input's dim 0 (a split)."""
    if flat.size == 0 or not data or np.any(flat <= 0):
        return False
    first = int(flat[0])
    merge = any(math.prod(data[:k]) == first for k in range(2, len(data) + 1))
    split = any(math.prod(int(d) for d in flat[:k]) == data[0] for k in range(2, flat.size + 1))
    return merge or split


def broadcast_fixed(b: OpBuilder, view: GraphView, op_id: str, args: list[T],
                    copied: Sequence[bool], axis: int) -> list[T]:
    """The inputs `args` of a copy of the Concat `op_id` (along `axis`), where each fixed
    input (no model input reaches it) with a batch of 1 that a copied input had too (a
    static export's `cls_token.expand(1, -1, -1)`) is broadcast to that input's batch in the
    copy. `copied[i]`: whether `args[i]` comes from the copy (else from the original)."""
    op = view.ops[op_id]
    shapes = [view.tensor(v).probe for v in op.inputs]
    rank = len(shapes[0]) if shapes and shapes[0] is not None else 0
    carrier = next((i for i, c in enumerate(copied) if c), None)
    first = shapes[carrier] if carrier is not None else None
    if carrier is None or not first or rank < 2 or axis % rank == 0 or first[0] != 1:
        return args
    out = list(args)
    for i, v in enumerate(op.inputs):
        shape = shapes[i]
        if copied[i] or shape is None or len(shape) != rank or shape[0] != 1 \
                or not view.is_const_derived(v.op):
            continue
        batch = b.dims(args[carrier], [0])
        out[i] = b.expand(args[i], b.concat([batch, b.dims(args[i], list(range(1, rank)))], 0))
    return out


class OpBuilder(Protocol):
    """Build ops in a model. Every method returns a new tensor handle."""

    # -- existing tensors and outputs -----------------------------------------------------
    def value(self, v: Value) -> T:
        """Handle of an existing tensor of the model."""

    def copy(self, ops: Sequence[str], inputs: dict[Value, T], outputs: Sequence[Value],
             attention_bias: T | None = None, keep_rows: dict[str, int] | None = None
             ) -> list[T]:
        """Re-create `ops` (view op ids, topological order) reading `inputs` instead of the
        original tensors, and return the copies of `outputs` (an output may also be a key of
        `inputs`). Whatever else the ops read is read from the original graph (constants are
        shared, not copied). Reshapes whose constant target shape fixes the batch or the
        sequence length are relaxed so that the copy accepts others. `attention_bias`, when
        given, is added to the attention logits of every attention op copied (see
        `attrs["attention"]`), broadcast over `[batch, heads, queries, keys]`.
        `keep_rows[op] = r`: every input of `op` is cut to its first `r` rows on axis 1 (the
        tokens of a `[batch, tokens, dim]` sequence)."""

    def add_output(self, x: T, name: str, shape: Sequence[int | None]) -> None:
        """Append a model output named `name`; `shape` (None for dynamic dims) is what its
        declared shape should be (the ONNX builder records it, OpenVINO infers it)."""

    def finish(self) -> None:
        """Tidy up after building (the ONNX builder re-sorts and drops dead nodes)."""

    def replace_output(self, name: str, x: T, shape: Sequence[int | None] | None = None
                       ) -> None:
        """Make the existing output `name` return `x` instead (declared `shape` when it
        changes)."""

    def output_at(self, index: int) -> T:
        """The tensor that the model's output number `index` returns."""

    def output_value(self, name: str) -> T:
        """The tensor that the output `name` returns."""

    def remove_output(self, name: str) -> None:
        """Remove the output `name` (what only it needed goes too)."""

    def rename_output(self, old: str, new: str) -> None: ...

    def replace_value(self, v: Value, x: T) -> None:
        """Make every reader of the model's tensor `v` read `x` instead (names move too)."""

    def insert_after(self, v: Value, build: Callable[[T], T]) -> T:
        """Put `build(v)` between the model's tensor `v` and its current readers (which then
        read the result); `v` keeps its names. Returns the result."""

    def name(self, x: T) -> str:
        """A name of `x` that `GraphView.find` resolves."""

    # -- constants and shapes ---------------------------------------------------------------
    def const(self, array: np.ndarray) -> T: ...
    def shape_of(self, x: T) -> T: ...
    def dims(self, x: T, indices: Sequence[int]) -> T: ...
    def concat(self, xs: Sequence[T], axis: int) -> T: ...
    def reshape(self, x: T, shape: T) -> T:
        """Reshape; a 0 in `shape` copies the input's dimension, -1 is inferred."""

    def transpose(self, x: T, perm: Sequence[int]) -> T: ...
    def gather(self, x: T, index: int, axis: int) -> T:
        """`x[index]` along `axis`, the axis kept with size 1."""

    def slice(self, x: T, start: int, stop: int | None, axis: int) -> T:
        """`x[start:stop]` along `axis` (`stop=None`: to the end)."""

    def unsqueeze(self, x: T, axes: Sequence[int]) -> T: ...
    def expand(self, x: T, shape: T) -> T:
        """Broadcast `x` to `shape` (numpy rules)."""

    def eye(self, n: T, dtype: str) -> T:
        """The `[n, n]` identity matrix of `dtype`, for a 1-element int64 tensor `n`."""

    # -- arithmetic -------------------------------------------------------------------------
    def add(self, a: T, b: T) -> T: ...
    def sub(self, a: T, b: T) -> T: ...
    def mul(self, a: T, b: T) -> T: ...
    def div(self, a: T, b: T) -> T: ...
    def maximum(self, a: T, b: T) -> T: ...
    def matmul(self, a: T, b: T) -> T:
        """Batched matrix product, numpy semantics."""

    def sign(self, x: T) -> T: ...
    def exp(self, x: T) -> T: ...
    def resize_nearest(self, x: T, size: T) -> T:
        """Resize `[N, C, h, w]` to the int64 `size` `[H, W]` by nearest neighbour
        (source index `floor(i * h / H)`)."""

    def argmax(self, x: T, axis: int) -> T:
        """int64 index of the largest value along `axis` (kept, size 1)."""

    def take(self, x: T, indices: T, axis: int) -> T:
        """`x` at the int64 `indices` along `axis` (numpy `take`)."""

    def take_per_image(self, x: T, indices: T) -> T:
        """`x[n, indices[n]]` for `x` `[N, K, h, w]` and int64 `indices` `[N, k]`."""

    def topk(self, x: T, k: int, axis: int) -> T:
        """int64 indices of the `k` largest values along `axis`, largest first."""

    def cast(self, x: T, dtype: str) -> T:
        """dtype: 'f32', 'f16', 'i64' or 'u8'."""

    def dtype(self, x: T) -> str: ...

    # -- reductions -------------------------------------------------------------------------
    def reduce_mean(self, x: T, axes: Sequence[int], keepdims: bool) -> T: ...
    def channel_mean(self, x: T, channels: int) -> T:
        """`[N, C, H, W]` -> `[N, H, W]`, the mean over the `channels` channels."""

    def reduce_min(self, x: T, axes: Sequence[int], keepdims: bool) -> T: ...
    def reduce_sum(self, x: T, axes: Sequence[int], keepdims: bool) -> T: ...
    def reduce_max(self, x: T, axes: Sequence[int], keepdims: bool) -> T: ...


class BuilderBase:
    """What both backends' builders share: the graph view they were made with."""

    def __init__(self, view: GraphView | None) -> None:
        self.view = view

    @property
    def _view(self) -> GraphView:
        if self.view is None:
            raise RuntimeError("this builder was made without a graph view")
        return self.view

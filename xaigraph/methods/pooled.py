"""Running the part of a head after its global average pooling on a grid of vectors.

ReciproCAM's fast form and CAM both need `L(v)` for every location vector `v` of a map, where
`L` is the head after the pooling (`local` ops, then `rest`; see `xaigraph.head`). The vectors
come as a grid `[N, C', H, W]`; `local` ops run on the grid as a map, `rest` on the vectors as
one batch. An optional extra vector per image (`[N, C', 1, 1]` or the pooled tensor's own
shape) joins the batch as row 0 and its scores come back separately.
"""

from __future__ import annotations

from xaigraph.graph_view import GraphView, Value
from xaigraph.head import Head
from xaigraph.methods.headcopy import copy_head
from xaigraph.ops import OpBuilder, T, ints
from xaigraph.target import Target

__all__ = ["run_after_pool", "to_maps", "vectors_at"]


def to_maps(b: OpBuilder, target: Target, batched: T, n: T, h: T, w: T) -> T:
    """`[N*H*W, K...]` -> `[N, H, W, K]` -> `[N, K, H, W]`."""
    k = b.const(ints(target.num_classes))
    return b.transpose(b.reshape(batched, b.concat([n, h, w, k], 0)), [0, 3, 1, 2])


def _grids(b: OpBuilder, view: GraphView, head: Head, grid: T, n: T,
           extra: T | None) -> dict[Value, T]:
    """The pooled grid (the extra vector first, as `[N, C', 1 + H*W, 1]`) and the outputs
    of the `local` ops on it: every value `rest` reads, as a map."""
    assert head.pool is not None
    pooled = Value(head.pool, 0)
    if extra is not None:
        flat = b.reshape(grid, b.concat([n, b.dims(grid, [1]), b.const(ints(-1, 1))], 0))
        if (view.tensor(pooled).rank or 4) != 4:
            extra = b.reshape(extra, b.concat([b.dims(extra, [0, 1]), b.const(ints(1, 1))],
                                              0))
        grid = b.concat([extra, flat], 2)
    maps = {pooled: grid}
    if head.local:
        wanted = [v for v in head.boundary if v != pooled]
        copies = b.copy(head.local, {pooled: grid}, wanted)
        maps.update(zip(wanted, copies, strict=True))
    return maps


def _vectors(b: OpBuilder, view: GraphView, head: Head, maps: dict[Value, T]
             ) -> dict[Value, T]:
    """Each value `rest` reads, one row per location: `[N*L, C, 1, 1]` or `[N*L, C]` as its
    rank says."""
    vectors = {}
    for v in head.boundary:
        rank = view.tensor(v).rank or 4
        locs = b.transpose(maps[v], [0, 2, 3, 1])  # [N, H, W, C]
        parts = [b.const(ints(-1)), b.dims(maps[v], [1])]
        if rank > 2:
            parts.append(b.const(ints(*[1] * (rank - 2))))
        vectors[v] = b.reshape(locs, b.concat(parts, 0))
    return vectors


def run_after_pool(b: OpBuilder, view: GraphView, target: Target, head: Head, grid: T, n: T,
                   h: T, w: T, extra: T | None = None) -> tuple[T, T | None]:
    """(maps `[N, K, H, W]`, scores of `extra` `[N, 1, K]` or None)."""
    maps = _grids(b, view, head, grid, n, extra)
    if not head.rest and extra is None:
        return maps[head.scores], None  # already [N, K, H, W]
    vectors = _vectors(b, view, head, maps)
    if head.rest:
        batch = b.dims(vectors[head.boundary[0]], [0])
        (out,) = copy_head(b, view, head, head.rest, vectors, [head.scores], batch)
    else:
        out = vectors[head.scores]
    if extra is None:
        return to_maps(b, target, out, n, h, w), None
    k = b.const(ints(target.num_classes))
    rows = b.reshape(out, b.concat([n, b.const(ints(-1)), k], 0))  # [N, 1 + H*W, K]
    return to_maps(b, target, b.slice(rows, 1, None, axis=1), n, h, w), b.gather(rows, 0, 1)


def vectors_at(b: OpBuilder, view: GraphView, head: Head, grid: T, n: T, value: Value,
               skip: list[str], extra: T | None = None) -> T:
    """`value` (a `[N, C]` tensor of the head after the pooling) for each location vector
    of `grid`, as `[N, L, C]` (the extra vector first); the ops in `skip` are not run."""
    vectors = _vectors(b, view, head, _grids(b, view, head, grid, n, extra))
    if value in vectors:
        out = vectors[value]
    else:
        ops = [o for o in head.rest if o not in skip]
        batch = b.dims(vectors[head.boundary[0]], [0])
        (out,) = copy_head(b, view, head, ops, vectors, [value], batch)
    return b.reshape(out, b.concat([n, b.const(ints(-1)), b.dims(out, [1])], 0))

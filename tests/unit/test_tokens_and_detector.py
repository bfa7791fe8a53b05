"""A two-block transformer and a two-level detector head, built by hand for both views."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.unit.graphs import BACKENDS, OnnxGraph, ops, ov_model, rand, value, views
from xaigraph.graph_view import GraphView
from xaigraph.head import extract_head
from xaigraph.methods import METHODS
from xaigraph.methods.base import why_not
from xaigraph.target import detect

D = 4  # token width
PATCH, CLS = rand(D, 3, 4, 4), rand(1, 1, D, seed=1)
WQ, WK, FC = rand(D, D, seed=2), rand(D, D, seed=3), rand(5, D, seed=4)


def _ir_block(x: Any, k: int) -> Any:
    q = ops.matmul(x, ops.constant(WQ), False, False, name=f"q{k}")
    key = ops.matmul(x, ops.constant(WK), False, False, name=f"k{k}")
    logits = ops.matmul(q, key, False, True, name=f"logits{k}")
    mix = ops.matmul(ops.softmax(logits, -1, name=f"attn{k}"), x, False, False, name=f"mix{k}")
    return ops.add(x, mix, name=f"res{k}")


def _onnx_block(g: OnnxGraph, x: str, k: int) -> str:
    q = g.op("MatMul", [x, g.const(f"wq{k}", WQ)], f"q{k}")
    key = g.op("MatMul", [x, g.const(f"wk{k}", WK)], f"k{k}")
    logits = g.op("MatMul", [q, g.op("Transpose", [key], f"kt{k}", perm=[0, 2, 1])],
                  f"logits{k}")
    mix = g.op("MatMul", [g.op("Softmax", [logits], f"attn{k}", axis=-1), x], f"mix{k}")
    return g.op("Add", [x, mix], f"res{k}")


def transformer() -> dict[str, GraphView]:
    """
        image -> patch (4x4 conv, stride 4: [1, D, 2, 2]) -> flat -> tokens [1, 4, D]
        cls [1, 1, D] ----------------------------------------------> seq (concat) [1, 5, D]
        seq -> block 1 -> res1 -> block 2 -> res2 -> first (gather token 0) -> fc

        block k:  x -> q, k (x @ W) -> logits (q @ k^T) -> attn (softmax) -> mix (@ x)
                  x ---------------------------------------------------------> res (add)
    """
    x = ops.parameter([1, 3, 8, 8], np.float32, name="image")
    patch = ops.convolution(x, ops.constant(PATCH), [4, 4], [0, 0], [0, 0], [1, 1],
                            name="patch")
    flat = ops.reshape(patch, np.array([1, D, 4]), False, name="flat")
    tokens = ops.transpose(flat, np.array([0, 2, 1]), name="tokens")
    seq = ops.concat([ops.constant(CLS), tokens], 1, name="seq")
    first = ops.gather(_ir_block(_ir_block(seq, 1), 2), np.array(0), np.array(1), name="first")
    ir = ov_model([ops.matmul(first, ops.constant(FC), False, True, name="fc")], [x])
    g = OnnxGraph()
    patch_ = g.op("Conv", [g.input("image", [1, 3, 8, 8]), g.const("patch.w", PATCH)], "patch",
                  strides=[4, 4])
    flat_ = g.op("Reshape", [patch_, g.const("flat.shape", np.array([1, D, 4]))], "flat")
    tokens_ = g.op("Transpose", [flat_], "tokens", perm=[0, 2, 1])
    seq_ = g.op("Concat", [g.const("cls", CLS), tokens_], "seq", axis=1)
    res2 = _onnx_block(g, _onnx_block(g, seq_, 1), 2)
    first_ = g.op("Gather", [res2, g.const("zero", np.array(0))], "first", axis=1)
    return views(ir, g.model([g.op("Gemm", [first_, g.const("fc.w", FC)], "fc", transB=1)]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_token_target_is_the_last_block_input(backend: str) -> None:
    view = transformer()[backend]
    target = detect(view)
    assert target.kind == "tokens"
    assert (target.name, target.shape) == ("res1", (1, 5, D))
    assert target.tokens is not None
    grid = target.tokens
    assert (grid.prefix, grid.height, grid.width, grid.source) == (1, 2, 2, "patch")
    assert (grid.residual, grid.skip_port) == ("res2", 0)
    assert [(c.name, c.reason) for c in target.candidates] == [
        ("patch", "before the transformer blocks (the token map is the target)")]
    assert view.ops["attn2"].attrs["attention"] == "softmax"
    head = extract_head(view, target.value, target.scores)
    applies = [n for n, m in METHODS.items() if why_not(m, view, target, head) is None]
    assert applies == ["vitreciprocam"]


A, K = 2, 3  # anchors, classes
STEM, DOWN = rand(8, 3, 3, 3, seed=5), rand(8, 8, 3, 3, seed=6)
CLS_W, BOX_W = rand(A * K, 8, 3, 3, seed=7), rand(A * 4, 8, 3, 3, seed=8)


def _ir_join(maps: list[Any], depth: int, branch: str) -> Any:
    rows = []
    for level, m in enumerate(maps):
        h = 8 >> level
        split = ops.reshape(m, np.array([1, A, depth, h, h]), False)
        moved = ops.transpose(split, np.array([0, 3, 4, 1, 2]))
        rows.append(ops.reshape(moved, np.array([1, -1, depth]), False))
    return ops.concat(rows, 1, name=branch)


def _onnx_join(g: OnnxGraph, maps: list[str], depth: int, branch: str) -> str:
    rows = []
    for level, m in enumerate(maps):
        h = 8 >> level
        split = g.op("Reshape", [m, g.const(f"{m}.split", np.array([1, A, depth, h, h]))],
                     f"{m}.r1")
        moved = g.op("Transpose", [split], f"{m}.t", perm=[0, 3, 4, 1, 2])
        rows.append(g.op("Reshape", [moved, g.const(f"{m}.rows", np.array([1, -1, depth]))],
                         f"{m}.r2"))
    return g.op("Concat", rows, branch, axis=1)


def detector() -> dict[str, GraphView]:
    """
        image -> p3 (conv, stride 2: 8x8) -> p4 (conv, stride 2: 4x4)
        p3, p4 -> cls_p3, cls_p4 (3x3 conv, A*K) -> [N, A, K, h, w] -> [N, h, w, A, K]
               -> [N, h*w*A, K] -> logits (concat of the levels)       [N, 160, K]
        p3, p4 -> box_p3, box_p4 (3x3 conv, A*4) -> ... -> boxes        [N, 160, 4]
    """
    x = ops.parameter([1, 3, 16, 16], np.float32, name="image")

    def conv(t: Any, w: np.ndarray, name: str, stride: int = 1) -> Any:
        return ops.convolution(t, ops.constant(w), [stride] * 2, [1, 1], [1, 1], [1, 1],
                               name=name)

    p3 = conv(x, STEM, "p3", 2)
    levels = [p3, conv(p3, DOWN, "p4", 2)]
    cls = [conv(t, CLS_W, f"cls_{n}") for t, n in zip(levels, ("p3", "p4"), strict=True)]
    box = [conv(t, BOX_W, f"box_{n}") for t, n in zip(levels, ("p3", "p4"), strict=True)]
    ir = ov_model([_ir_join(cls, K, "logits"), _ir_join(box, 4, "boxes")], [x])
    g = OnnxGraph()
    p3_ = g.op("Conv", [g.input("image", [1, 3, 16, 16]), g.const("stem", STEM)], "p3",
               strides=[2, 2], pads=[1] * 4)
    p4_ = g.op("Conv", [p3_, g.const("down", DOWN)], "p4", strides=[2, 2], pads=[1] * 4)
    g.const("cls.w", CLS_W)
    g.const("box.w", BOX_W)
    cls_ = [g.op("Conv", [t, "cls.w"], f"cls_{t}", pads=[1] * 4) for t in (p3_, p4_)]
    box_ = [g.op("Conv", [t, "box.w"], f"box_{t}", pads=[1] * 4) for t in (p3_, p4_)]
    return views(ir, g.model([_onnx_join(g, cls_, K, "logits"),
                              _onnx_join(g, box_, 4, "boxes")]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_detector_class_maps(backend: str) -> None:
    view = detector()[backend]
    target = detect(view)
    assert target.kind == "detector" and target.detector is not None
    det = target.detector
    assert (det.names, det.num_classes, det.num_anchors) == (["cls_p3", "cls_p4"], K, [A, A])
    assert det.shapes == [(1, A * K, 8, 8), (1, A * K, 4, 4)]
    assert det.joined == value(view, "logits")

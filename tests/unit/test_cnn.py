"""Small CNN graphs: target detection, dominators, head extraction and the classifier agree
between the OpenVINO and the ONNX view, and are what the diagram says."""

from __future__ import annotations

from typing import Any

import numpy as np
import openvino as ov
import pytest

from tests.unit.graphs import BACKENDS, OnnxGraph, build, ops, ov_model, rand, value, views
from xaigraph.classifier import find_classifier
from xaigraph.graph_view import GraphView
from xaigraph.head import Head, extract_head
from xaigraph.methods import METHODS
from xaigraph.methods.base import why_not
from xaigraph.target import Target, channels_last, find_target

W1, W2 = rand(8, 3, 3, 3), rand(8, 8, 3, 3, seed=1)
FC, BIAS = rand(5, 8, seed=2), rand(5, seed=3)


def _ir_image(shape: Any = (-1, 3, 8, 8)) -> Any:
    return ops.parameter(ov.PartialShape(list(shape)), np.float32, name="image")


def _ir_conv(x: Any, w: np.ndarray, name: str, pad: int = 1) -> Any:
    return ops.convolution(x, ops.constant(w), [1, 1], [pad] * 2, [pad] * 2, [1, 1], name=name)


def _ir_stem(x: Any) -> Any:
    """image -> conv (3x3, 8) -> relu"""
    return ops.relu(_ir_conv(x, W1, "conv"), name="relu")


def _onnx_stem(g: OnnxGraph, image: str | None = None) -> str:
    """image -> conv (3x3, 8) -> relu"""
    image = image or g.input("image", ["N", 3, 8, 8])
    return g.op("Relu", [g.op("Conv", [image, g.const("w1", W1)], "conv", pads=[1] * 4)],
                "relu")


def _ir_pool_fc(x: Any, softmax: bool = True) -> Any:
    """pool -> flatten -> fc -> bias (-> prob) as OpenVINO converts `fc(x.mean((2, 3)))`."""
    pool = ops.reduce_mean(x, np.array([2, 3]), True, name="pool")
    flat = ops.reshape(pool, np.array([0, -1]), True, name="flatten")
    fc = ops.matmul(flat, ops.constant(FC), False, True, name="fc")
    bias = ops.add(fc, ops.constant(BIAS), name="bias")
    return ops.softmax(bias, 1, name="prob") if softmax else bias


def _onnx_pool_fc(g: OnnxGraph, x: str, softmax: bool = True) -> str:
    """pool -> flatten -> fc (a Gemm with its bias) (-> prob)."""
    pool = g.op("GlobalAveragePool", [x], "pool")
    flat = g.op("Flatten", [pool], "flatten")
    fc = g.op("Gemm", [flat, g.const("fc.w", FC), g.const("fc.b", BIAS)], "fc", transB=1)
    return g.op("Softmax", [fc], "prob", axis=1) if softmax else fc


def _analyse(view: GraphView) -> tuple[Target, Head]:
    target = find_target(view)
    return target, extract_head(view, target.value, target.scores)


def _data_ops(view: GraphView, op_ids: list[str]) -> list[str]:
    return [o for o in op_ids if not view.is_shape_computation(o)]


def _applies(view: GraphView, target: Target, head: Head) -> list[str]:
    return [n for n, m in METHODS.items() if why_not(m, view, target, head) is None]


def gap_classifier() -> dict[str, GraphView]:
    """
        image -> conv -> relu -> pool (mean over H, W) -> flatten -> fc (+ bias) -> prob
    """
    x = _ir_image()
    ir = ov_model([_ir_pool_fc(_ir_stem(x))], [x])
    g = OnnxGraph()
    relu = _onnx_stem(g)
    return views(ir, g.model([_onnx_pool_fc(g, relu)]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gap_classifier(backend: str) -> None:
    view = gap_classifier()[backend]
    target, head = _analyse(view)
    assert (target.name, target.shape, target.num_classes) == ("relu", (1, 8, 8, 8), 5)
    # the scores are the input of the softmax: the bias add, or the Gemm that holds the bias
    assert target.scores == value(view, {"ir": "bias", "onnx": "fc"}[backend])
    assert [(c.name, c.reason) for c in target.candidates] == [
        ("pool", "spatial size [1,1] has no extent to explain"),
        ("relu", None),
        ("conv", "further from the output than relu"),
    ]
    doms = [view.describe(d) for d in view.dominators(target.scores)]
    assert doms[-5:] == ["flatten", "pool", "relu", "conv", "image"]
    assert (head.pool, head.prefix, head.local, head.side_inputs) == ("pool", [], [], [])
    assert view.ops["pool"].kind == "gap"
    clf = find_classifier(view, head, 5)
    assert clf is not None
    assert (clf.op, clf.layout, clf.data) == ("fc", "kc", value(view, "flatten"))
    assert [(method, len(view.tensor(c).probe or ())) for method, c, per_class in clf.steps
            if per_class] == [("add", 1)]
    assert _applies(view, target, head) == ["reciprocam", "activationmap", "cam", "eigencam"]
    assert METHODS["reciprocam"].pick_form(view, target, head) == "fast"


def squeeze_like() -> dict[str, GraphView]:
    """A 1x1 convolution makes the class maps, then they are pooled (SqueezeNet):

        image -> conv -> relu -> cls (1x1 conv, 5) -> relu2 -> pool -> flatten
    """
    wc = rand(5, 8, 1, 1, seed=4)
    x = _ir_image()
    relu2 = ops.relu(_ir_conv(_ir_stem(x), wc, "cls", 0), name="relu2")
    pool = ops.reduce_mean(relu2, np.array([2, 3]), True, name="pool")
    ir = ov_model([ops.reshape(pool, np.array([0, -1]), True, name="flatten")], [x])
    g = OnnxGraph()
    relu = _onnx_stem(g)
    relu2_ = g.op("Relu", [g.op("Conv", [relu, g.const("wc", wc)], "cls")], "relu2")
    flat = g.op("Flatten", [g.op("GlobalAveragePool", [relu2_], "pool")], "flatten")
    return views(ir, g.model([flat]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_pointwise_prefix_before_the_pooling(backend: str) -> None:
    view = squeeze_like()[backend]
    target, head = _analyse(view)
    assert target.name == "relu"
    assert target.scores == target.output == value(view, "flatten")
    reasons = {c.name: c.reason for c in target.candidates}
    assert reasons["relu2"] == ("no learned layer between it and the scores: it is already a "
                                "class-score map")
    assert (head.prefix, head.pool, _data_ops(view, head.rest)) == (
        ["cls", "relu2"], "pool", ["flatten"])
    assert find_classifier(view, head, 5) is None


def mobilenet_like() -> dict[str, GraphView]:
    """A 1x1 convolution on the pooled vector (MobileNetV3's conv_head):

        image -> conv -> relu -> pool (keeps [N, C, 1, 1]) -> head_conv (1x1) -> act
              -> flatten -> fc (+ bias)
    """
    wh = rand(6, 8, 1, 1, seed=5)
    fc = rand(5, 6, seed=6)
    x = _ir_image()
    pool = ops.reduce_mean(_ir_stem(x), np.array([2, 3]), True, name="pool")
    act = ops.hswish(_ir_conv(pool, wh, "head_conv", 0), name="act")
    flat = ops.reshape(act, np.array([0, -1]), True, name="flatten")
    ir = ov_model([ops.matmul(flat, ops.constant(fc), False, True, name="fc")], [x])
    g = OnnxGraph()
    relu = _onnx_stem(g)
    act_ = g.op("HardSwish", [g.op("Conv", [g.op("GlobalAveragePool", [relu], "pool"),
                                            g.const("wh", wh)], "head_conv")], "act")
    out = g.op("Gemm", [g.op("Flatten", [act_], "flatten"), g.const("fc.w", fc)], "fc",
               transB=1)
    return views(ir, g.model([out]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_local_ops_after_the_pooling(backend: str) -> None:
    view = mobilenet_like()[backend]
    target, head = _analyse(view)
    assert target.name == "relu"
    assert (head.pool, head.local, _data_ops(view, head.rest)) == (
        "pool", ["head_conv", "act"], ["flatten", "fc"])
    assert head.boundary == [value(view, "act")]
    clf = find_classifier(view, head, 5)
    assert clf is not None and (clf.op, clf.steps) == ("fc", [])


def residual() -> dict[str, GraphView]:
    """
        image -> conv1 -> relu1 -+-> conv2 -> add -> pool -> flatten -> fc (+ bias)
                                 +-----------^
    """
    x = _ir_image()
    relu1 = ops.relu(_ir_conv(x, W1, "conv1"), name="relu1")
    add = ops.add(relu1, _ir_conv(relu1, W2, "conv2"), name="add")
    ir = ov_model([_ir_pool_fc(add, softmax=False)], [x])
    g = OnnxGraph()
    relu1_ = g.op("Relu", [g.op("Conv", [g.input("image", ["N", 3, 8, 8]), g.const("w1", W1)],
                                "conv1", pads=[1] * 4)], "relu1")
    conv2 = g.op("Conv", [relu1_, g.const("w2", W2)], "conv2", pads=[1] * 4)
    return views(ir, g.model([_onnx_pool_fc(g, g.op("Add", [relu1_, conv2], "add"),
                                            softmax=False)]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dominators_skip_the_branch(backend: str) -> None:
    view = residual()[backend]
    target, _ = _analyse(view)
    doms = [view.describe(d) for d in view.dominators(target.scores)]
    assert doms[-6:] == ["flatten", "pool", "add", "relu1", "conv1", "image"]
    assert "conv2" not in doms
    assert target.name == "add"
    assert view.ops["add"].attrs["pointwise"] == "binary"


def batch_from_image() -> dict[str, GraphView]:
    """The flatten reads the image's batch size (`x.view(image.size(0), -1)`):

        image -> conv -> relu -> pool -> reshape -> fc
        image -> shape -> batch (gather [0]) -> dims (concat with [-1]) -^
    """
    x = _ir_image()
    pool = ops.reduce_mean(_ir_stem(x), np.array([2, 3]), True, name="pool")
    batch = ops.gather(ops.shape_of(x, name="shape"), np.array([0]), np.array(0), name="batch")
    dims = ops.concat([batch, ops.constant(np.array([-1]))], 0, name="dims")
    flat = ops.reshape(pool, dims, False, name="reshape")
    ir = ov_model([ops.matmul(flat, ops.constant(FC), False, True, name="fc")], [x])
    g = OnnxGraph()
    image = g.input("image", ["N", 3, 8, 8])
    relu = _onnx_stem(g, image)
    batch_ = g.op("Gather", [g.op("Shape", [image], "shape"), g.const("i0", np.array([0]))],
                  "batch", axis=0)
    dims_ = g.op("Concat", [batch_, g.const("minus1", np.array([-1]))], "dims", axis=0)
    flat_ = g.op("Reshape", [g.op("GlobalAveragePool", [relu], "pool"), dims_], "reshape")
    out = g.op("Gemm", [flat_, g.const("fc.w", FC)], "fc", transB=1)
    return views(ir, g.model([out]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_shape_input_from_outside_the_head(backend: str) -> None:
    view = batch_from_image()[backend]
    target, head = _analyse(view)
    assert target.name == "relu"
    assert head.side_inputs == []
    assert head.shape_inputs == [value(view, "dims")]
    assert head.shape_sources == ["shape"]
    assert head.pool == "pool"
    assert view.ops["shape"].kind == "shapeof"
    assert not view.reads_input_data("dims") and view.reads_input_data("relu")


def channels_last_graph() -> dict[str, GraphView]:
    """The map goes [N, H, W, C] before a norm over its last axis and a mean over H, W:

        image -> conv (4x4, stride 4) -> nhwc (transpose) -> norm (last axis)
              -> pool (mean over axes 1, 2) -> fc
    """
    w = rand(6, 3, 4, 4, seed=7)
    fc = rand(5, 6, seed=8)
    x = _ir_image((1, 3, 8, 8))
    conv = ops.convolution(x, ops.constant(w), [4, 4], [0, 0], [0, 0], [1, 1], name="conv")
    nhwc = ops.transpose(conv, np.array([0, 2, 3, 1]), name="nhwc")
    norm = ops.mvn(nhwc, ops.constant(np.array([-1])), True, 1e-5, "inside_sqrt", name="norm")
    pool = ops.reduce_mean(norm, np.array([1, 2]), False, name="pool")
    ir = ov_model([ops.matmul(pool, ops.constant(fc), False, True, name="fc")], [x])
    g = OnnxGraph()
    conv_ = g.op("Conv", [g.input("image", [1, 3, 8, 8]), g.const("w", w)], "conv",
                 strides=[4, 4])
    norm_ = g.op("LayerNormalization", [g.op("Transpose", [conv_], "nhwc", perm=[0, 2, 3, 1]),
                                        g.const("s", np.ones(6, np.float32))], "norm", axis=-1)
    pool_ = g.op("ReduceMean", [norm_], "pool", axes=[1, 2], keepdims=0)
    out = g.op("Gemm", [pool_, g.const("fc.w", fc)], "fc", transB=1)
    return views(ir, g.model([out]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_channels_last_map(backend: str) -> None:
    view = channels_last_graph()[backend]
    target = find_target(view)
    assert target.value == value(view, "norm")
    assert target.channels_last is not None
    scores = value(view, "fc")
    head = set(view.ops_between(value(view, "norm"), scores))
    assert channels_last(view, value(view, "norm"), head) == (
        f"the head averages it over its positions ({view.ops['pool'].type})")
    conv = value(view, "conv")
    assert channels_last(view, conv, set(view.ops_between(conv, scores))) is None


def _conv_input(ir_shape: Any, onnx_shape: Any, group: int = 1) -> dict[str, GraphView]:
    """image -> relu -> scale (x 2) -> conv: the probe guesses the image's channels."""
    w = rand(8, 6 // group, 1, 1)
    x = ops.parameter(ir_shape, np.float32, name="image")
    scaled = ops.multiply(ops.relu(x, name="relu"), ops.constant(np.float32(2)), name="scale")
    if group == 1:
        conv = ops.convolution(scaled, ops.constant(w), [1, 1], [0, 0], [0, 0], [1, 1])
    else:
        conv = ops.group_convolution(scaled, ops.constant(w.reshape(group, 8 // group,
                                                                    6 // group, 1, 1)),
                                     [1, 1], [0, 0], [0, 0], [1, 1])
    g = OnnxGraph()
    relu = g.op("Relu", [g.input("image", onnx_shape)], "relu")
    scaled_ = g.op("Mul", [relu, g.const("two", np.float32(2))], "scale")
    out = g.op("Conv", [scaled_, g.const("w", w)], "conv", group=group)
    return views(ov_model([conv], [x]), g.model([out]))


@pytest.mark.parametrize(("ir_shape", "onnx_shape", "group"), [
    (ov.PartialShape([-1, -1, -1, -1]), ["N", "C", "H", "W"], 1),
    (ov.PartialShape.dynamic(), None, 1),
    (ov.PartialShape([-1, -1, 10, 12]), ["N", "C", 10, 12], 2),
], ids=["dynamic-dims", "dynamic-rank", "grouped"])
def test_probe_shapes_guess_channels(ir_shape: ov.PartialShape, onnx_shape: Any,
                                     group: int) -> None:
    built = _conv_input(ir_shape, onnx_shape, group)
    spatial = (10, 12) if group == 2 else (32, 32)
    for view in built.values():
        assert view.probe_inputs == [(1, 6, *spatial)]
        assert view.tensor(value(view, "scale")).probe == (1, 6, *spatial)


def test_probe_shapes_respect_bounds() -> None:
    x = ops.parameter(ov.PartialShape([ov.Dimension(2, 8), 3, ov.Dimension(1, 16), -1]),
                      np.float32, name="image")
    view = build(ov_model([ops.relu(x)], [x]))
    assert view.probe_inputs == [(2, 3, 16, 32)]


def test_both_views_agree_on_every_shared_op() -> None:
    """Ops named alike in both graphs get the same neutral facts and probe shapes, except
    where the diagram's ops differ by design (the pooling, the fc with or without bias)."""
    for built in (gap_classifier(), squeeze_like(), mobilenet_like(), residual(),
                  batch_from_image()):
        ir, onnx_view = built["ir"], built["onnx"]
        shared = [o for o in ir.order if o in onnx_view.ops
                  and ir.ops[o].kind not in ("const", "output")
                  and o not in ("pool", "flatten", "fc")]
        assert shared
        for o in shared:
            a, b = ir.ops[o], onnx_view.ops[o]
            facts_a = (a.neutral, a.kind, {k: v for k, v in a.attrs.items() if k != "value"})
            facts_b = (b.neutral, b.kind, {k: v for k, v in b.attrs.items() if k != "value"})
            assert facts_a == facts_b, o
            if not ir.is_shape_computation(o):  # OpenVINO folds shapes away at the probe
                assert [t.probe for t in a.outputs] == [t.probe for t in b.outputs], o


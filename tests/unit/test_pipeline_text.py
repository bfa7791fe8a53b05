"""Pipeline text builds the pipeline: `parse(p.text()) == p` for every method and every pass
option, bad text fails with a `BadInputError` naming the problem, and the channels-first pass
is chosen by analysis (detect-target asks for it; it never modifies the model itself)."""

from __future__ import annotations

from typing import Any

import numpy as np
import openvino as ov
import pytest
from xaigraph.passes import (
    PASSES,
    ChannelsFirstPass,
    DetectTargetPass,
    InsertSaliencyPass,
    analysis_pipeline,
    build_pipeline,
    parse,
)

from xaigraph.backends import get_backend
from xaigraph.errors import BadInputError, XaiGraphError
from xaigraph.methods import METHODS
from xaigraph.pipeline import PassContext, PassManager

OPTIONS: list[dict[str, Any]] = [
    {},
    {"target_layer": "/stem/Conv_output_0"},
    {"target_layer": "/head/cls0/Conv_output_0,/head/cls1/Conv_output_0"},  # detector levels
    {"num_anchors": 3},
    {"targets": "topk:3"},
    {"targets": "4,0,2"},
    {"targets": "tiger cat,tabby"},
    {"class_output": "logits"},
    {"scaling": False},
    {"validate": False},
    {"feature_vector": True},
    {"feature_vector": True, "targets": "topk:2"},
    {"sanity": "warn"},
    {"sanity": "strict"},
    {"sanity": "off"},
    {"target_layer": "x", "num_anchors": 9, "targets": "7", "scaling": False,
     "validate": False},
]


def _variants() -> list[tuple[str, dict[str, Any]]]:
    """Every method with every option set, and every form of each method."""
    out = [(name, opts) for name in METHODS for opts in OPTIONS]
    out += [(name, {"form": form}) for name, m in METHODS.items() for form in m.form_names]
    return out


@pytest.mark.parametrize(("method", "options"), _variants())
def test_text_parses_back_to_the_same_pipeline(method: str, options: dict[str, Any]) -> None:
    p = build_pipeline(method, **options)
    again = parse(p.text())
    assert again == p
    assert again.text() == p.text()


def test_every_pass_and_option_is_covered() -> None:
    seen = {(q.name, key) for name, opts in _variants()
            for q in build_pipeline(name, **opts).passes for key in q.options()}
    seen |= {(q.name, "") for name, opts in _variants() for q in build_pipeline(name, **opts)
             .passes}
    every = {(cls.name, key) for cls in PASSES.values() for key in cls.option_names}
    assert every <= seen
    assert {name for name, _ in seen} | {"channels-first"} == set(PASSES)
    assert parse("detect-target,channels-first").passes == [DetectTargetPass(),
                                                            ChannelsFirstPass()]


def test_ordinary_text_is_unchanged_and_defaults_are_not_printed() -> None:
    assert build_pipeline("reciprocam").text() == \
        "detect-target,insert-saliency{method=reciprocam},sanity,embed-scaling,stamp,validate"
    assert build_pipeline("reciprocam", sanity="off").text() == \
        "detect-target,insert-saliency{method=reciprocam},embed-scaling,stamp,validate"
    assert "sanity{level=strict}" in build_pipeline("reciprocam", sanity="strict").text()
    assert build_pipeline("reciprocam", targets="4,0,2").text().startswith(
        "detect-target,select-classes{targets=4 0 2},insert-saliency{method=reciprocam}")
    forced = build_pipeline("reciprocam", form="fast")
    assert "insert-saliency{method=reciprocam,form=fast}" in forced.text()
    assert forced != build_pipeline("reciprocam")  # form is an option that counts
    assert parse("insert-saliency{form=mosaic,method=reciprocam}").passes == [
        InsertSaliencyPass("reciprocam", "mosaic")]  # option order does not matter
    detector = parse("detect-target{layer=a b,anchors=3}").passes[0]
    assert isinstance(detector, DetectTargetPass)
    assert (detector.target_layer, detector.num_anchors) == ("a,b", 3)


@pytest.mark.parametrize(("text", "problem"), [
    ("", "no passes"),
    ("  ", "no passes"),
    ("detect-target,,stamp", "empty item"),
    ("detect-target,", "empty item"),
    ("nope", "unknown pass 'nope'"),
    ("Detect-Target", "'Detect-Target' is not a pass"),
    ("insert-saliency", "insert-saliency needs a method"),
    ("insert-saliency{method=nope}", "unknown method 'nope'"),
    ("insert-saliency{method=cam,form=fast}", "cam has no form 'fast'"),
    ("insert-saliency{method=reciprocam,form=plain}", "reciprocam has no form 'plain'"),
    ("insert-saliency{method=reciprocam,method=cam}", "option 'method' given twice"),
    ("insert-saliency{method=reciprocam", "'{' without '}'"),
    ("stamp}", "'}' without '{'"),
    ("detect-target{layer={x}}", "nested '{'"),
    ("detect-target{anchors=x}", "anchors=x is not a positive integer"),
    ("detect-target{anchors=0}", "anchors=0 is not a positive integer"),
    ("detect-target{foo=1}",
     "detect-target has no option 'foo' (its options: layer, anchors, output)"),
    ("detect-target{layer}", "option 'layer' is not key=value"),
    ("detect-target{}", "option '' is not key=value"),
    ("stamp{x=1}", "stamp has no option 'x' (its options: none)"),
    ("select-classes", "select-classes needs targets"),
    ("select-classes{targets=topk:0}", "give topk:K"),
])
def test_bad_text_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse(text)
    assert str(info.value).startswith(f"pipeline '{text}': ")
    assert problem in str(info.value)


def _model(channels_last: bool) -> ov.Model:
    """Parameter [1,3,8,8] -> Conv 1x1 (4 channels) -> [Transpose (0,2,3,1)] -> ReduceMean
    over the spatial axes -> MatMul [4, 5] -> Softmax: a CNN whose last spatial map is
    channels-last ([1,8,8,4]) when `channels_last`, else channels-first."""
    rng = np.random.default_rng(0)
    ops = ov.opset13
    x = ops.parameter([1, 3, 8, 8], np.float32, name="image")
    f = ops.convolution(x, ops.constant(rng.normal(size=(4, 3, 1, 1)).astype(np.float32)),
                        [1, 1], [0, 0], [0, 0], [1, 1])
    axes = [2, 3]
    if channels_last:
        f = ops.transpose(f, ops.constant(np.array([0, 2, 3, 1], dtype=np.int64)))
        axes = [1, 2]
    pooled = ops.reduce_mean(f, ops.constant(np.array(axes, dtype=np.int64)), keep_dims=False)
    logits = ops.matmul(pooled, ops.constant(rng.normal(size=(4, 5)).astype(np.float32)),
                        False, False)
    return ov.Model([ops.softmax(logits, 1)], [x], "tiny")


def _analyse(model: ov.Model, manager: PassManager) -> tuple[PassContext, ov.Model]:
    backend = get_backend("ir")
    ctx = PassContext(backend=backend, original=model)
    return ctx, manager.run(backend.clone(model), ctx)


def test_detect_target_only_says_the_map_is_channels_last() -> None:
    backend = get_backend("ir")
    model = _model(channels_last=True)
    before = backend.fingerprint(model)
    ctx = PassContext(backend=backend, original=model)
    result = DetectTargetPass().run(model, ctx)
    assert not result.modified and backend.fingerprint(model) == before
    assert result.then == [ChannelsFirstPass()]
    assert ctx.target is not None and ctx.head is None
    assert ctx.target.channels_last is not None
    assert "[1,8,8,4] is channels-last (NHWC" in ctx.target.channels_last


def test_channels_first_is_chosen_by_analysis() -> None:
    ctx, clone = _analyse(_model(channels_last=True), analysis_pipeline())
    assert ctx.pipeline_text() == "detect-target,channels-first"
    assert ctx.target is not None and ctx.head is not None
    assert ctx.target.shape == (1, 4, 8, 8) and ctx.target.channels_last is None
    assert ctx.channels_last is not None and "channels-last (NHWC" in ctx.channels_last
    assert ctx.view(clone).ops[ctx.target.value.op].type == "Transpose"
    # named in the text already: it runs once, not twice
    ctx, _ = _analyse(_model(channels_last=True), parse("detect-target,channels-first"))
    assert ctx.pipeline_text() == "detect-target,channels-first"


def test_a_channels_first_map_needs_no_follow_up() -> None:
    ctx, _ = _analyse(_model(channels_last=False), analysis_pipeline())
    assert ctx.pipeline_text() == "detect-target"
    assert ctx.target is not None and ctx.target.shape == (1, 4, 8, 8)
    assert ctx.channels_last is None
    with pytest.raises(XaiGraphError, match="needs a channels-last target"):
        _analyse(_model(channels_last=False), parse("detect-target,channels-first"))


def test_the_stamp_holds_the_text_that_ran() -> None:
    backend = get_backend("ir")
    manager = build_pipeline("activationmap", validate=False)
    ctx, out = _analyse(_model(channels_last=True), manager)
    stamp = backend.read_stamp(out)
    assert stamp is not None
    assert stamp["pipeline"] == ctx.pipeline_text() == \
        ("detect-target,channels-first,insert-saliency{method=activationmap},sanity,"
         "embed-scaling,stamp")
    assert parse(stamp["pipeline"]) == PassManager(
        [manager.passes[0], ChannelsFirstPass(), *manager.passes[1:]])
    assert stamp["method"] == "activationmap" and stamp["scaling"] == "minmax-u8"

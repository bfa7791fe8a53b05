"""RISE against a numpy reference that runs one mask at a time; masks; the entry point and
its options; a tiny ONNX classifier through `Session`."""

from __future__ import annotations

import click
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from xaigraph.errors import BadInputError
from xaigraph.explain import masks
from xaigraph.explain.blackbox import PRESETS, BlackBoxOptions, class_predict, explain_one
from xaigraph.explain.cli_options import blackbox_options
from xaigraph.explain.rise import auto_batch_size, rise
from xaigraph.session import Session

RNG = np.random.default_rng(0)
WEIGHTS = RNG.normal(size=(3 * 12 * 10, 5)).astype(np.float32)


def linear_softmax(batch: np.ndarray) -> np.ndarray:
    """A numpy 'model': a fixed linear layer and a softmax, batch in, [B, 5] out."""
    z = batch.reshape(len(batch), -1).astype(np.float64) @ WEIGHTS
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def reference_rise(x, predict, targets, n, cells, prob, seed, baseline):
    """The paper's sum, one mask at a time (the masks from `masks.grid_mask`)."""
    h, w = x.shape[2:]
    out = np.zeros((len(targets), h, w))
    for i in range(n):
        m = masks.grid_mask(seed, i, cells, prob, (h, w)).astype(np.float64)
        masked = baseline + m[None, None] * (x.astype(np.float64) - baseline)
        scores = predict(masked.astype(np.float32))[0]
        for j, t in enumerate(targets):
            out[j] += scores[t] * m
    return out / (n * prob)


def close(a: np.ndarray, b: np.ndarray, rel: float = 1e-5) -> None:
    span = float(b.max() - b.min())
    assert span > 0
    assert np.abs(a - b).max() <= rel * span, np.abs(a - b).max() / span


# --- masks ---------------------------------------------------------------------------------

def test_interpolation_rows_are_bilinear_weights() -> None:
    m = masks.interpolation_matrix(3, 12)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-6)
    # pixel 6 (centre 6.5) maps to grid coordinate 6.5 * 3 / 12 - 0.5 = 1.125
    np.testing.assert_allclose(m[6], [0.0, 0.875, 0.125], atol=1e-6)
    assert m[0, 0] == 1.0 and m[-1, -1] == 1.0  # clamped at the ends


def test_one_mask_is_its_grid_upsampled_and_shifted() -> None:
    """Brute force: bilinear interpolation of the grid at each pixel of the shifted crop."""
    seed, index, cells, prob, size = 5, 17, 4, 0.5, (10, 13)
    grid, dy, dx = masks.mask_randomness(seed, index, cells, prob, size)
    ch, cw = -(-size[0] // cells), -(-size[1] // cells)
    big_h, big_w = (cells + 1) * ch, (cells + 1) * cw
    expected = np.zeros(size)
    for y in range(size[0]):
        for x in range(size[1]):
            u = min(max((y + dy + 0.5) * cells / big_h - 0.5, 0), cells - 1)
            v = min(max((x + dx + 0.5) * cells / big_w - 0.5, 0), cells - 1)
            u0, v0 = int(np.floor(u)), int(np.floor(v))
            u1, v1 = min(u0 + 1, cells - 1), min(v0 + 1, cells - 1)
            fu, fv = u - u0, v - v0
            expected[y, x] = ((1 - fu) * (1 - fv) * grid[u0, v0] + (1 - fu) * fv * grid[u0, v1]
                              + fu * (1 - fv) * grid[u1, v0] + fu * fv * grid[u1, v1])
    np.testing.assert_allclose(masks.grid_mask(seed, index, cells, prob, size), expected,
                               atol=1e-6)
    assert 0 <= dy < ch and 0 <= dx < cw


def test_batched_masks_equal_single_masks_and_keep_probability() -> None:
    batch = masks.grid_masks(3, 40, 9, 5, 0.3, (20, 24))
    for j in range(9):
        np.testing.assert_allclose(batch[j], masks.grid_mask(3, 40 + j, 5, 0.3, (20, 24)),
                                   atol=1e-6)
    many = masks.grid_masks(1, 0, 2000, 5, 0.3, (20, 24))
    assert abs(many.mean() - 0.3) < 0.02  # a pixel is kept with probability p on average
    assert not np.allclose(masks.grid_mask(1, 0, 5, 0.3, (20, 24)),
                           masks.grid_mask(2, 0, 5, 0.3, (20, 24)))


# --- RISE exactness ------------------------------------------------------------------------

@pytest.mark.parametrize("baseline", [0.0, -0.5])
def test_rise_equals_one_mask_at_a_time_reference(baseline: float) -> None:
    x = RNG.normal(size=(1, 3, 12, 10)).astype(np.float32)
    got = rise(x, linear_softmax, targets=[1, 3], num_masks=150, cells=3, prob=0.4, seed=11,
               batch_size=16, baseline=baseline)
    ref = reference_rise(x, linear_softmax, [1, 3], 150, 3, 0.4, 11, baseline)
    assert got.shape == (2, 12, 10) and got.dtype == np.float32
    for j in range(2):
        close(got[j], ref[j])


def test_same_seed_same_maps_for_any_batch_size() -> None:
    x = RNG.normal(size=(1, 3, 12, 10)).astype(np.float32)
    maps = [rise(x, linear_softmax, targets=[0], num_masks=130, cells=4, prob=0.5, seed=7,
                 batch_size=b) for b in (1, 7, 64)]
    close(maps[1][0], maps[0][0], 1e-6)
    close(maps[2][0], maps[0][0], 1e-6)
    other = rise(x, linear_softmax, targets=[0], num_masks=130, cells=4, prob=0.5, seed=8,
                 batch_size=7)
    assert np.abs(other - maps[0]).max() > 1e-3  # another seed, other masks


def test_masks_are_made_batch_by_batch() -> None:
    big = np.zeros((1, 3, 1024, 1024), np.float32)
    assert auto_batch_size(big) <= 4
    seen: list[int] = []

    def spy(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return np.ones((len(batch), 2))

    small = np.zeros((1, 3, 64, 64), np.float32)
    rise(small, spy, targets=[0], num_masks=50, cells=4, prob=0.5, seed=0, batch_size=16)
    assert seen == [16, 16, 16, 2]


# --- sanity: the peak on the object the model looks at -------------------------------------

def bright_object_model() -> onnx.ModelProto:
    """Conv (3x3 mean of the channels) > ReLU(x - 0.5) > GlobalAveragePool > [150 s, 0.2] >
    Softmax.

    The score depends only on pixels brighter than 0.5: the object (the background is 0.3)."""
    kernel = np.full((1, 3, 3, 3), 1 / 27, np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Sub", ["c", "half"], ["d"]),
        helper.make_node("Relu", ["d"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Mul", ["f", "gain"], ["s"]),
        helper.make_node("Mul", ["f", "zero"], ["f0"]),
        helper.make_node("Add", ["f0", "rest"], ["other"]),
        helper.make_node("Concat", ["s", "other"], ["z"], axis=1),
        helper.make_node("Softmax", ["z"], ["p"], axis=1),
    ]
    inits = [numpy_helper.from_array(kernel, "k"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"),
             numpy_helper.from_array(np.array(150.0, np.float32), "gain"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array(0.2, np.float32), "rest")]
    graph = helper.make_graph(
        nodes, "bright", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 48, 48])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def object_image(top: int, left: int, side: int = 10) -> np.ndarray:
    x = np.full((1, 3, 48, 48), 0.3, np.float32)
    x[0, :, top:top + side, left:left + side] = 1.0
    return x


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_tiny_onnx_model_through_session_equals_reference(engine: str) -> None:
    session = Session.open(bright_object_model(), engine)
    predict = class_predict(session, batch_size=8)
    x = object_image(5, 30)
    got = rise(x, predict, targets=[0], num_masks=60, cells=4, prob=0.5, seed=3, batch_size=20)

    def one(batch: np.ndarray) -> np.ndarray:  # the model's own output, one input at a time
        return session.run([batch])[0]

    ref = reference_rise(x, one, [0], 60, 4, 0.5, 3, 0.0)
    close(got[0], ref[0])


@pytest.mark.parametrize(("top", "left"), [(4, 6), (30, 33), (20, 8)])
def test_rise_peak_lies_on_the_object(top: int, left: int) -> None:
    predict = class_predict(Session.open(bright_object_model()))
    x = object_image(top, left)
    result = explain_one(x, predict, "rise", BlackBoxOptions(num_masks=400, cells=6), [0])
    peak = np.unravel_index(int(np.argmax(result.maps[0])), result.maps[0].shape)
    assert top <= peak[0] < top + 10 and left <= peak[1] < left + 10, peak


# --- the entry point, options, adapters ----------------------------------------------------

def test_explain_one_default_target_is_top1_and_presets_fill_numbers() -> None:
    x = RNG.normal(size=(1, 3, 12, 10)).astype(np.float32)
    top1 = int(np.argmax(linear_softmax(x)[0]))
    options = BlackBoxOptions(preset="speed", num_masks=40)
    result = explain_one(x, linear_softmax, "rise", options, None)
    assert result.classes.tolist() == [top1] and result.boxes is None
    p = PRESETS["speed"]
    ref = rise(x, linear_softmax, targets=[top1], num_masks=40, cells=p.cells, prob=p.prob,
               seed=0)
    np.testing.assert_array_equal(result.maps, ref)
    assert options.settings("rise") == {"preset": "speed", "seed": 0, "num_masks": 40,
                                        "cells": p.cells, "prob": p.prob}
    assert options.settings("aise")["evaluations_per_width"] == p.evals


def test_class_predict_pads_a_static_batch_and_applies_softmax() -> None:
    model = bright_object_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 3  # static batch 3
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 3
    # drop the Softmax: the model now gives logits
    model.graph.node[-1].op_type = "Identity"
    del model.graph.node[-1].attribute[:]
    session = Session.open(model)
    batch = np.concatenate([object_image(i, 2 * i) for i in range(7)])
    got = class_predict(session)(batch)
    logits = np.concatenate([session.run([np.concatenate([b] * 3)])[0][:1] for b in batch[:, None]])
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"num_masks": 0}, "--num-masks"), ({"cells": 0}, "--mask-cells"),
    ({"prob": 0.0}, "--mask-prob"), ({"prob": 1.5}, "--mask-prob"), ({"seed": -1}, "--seed"),
    ({"preset": "fast"}, "--preset"), ({"detector_output": "ssd"}, "readers: modelapi"),
])
def test_bad_options_are_one_line(kwargs: dict, text: str) -> None:
    with pytest.raises(BadInputError, match=text) as info:
        BlackBoxOptions(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_inputs_are_one_line() -> None:
    x = np.zeros((1, 3, 12, 10), np.float32)
    cases = [
        lambda: rise(x, linear_softmax, targets=[9], num_masks=4, cells=3, prob=0.5, seed=0),
        lambda: rise(x, linear_softmax, targets=[0], num_masks=4, cells=11, prob=0.5, seed=0),
        lambda: rise(x[0], linear_softmax, targets=[0], num_masks=4, cells=3, prob=0.5, seed=0),
        lambda: explain_one(x, linear_softmax, "gradcam", BlackBoxOptions(), [0]),
    ]
    for case in cases:
        with pytest.raises(BadInputError) as info:
            case()
        assert "\n" not in str(info.value)


def test_blackbox_options_decorator() -> None:
    @click.command()
    @blackbox_options
    def cmd(**kwargs: object) -> None:
        options = BlackBoxOptions.from_cli(kwargs)
        click.echo(f"{options.num_masks} {options.cells} {options.prob} {options.seed} "
                   f"{options.preset} {options.detector_output} {kwargs}")

    ok = CliRunner().invoke(cmd, ["--num-masks", "300", "--mask-cells", "5", "--mask-prob",
                                  "0.25", "--seed", "9", "--preset", "quality",
                                  "--detector-output", "yolo"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip() == "300 5 0.25 9 quality yolo {}"
    default = CliRunner().invoke(cmd, [])
    assert default.output.strip() == "None None None 0 balance None {}"
    bad = CliRunner().invoke(cmd, ["--mask-prob", "2"])
    assert bad.exit_code == 2 and "--mask-prob" in bad.output

"""insert's sanity checks on tiny models (issue 22, "Trust"): the cascade and the seeded
re-initialisation (`xaigraph.randomise`) on ONNX and IR, the recorded figures against a numpy
re-implementation one image at a time, and the models whose answer is known: a map from a
constant branch and a constant-weight model are refused, the levels do what they say.

    cnn       image [N,3,16,16] -> Conv 3->8 (3x3, pad 1) -> Relu
              -> Conv 8->12 (3x3, stride 2, pad 1) -> Relu                T [N,12,8,8]
              -> ReduceMean(H, W) -> Gemm 12->5 -> scores [N,5]
    branch    image -> Conv 3->8 -> Relu -> Mul(0) -> Add(pattern)        T [N,8,16,16]
              -> ReduceMean(H, W) -> Gemm 8->5 -> scores     (T is the pattern, whatever x)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import xaigraph
from tests.explain.run_models import classifier
from xaigraph import randomise, sanity
from xaigraph.backends import get_backend
from xaigraph.errors import SanityError
from xaigraph.model_io import ov_from_onnx
from xaigraph.target import find_target

CLASSES = 5


def _model(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray | None, b2: np.ndarray | None,
           fc: np.ndarray, fc_b: np.ndarray, pattern: np.ndarray | None = None
           ) -> onnx.ModelProto:
    """`cnn` (with `w2`) or `branch` (with `pattern`) of the module's docstring."""
    inits = {"w1": w1, "b1": b1, "fc": fc, "fc_b": fc_b}
    nodes = [helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="conv1",
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1")]
    if w2 is not None and b2 is not None:
        inits |= {"w2": w2, "b2": b2}
        nodes += [helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2",
                                   pads=[1, 1, 1, 1], strides=[2, 2]),
                  helper.make_node("Relu", ["c2"], ["t"], name="relu2")]
    else:
        assert pattern is not None
        inits |= {"zero": np.zeros((), np.float32), "pattern": pattern}
        nodes += [helper.make_node("Mul", ["r1", "zero"], ["z"], name="times_zero"),
                  helper.make_node("Add", ["z", "pattern"], ["t"], name="plus_pattern")]
    nodes += [helper.make_node("ReduceMean", ["t"], ["g"], name="gap", axes=[2, 3],
                               keepdims=0),
              helper.make_node("Gemm", ["g", "fc", "fc_b"], ["scores"], name="fc", transB=1)]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", CLASSES])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"w1": rng.normal(0, 0.3, (8, 3, 3, 3)), "b1": rng.normal(0, 0.1, 8),
            "w2": rng.normal(0, 0.15, (12, 8, 3, 3)), "b2": rng.normal(0, 0.1, 12),
            "fc": rng.normal(0, 0.4, (CLASSES, 12)), "fc_b": rng.normal(0, 0.1, CLASSES)}


def cnn(seed: int = 0) -> onnx.ModelProto:
    return _model(**_weights(seed))


def constant_weights() -> onnx.ModelProto:
    """Every weight one value (each class scores alike), as the `onnx` package's light
    models."""
    return _model(np.full((8, 3, 3, 3), 0.1), np.zeros(8), np.full((12, 8, 3, 3), 0.05),
                  np.zeros(12), np.full((CLASSES, 12), 0.2), np.zeros(CLASSES))


def constant_branch() -> onnx.ModelProto:
    rng = np.random.default_rng(7)
    return _model(rng.normal(0, 0.3, (8, 3, 3, 3)), np.zeros(8), None, None,
                  rng.normal(0, 0.4, (CLASSES, 8)), np.zeros(CLASSES),
                  pattern=rng.random((1, 8, 16, 16)))


def native(model: onnx.ModelProto, backend: str) -> object:
    return model if backend == "onnx" else ov_from_onnx(model)


# -- numpy, one image at a time -----------------------------------------------------------
def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    """`x` [C, H, W] convolved by `w` [O, C, 3, 3] with padding 1."""
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    size = (x.shape[1] - 1) // stride + 1
    out = np.zeros((w.shape[0], size, size))
    for i in range(3):
        for j in range(3):
            patch = xp[:, i:i + stride * size:stride, j:j + stride * size:stride]
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], patch)
    return out + b[:, None, None]


def features(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    r1 = np.maximum(conv(x, w["w1"], w["b1"], 1), 0)
    return np.maximum(conv(r1, w["w2"], w["b2"], 2), 0)  # [12, 8, 8]


def reciprocam(t: np.ndarray, fc: np.ndarray, fc_b: np.ndarray) -> np.ndarray:
    """S[k, i, j]: the head on the mosaic that keeps location (i, j) only (its GAP is
    F[:, i, j] / (H W))."""
    _, h, w = t.shape
    maps = np.zeros((fc.shape[0], h, w))
    for i in range(h):
        for j in range(w):
            maps[:, i, j] = fc @ (t[:, i, j] / (h * w)) + fc_b
    return maps


# -- the cascade and the re-initialisation ------------------------------------------------
@pytest.mark.parametrize("backend", ["onnx", "ir"])
def test_the_cascade_goes_from_the_classifier_down_the_stages(backend: str) -> None:
    model = native(cnn(), backend)
    b = get_backend(backend)
    view = b.build_view(model)
    steps = randomise.cascade(view, find_target(view))
    assert [s.name for s in steps] == ["classifier", "stage 8x8", "stage 16x16"]
    shapes = [[randomise.weight_array(b, view, c).shape for c in s.weights] for s in steps]
    assert shapes == [[(CLASSES, 12)], [(12, 8, 3, 3)], [(8, 3, 3, 3)]]  # no bias
    assert [len(s.layers) for s in steps] == [1, 1, 1]


@pytest.mark.parametrize("backend", ["onnx", "ir"])
def test_randomised_replaces_only_the_steps_weights_seeded(backend: str) -> None:
    model = native(cnn(), backend)
    b = get_backend(backend)
    view = b.build_view(model)
    steps = randomise.cascade(view, find_target(view))
    before = {c: randomise.weight_array(b, view, c) for s in steps for c in s.weights}
    copy = randomise.randomised(b, model, view, steps[:2], seed=0)
    again = randomise.randomised(b, model, view, steps[:2], seed=0)
    other = randomise.randomised(b, model, view, steps[:2], seed=1)
    copy_view, again_view, other_view = (b.build_view(m) for m in (copy, again, other))

    def weights(v: object) -> list[np.ndarray]:
        return [randomise.weight_array(b, v, c)  # type: ignore[arg-type]
                for c in randomise.cascade(v, find_target(v)) for c in c.weights]  # type: ignore[arg-type]

    new, same, differ = weights(copy_view), weights(again_view), weights(other_view)
    old = list(before.values())
    assert not np.array_equal(new[0], old[0]) and not np.array_equal(new[1], old[1])
    assert np.array_equal(new[2], old[2])  # the first stage is not in steps[:2]
    assert all(np.array_equal(x, y) for x, y in zip(new, same, strict=True))
    assert not np.array_equal(new[0], differ[0])
    # the documented draw: normal noise (f32) with the tensor's mean and standard deviation
    rng = np.random.default_rng(0)
    want = rng.standard_normal(old[0].shape, dtype=np.float32) \
        * np.float32(old[0].astype(np.float64).std()) + np.float32(old[0].astype(np.float64).mean())
    assert np.allclose(new[0], want)
    assert all(np.array_equal(randomise.weight_array(b, view, c), a)  # the model as it was
               for c, a in before.items())


@pytest.mark.parametrize("backend", ["onnx", "ir"])
def test_cascade_models_randomise_from_the_top_with_shared_draws(backend: str) -> None:
    model = native(cnn(), backend)
    b = get_backend(backend)
    view = b.build_view(model)
    steps = randomise.cascade(view, find_target(view))
    original = [randomise.weight_array(b, view, s.weights[0]) for s in steps]
    seen = []
    for k, (step, copy) in enumerate(randomise.cascade_models(b, model, view, find_target(view))):
        assert step == steps[k]
        v = b.build_view(copy)
        now = [randomise.weight_array(b, v, s.weights[0])
               for s in randomise.cascade(v, find_target(v))]
        for i, (w, o) in enumerate(zip(now, original, strict=True)):
            assert np.array_equal(w, o) is (i > k), (k, i)  # the top k+1 steps re-drawn
        seen.append(now)
    assert all(np.array_equal(seen[k][0], seen[0][0]) for k in range(len(seen)))  # shared


def test_reinitialise_keeps_the_scale_and_the_integer_range() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(0.3, 2.0, (200, 300)).astype(np.float32)
    r = randomise.reinitialise(w, np.random.default_rng(1))
    assert r.dtype == np.float32 and r.shape == w.shape
    assert abs(r.mean() - w.mean()) < 0.02 and abs(r.std() / w.std() - 1) < 0.01
    assert abs(np.corrcoef(r.ravel(), w.ravel())[0, 1]) < 0.02  # none of the structure
    q = rng.integers(-128, 128, (50, 50)).astype(np.int8)
    rq = randomise.reinitialise(q, np.random.default_rng(2))
    assert rq.dtype == np.int8 and rq.min() >= -128 and rq.max() <= 127


# -- the recorded figures against numpy ---------------------------------------------------
@pytest.mark.parametrize("backend", ["onnx", "ir"])
def test_recorded_figures_equal_a_numpy_reimplementation(backend: str) -> None:
    w = _weights()
    samples = [np.random.default_rng(10 + i).normal(size=(1, 3, 16, 16)).astype(np.float32)
               for i in range(3)]
    result = xaigraph.insert(cnn(), "reciprocam", output_format=backend, samples=samples)
    got = result.report["sanity"]
    assert got["probes"] == 3 and got["probe_source"] == "samples"
    rng = np.random.default_rng(0)  # the classifier's weight, re-initialised as documented
    fc = w["fc"].astype(np.float32).astype(np.float64)
    fc_random = (rng.standard_normal(fc.shape, dtype=np.float32) * np.float32(fc.std())
                 + np.float32(fc.mean())).astype(np.float64)
    maps, after, top, least = [], [], [], []
    for x in samples:
        t = features(x[0].astype(np.float64), w)
        scores = w["fc"] @ t.mean(axis=(1, 2)) + w["fc_b"]
        top.append(int(np.argmax(scores)))
        least.append(int(np.argmin(scores)))
        maps.append(reciprocam(t, w["fc"], w["fc_b"]))
        after.append(reciprocam(t, fc_random, w["fc_b"]))
    want = sanity.degeneracy(np.stack(maps), top, least).as_dict()
    for key in ("constant", "input_rank_corr", "class_rank_corr", "same_for_inputs",
                "same_for_classes", "border_share"):
        assert got[key] == pytest.approx(want[key], abs=2e-4), key
    sim = sanity.similarity(np.stack(maps), np.stack(after), top)
    assert got["mprt"]["step"] == "classifier"
    assert got["mprt"]["spearman"] == pytest.approx(sim.spearman, abs=2e-4)
    assert got["mprt"]["ssim"] == pytest.approx(sim.ssim, abs=2e-4)
    assert got["refused"] == [] and got["level"] == "on"
    stamped = json.loads(get_backend(backend).read_stamp(result.model)["sanity"])
    assert stamped == json.loads(json.dumps(got))


# -- known answers ------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["onnx", "ir"])
def test_a_map_from_a_constant_branch_is_refused(backend: str) -> None:
    with pytest.raises(SanityError) as caught:
        xaigraph.insert(constant_branch(), "reciprocam", output_format=backend)
    text = str(caught.value)
    assert "the reciprocam map is the same for every probe input (rank correlation 1.00 " \
           "over 6 probes" in text
    assert "does it come from a constant branch?" in text
    assert text.endswith("--sanity warn to write it anyway")


@pytest.mark.parametrize("backend", ["onnx", "ir"])
def test_a_constant_weight_model_is_refused(backend: str) -> None:
    with pytest.raises(SanityError) as caught:
        xaigraph.insert(constant_weights(), "reciprocam", output_format=backend)
    text = str(caught.value)
    assert "the reciprocam map is the same for every class on every probe" in text
    assert "every learned layer's weights are constant" in text


def test_warn_writes_it_with_a_warning_and_off_skips(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        result = xaigraph.insert(constant_weights(), "reciprocam", sanity="warn")
    assert result.report["status"] == "inserted"
    assert result.report["sanity"]["refused"] == []
    assert any("the same for every class" in w for w in result.report["sanity"]["warnings"])
    assert any("written anyway: --sanity warn" in r.getMessage() for r in caplog.records)
    off = xaigraph.insert(constant_weights(), "reciprocam", sanity="off")
    assert off.report["sanity"] == {"skipped": True}
    assert "sanity" not in off.report["pipeline"]
    assert "sanity" not in (get_backend("onnx").read_stamp(off.model) or {})


def test_strict_refuses_a_map_that_ignores_the_randomised_weights() -> None:
    # activationmap reads the target only: its cheap MPRT re-initialises the stage that
    # makes the target; on this two-conv model the map keeps the first conv's pattern
    loose = xaigraph.insert(classifier(), "activationmap", output_format="onnx")
    assert loose.report["sanity"]["mprt"]["step"] == "stage 8x8"
    assert loose.report["sanity"]["mprt"]["spearman"] > sanity.MPRT_STRICT
    assert any("barely changes" in w for w in loose.report["sanity"]["warnings"])
    with pytest.raises(SanityError, match=r"barely changes when the stage 8x8 weights are "
                                          r"random \(MPRT Spearman 0\.\d\d > 0\.6\)"):
        xaigraph.insert(classifier(), "activationmap", output_format="onnx", sanity="strict")
    kept = xaigraph.insert(cnn(), "reciprocam", output_format="onnx", sanity="strict")
    assert kept.report["sanity"]["mprt"]["spearman"] <= sanity.MPRT_STRICT


def test_the_sanity_level_is_no_option_of_the_stamped_pipeline() -> None:
    made = xaigraph.insert(cnn(), "reciprocam", output_format="onnx").model
    again = xaigraph.insert(made, "reciprocam", sanity="strict")
    assert again.report["status"] == "already-augmented"


def test_cli_refusal_is_one_line_exit_2_and_nothing_written(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from xaigraph.cli import cli

    src = tmp_path / "constant.onnx"
    onnx.save_model(constant_weights(), str(src))
    out = tmp_path / "out.xml"
    run = CliRunner().invoke(cli, ["insert", str(src), "-o", str(out)])
    assert run.exit_code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "the same for every class" in lines[0]
    assert not any(tmp_path.glob("out*"))
    as_json = CliRunner().invoke(cli, ["insert", str(src), "-o", str(out), "--json"])
    assert json.loads(as_json.stdout)["error"]["kind"] == "sanity-failed"
    written = CliRunner().invoke(cli, ["insert", str(src), "-o", str(out), "--sanity", "warn"])
    assert written.exit_code == 0 and out.exists()
    assert "sanity      warn, 6 probes (generated photos)" in written.stdout


@pytest.mark.slow
@pytest.mark.parametrize("method", ["reciprocam", "activationmap"])
def test_the_bundled_trained_model_passes_every_check(method: str) -> None:
    from importlib.resources import files

    path = Path(str(files("xaigraph.data") / "efficientnet_lite0.onnx"))
    got = xaigraph.insert(path, method, sanity="warn").report["sanity"]
    assert got["refused"] == []
    assert got["constant"] == 0 and got["same_for_inputs"] > 0.5
    assert got["input_rank_corr"] < sanity.PATTERN_WARN
    if method == "reciprocam":
        assert got["warnings"] == []
        assert got["same_for_classes"] > 0.5 and got["class_rank_corr"] < 0
        assert got["mprt"]["step"] == "classifier"
        assert got["mprt"]["spearman"] <= sanity.MPRT_STRICT and got["mprt"]["ssim"] < 0.5
        strict = xaigraph.insert(path, method, sanity="strict").report["sanity"]
        assert strict["refused"] == [] and strict["mprt"] == got["mprt"]
    else:  # the mean of the feature map keeps the earlier stages' pattern: strict refuses
        assert got["mprt"]["step"] == "stage 7x7"
        assert got["warnings"] == [f"barely changes when the stage 7x7 weights are random "
                                   f"(MPRT Spearman {got['mprt']['spearman']:.2f} > 0.6)"]

"""Metrics against known answers and against the papers' formulas re-implemented here one
image (and one step) at a time, on a numpy "model" and on a tiny real model."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from xaigraph.explain import metrics
from xaigraph.session import Session

# -- known answers: localisation ----------------------------------------------------------------


def test_mass_in_box_is_exactly_a_quarter_for_a_uniform_map() -> None:
    saliency = np.ones((100, 80))
    assert metrics.mass_in_box(saliency, [[0, 0, 40, 50]]) == 0.25


def test_mass_in_box_counts_overlapping_boxes_once() -> None:
    saliency = np.zeros((10, 10))
    saliency[2:4, 2:4] = 1.0  # 4 pixels of mass 1
    saliency[8, 8] = 4.0
    boxes = [[2, 2, 4, 4], [3, 3, 4, 4]]  # the second box inside the first
    assert metrics.mass_in_box(saliency, boxes) == 0.5


def test_mass_in_box_ignores_nan_outside_the_seen_part() -> None:
    saliency = np.full((4, 4), np.nan)
    saliency[:, :2] = 1.0
    assert metrics.mass_in_box(saliency, [[0, 0, 1, 4]]) == 0.5


def test_mass_in_box_undefined_without_boxes_or_mass() -> None:
    assert np.isnan(metrics.mass_in_box(np.ones((4, 4)), []))
    assert np.isnan(metrics.mass_in_box(np.zeros((4, 4)), [[0, 0, 2, 2]]))


def _peak(row: int, col: int, shape: tuple[int, int] = (120, 120)) -> np.ndarray:
    saliency = np.zeros(shape)
    saliency[row, col] = 1.0
    saliency[0, 0] = 0.5  # a second, lower bump inside the box must not count
    return saliency


def test_pointing_game_hit_inside_the_box() -> None:
    assert metrics.pointing_game(_peak(10, 20), [[0, 0, 50, 50]], 0.0) == 1.0


def test_pointing_game_tolerance_is_a_euclidean_distance_to_the_box() -> None:
    # peak pixel (row 60, col 60): centre (60.5, 60.5), 10.5 px right of and below the
    # corner (50, 50) of the box: distance hypot(10.5, 10.5) = 14.85
    saliency = _peak(60, 60)
    box = [[0, 0, 50, 50]]
    assert metrics.pointing_game(saliency, box, 15.0) == 1.0
    assert metrics.pointing_game(saliency, box, 14.8) == 0.0
    # straight below the box: distance 60.5 - 50 = 10.5 exactly
    assert metrics.pointing_game(_peak(60, 25), box, 10.5) == 1.0
    assert metrics.pointing_game(_peak(60, 25), box, 10.4) == 0.0


def test_pointing_game_any_box_of_the_class_counts() -> None:
    saliency = _peak(100, 100)
    assert metrics.pointing_game(saliency, [[0, 0, 10, 10], [95, 95, 110, 110]], 0.0) == 1.0


def test_pointing_game_skips_nan_and_is_undefined_without_boxes() -> None:
    saliency = np.full((20, 20), np.nan)
    saliency[15, 15] = 0.2
    assert metrics.pointing_game(saliency, [[14, 14, 16, 16]], 0.0) == 1.0
    assert np.isnan(metrics.pointing_game(saliency, [], 15.0))


def test_pointing_tolerance_scales_with_the_part_the_model_sees() -> None:
    assert metrics.pointing_tolerance(224, 224) == 15.0
    assert metrics.pointing_tolerance(448, 600) == 30.0
    assert metrics.pointing_tolerance(1000, 112, tolerance=10) == 5.0


def test_resize_map_is_centre_aligned_bilinear() -> None:
    # 2x2 -> 4x4: output centres at input coordinates -0.25, 0.25, 0.75, 1.25 (clamped)
    got = metrics.resize_map(np.array([[0.0, 1.0], [2.0, 3.0]]), (4, 4))
    row = np.array([0.0, 0.25, 0.75, 1.0])
    want = row[None, :] + 2.0 * row[:, None]
    np.testing.assert_allclose(got, want, atol=1e-6)


# -- a numpy "model" ------------------------------------------------------------------------------

C, H, W, K = 3, 12, 10, 4


def numpy_model(seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    weights = np.random.default_rng(seed).normal(size=(C * H * W, K)) / 8.0

    def predict(batch: np.ndarray) -> np.ndarray:
        z = np.asarray(batch, np.float64).reshape(len(batch), -1) @ weights
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return predict


def counting(predict: Callable[[np.ndarray], np.ndarray], calls: list[int]
             ) -> Callable[[np.ndarray], np.ndarray]:
    def wrapped(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return predict(batch)

    return wrapped


def sample(seed: int = 1, channels: int = C, height: int = H, width: int = W
           ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1, channels, height, width)).astype(np.float32)
    maps = rng.random((2, height, width)).astype(np.float32)
    maps[1, :3] = maps[1, 3, 0]  # ties, broken in row-major order
    return x, maps


# -- insertion / deletion: reference one image, one step at a time --------------------------------

def reference_blur(x: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    """Separable Gaussian, kernel exp(-d^2 / 2 sigma^2) for |d| <= radius normalised to 1,
    edges reflected (d c b a | a b c d), one channel at a time."""
    d = np.arange(-radius, radius + 1)
    kernel = np.exp(-(d ** 2) / (2.0 * sigma ** 2))
    kernel /= kernel.sum()
    out = np.empty_like(x, dtype=np.float64)
    for c in range(x.shape[1]):
        plane = np.pad(x[0, c].astype(np.float64), radius, mode="symmetric")
        rows = np.array([[np.dot(plane[i, j:j + 2 * radius + 1], kernel)
                          for j in range(x.shape[3])] for i in range(plane.shape[0])])
        out[0, c] = np.array([[np.dot(rows[i:i + 2 * radius + 1, j], kernel)
                               for j in range(x.shape[3])] for i in range(x.shape[2])])
    return out


def reference_curves(x: np.ndarray, saliency: np.ndarray, target: int, predict, steps: int,
                     baseline: np.ndarray, start: np.ndarray) -> tuple[float, float]:
    """The RISE paper's deletion and insertion AUCs of one map, one image at a time."""
    pixels = saliency.size
    order = sorted(range(pixels), key=lambda p: (-float(saliency.ravel()[p]), p))
    base = np.broadcast_to(baseline, x.shape)
    deletion, insertion, fractions = [], [], []
    for k in range(steps + 1):
        n = int(np.floor(k * pixels / steps + 0.5))
        chosen = order[:n]
        removed = x.copy().reshape(x.shape[1], -1)
        removed[:, chosen] = base.reshape(x.shape[1], -1)[:, chosen]
        added = start.copy().reshape(x.shape[1], -1)
        added[:, chosen] = x.reshape(x.shape[1], -1)[:, chosen]
        deletion.append(float(predict(removed.reshape(x.shape))[0, target]))
        insertion.append(float(predict(added.reshape(x.shape).astype(x.dtype))[0, target]))
        fractions.append(n / pixels)
    return (float(np.trapezoid(insertion, fractions)), float(np.trapezoid(deletion, fractions)))


def test_blur_is_a_truncated_reflected_gaussian() -> None:
    x, _ = sample()
    np.testing.assert_allclose(metrics.blur(x, 2.0, 3), reference_blur(x, 2.0, 3), atol=1e-5)


@pytest.mark.parametrize("steps", [1, 7, 30])
@pytest.mark.parametrize("scalar_baseline", [True, False])
def test_insertion_deletion_equals_the_one_image_reference(steps: int,
                                                           scalar_baseline: bool) -> None:
    x, maps = sample()
    baseline = (np.float32(-0.5) if scalar_baseline
                else np.array([-1.0, 0.0, 0.5], np.float32).reshape(1, C, 1, 1))
    predict = numpy_model()
    calls: list[int] = []
    got = metrics.insertion_deletion(x, maps, [2, 0], counting(predict, calls), steps=steps,
                                     baseline=baseline, blur_sigma=2.0)
    assert calls == [3 + 2 * (steps - 1) * 2]  # one batch for both maps
    start = metrics.blur(x, 2.0)  # the blur itself is checked against a reference above
    for t, target in enumerate([2, 0]):
        ins, dele = reference_curves(x, maps[t], target, predict, steps,
                                     np.asarray(baseline, np.float32), start)
        assert got.insertion[t] == pytest.approx(ins, abs=1e-9)
        assert got.deletion[t] == pytest.approx(dele, abs=1e-9)


def test_insertion_deletion_batches_and_baseline_scores() -> None:
    x, maps = sample()
    predict = numpy_model()
    whole = metrics.insertion_deletion(x, maps, [1, 3], predict, steps=5)
    calls: list[int] = []
    black = predict(np.zeros_like(x))[0]
    parts = metrics.insertion_deletion(x, maps, [1, 3], counting(predict, calls), steps=5,
                                       batch_size=4, baseline_scores=black)
    assert calls == [4, 4, 4, 4, 2]  # 2 shared + 2 * 4 * 2 inner images
    np.testing.assert_allclose(parts.insertion, whole.insertion, atol=1e-12)
    np.testing.assert_allclose(parts.deletion, whole.deletion, atol=1e-12)


def test_deletion_of_a_linear_evidence_model_is_one_half() -> None:
    # p(class 0) = the share of pixels still at 1: deletion falls linearly, AUC 1/2 exactly;
    # the blurred constant image is the image itself, insertion stays at 1
    x = np.ones((1, 1, 8, 8), np.float32)

    def predict(batch: np.ndarray) -> np.ndarray:
        share = batch.reshape(len(batch), -1).mean(axis=1)
        return np.stack([share, 1.0 - share], axis=1)

    got = metrics.insertion_deletion(x, np.random.default_rng(0).random((1, 8, 8)), [0],
                                     predict, steps=16, baseline=0.0)
    assert got.deletion[0] == pytest.approx(0.5, abs=1e-12)
    assert got.insertion[0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(got.deletion_curves[0], 1.0 - np.arange(17) / 16, atol=1e-12)


def test_counts_round_half_up_and_cover_every_pixel() -> None:
    np.testing.assert_array_equal(metrics.pixel_counts(10, 4), [0, 3, 5, 8, 10])
    assert metrics.pixel_counts(224 * 224, 30)[-1] == 224 * 224


# -- ADCC: reference one image at a time ----------------------------------------------------------

def toy_explain(batch: np.ndarray, classes) -> np.ndarray:
    """A deterministic 'explanation': the channel mean of the input plus the class index,
    min-max scaled; one map per image."""
    out = []
    for b, c in enumerate(classes):
        m = batch[b].mean(axis=0) + 0.1 * c * np.arange(batch.shape[3])[None, :]
        out.append((m - m.min()) / (m.max() - m.min()))
    return np.asarray(out)


def reference_adcc(x, saliency, target, predict, explain, baseline) -> dict[str, float]:
    masked = baseline + saliency[None, None] * (x - baseline)
    y = float(predict(x)[0, target])
    o = float(predict(masked.astype(np.float32))[0, target])
    drop = max(0.0, y - o) / y
    again = explain(masked.astype(np.float32), [target])[0]
    r = float(np.corrcoef(saliency.ravel(), again.ravel())[0, 1])
    coherency = (1.0 + r) / 2.0
    complexity = float(np.abs(saliency).sum() / saliency.size)
    score = statistics.harmonic_mean([coherency, 1.0 - complexity, 1.0 - drop])
    return {"average_drop": drop, "coherency": coherency, "complexity": complexity,
            "adcc": score}


def test_adcc_equals_the_one_image_reference() -> None:
    x, maps = sample()
    predict = numpy_model()
    calls: list[int] = []
    explained: list[int] = []

    def explain(batch, classes):
        explained.append(len(batch))
        return toy_explain(batch, classes)

    baseline = np.float32(-0.7)
    got = metrics.adcc(x, maps, [3, 1], counting(predict, calls), explain, baseline=baseline)
    assert calls == [3] and explained == [2]
    for t, target in enumerate([3, 1]):
        want = reference_adcc(x, maps[t].astype(np.float64), target, predict, toy_explain,
                              np.float64(baseline))
        for name, value in want.items():
            assert got[name][t] == pytest.approx(value, abs=1e-6), name


def test_adcc_known_answers() -> None:
    x, _ = sample()
    predict = numpy_model()
    ones = np.ones((1, H, W), np.float32)  # keeps the whole image: no drop, complexity 1
    got = metrics.adcc(x, ones, [0], predict, toy_explain)
    assert got["average_drop"][0] == pytest.approx(0.0, abs=1e-7)
    assert got["complexity"][0] == 1.0
    assert got["adcc"][0] == 0.0
    half = np.full((1, H, W), 0.5, np.float32)
    half[0, 0, 0] = 0.0
    constant = metrics.adcc(x, half, [0], predict, lambda b, c: np.ones((len(b), 3, 3)))
    assert np.isnan(constant["coherency"][0]) and np.isnan(constant["adcc"][0])
    assert np.isnan(metrics.adcc(x, half, [0], predict, None)["adcc"][0])


def test_adcc_normalisations_by_hand() -> None:
    # Poppi et al. 2021: average drop max(0, Y - O) / Y per image; coherency the Pearson
    # correlation of the map with the map of the explanation-masked image, normalised from
    # [-1, 1] to [0, 1] as (r + 1) / 2; complexity the L1 norm over the pixel count; ADCC
    # 3 / (1 / coherency + 1 / (1 - complexity) + 1 / (1 - average drop)).
    x = np.full((1, 1, 8, 8), 0.5, np.float32)

    def share(batch: np.ndarray) -> np.ndarray:  # p(class 0) = the mean input value
        s = batch.reshape(len(batch), -1).mean(axis=1)
        return np.stack([s, 1.0 - s], axis=1)

    quarter = np.zeros((1, 8, 8), np.float32)
    quarter[0, :4, :4] = 1.0  # a quarter of the pixels at 1: L1 / pixels = 0.25
    maps = np.concatenate([quarter, quarter])
    got = metrics.adcc(x, maps, [0, 1], share, lambda b, c: 3.0 * maps[:len(c)] + 2.0)
    # class 0: Y = 0.5, O = 0.125 -> drop 0.75; class 1: Y = 0.5, O = 0.875 -> 0, not -0.75
    np.testing.assert_allclose(got["average_drop"], [0.75, 0.0], atol=1e-7)
    np.testing.assert_allclose(got["complexity"], [0.25, 0.25], atol=1e-7)
    np.testing.assert_allclose(got["coherency"], [1.0, 1.0], atol=1e-7)  # r = 1 up to scale
    np.testing.assert_allclose(got["adcc"], [3.0 / (1.0 + 1.0 / 0.75 + 1.0 / 0.25),
                                             3.0 / (1.0 + 1.0 / 0.75 + 1.0)], atol=1e-7)
    opposite = metrics.adcc(x, maps, [0, 1], share, lambda b, c: 1.0 - maps[:len(c)])
    np.testing.assert_allclose(opposite["coherency"], [0.0, 0.0], atol=1e-7)  # r = -1
    np.testing.assert_allclose(opposite["adcc"], [0.0, 0.0], atol=1e-12)
    rng = np.random.default_rng(2)
    noise = rng.random((2, 8, 8))
    unrelated = metrics.adcc(x, maps, [0, 1], share, lambda b, c: noise)
    r = np.corrcoef(quarter.ravel(), noise[0].ravel())[0, 1]
    assert unrelated["coherency"][0] == pytest.approx((r + 1.0) / 2.0, abs=1e-7)


def test_adcc_coherency_resizes_a_coarse_map() -> None:
    x, maps = sample()
    coarse = np.random.default_rng(5).random((2, 3, 5))
    got = metrics.adcc(x, maps, [0, 1], numpy_model(), lambda b, c: coarse)
    for t in range(2):
        up = metrics.resize_map(coarse[t], (H, W))
        r = np.corrcoef(maps[t].ravel(), up.ravel())[0, 1]
        assert got["coherency"][t] == pytest.approx((1 + r) / 2, abs=1e-6)


# -- a tiny real model through Session ------------------------------------------------------------

def test_insertion_deletion_and_adcc_on_a_real_model(cnn_file: Callable[..., Path]) -> None:
    session = Session.open(cnn_file("gap_fc", True, "onnx17"))

    def predict(batch: np.ndarray) -> np.ndarray:
        return session.run([np.ascontiguousarray(batch, np.float32)])[0]

    x, maps = sample(seed=3, height=16, width=16)
    baseline = np.float32(-1.0)
    got = metrics.insertion_deletion(x, maps, [4, 1], predict, steps=10, baseline=baseline)
    start = metrics.blur(x)
    for t, target in enumerate([4, 1]):
        ins, dele = reference_curves(x, maps[t], target, predict, 10,
                                     np.asarray(baseline), start)
        assert got.insertion[t] == pytest.approx(ins, abs=1e-6)
        assert got.deletion[t] == pytest.approx(dele, abs=1e-6)
    scores = metrics.adcc(x, maps, [4, 1], predict, toy_explain, baseline=baseline)
    for t, target in enumerate([4, 1]):
        want = reference_adcc(x, maps[t].astype(np.float64), target, predict, toy_explain,
                              np.float64(baseline))
        for name, value in want.items():
            assert scores[name][t] == pytest.approx(value, abs=1e-5), name


def test_bad_shapes_are_refused() -> None:
    x, maps = sample()
    with pytest.raises(ValueError, match="maps must be"):
        metrics.insertion_deletion(x, maps[:, :5], [0, 1], numpy_model())
    with pytest.raises(ValueError, match="targets"):
        metrics.adcc(x, maps, [0], numpy_model(), None)

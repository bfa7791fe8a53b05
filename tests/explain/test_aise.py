"""AISE against a sequential reference (DIRECT one point at a time, one inference at a time),
its budget and batching, and the peak on the object for a classifier and a detector."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import direct

from tests.explain.test_drise import bright_box_detector
from xaigraph.errors import BadInputError
from xaigraph.explain.aise import aise
from xaigraph.explain.blackbox import PRESETS, BlackBoxOptions, explain_one

SIZE = 32


def object_image(top: int, left: int) -> np.ndarray:
    x = np.full((1, 3, SIZE, SIZE), 0.2, np.float32)
    x[0, :, top:top + 7, left:left + 7] = 1.0
    return x


def object_model(batch: np.ndarray) -> np.ndarray:
    """Score of class 0: how much of the bright object (pixels > 0.6) is left."""
    bright = np.clip(batch.mean(axis=1) - 0.6, 0, None).sum(axis=(1, 2)) / (49 * 0.4)
    s = np.clip(bright, 0, 1)
    return np.stack([s, 1 - s], axis=1)


def gaussian(cy: float, cx: float, sigma: float) -> np.ndarray:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    return np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))


def reference_aise(x, model, target, widths, evals, baseline):
    out = np.zeros((SIZE, SIZE))
    count = 0
    for w in widths:
        sigma = w * SIZE
        samples = []

        def f(c, sigma=sigma, samples=samples):
            nonlocal count
            if len(samples) >= evals:
                return 0.0
            k = gaussian(c[0] * SIZE, c[1] * SIZE, sigma)[None, None]
            keep = model((baseline + k * (x - baseline)).astype(np.float32))[0, target]
            remove = model((baseline + (1 - k) * (x - baseline)).astype(np.float32))[0, target]
            count += 2
            samples.append((c[0] * SIZE, c[1] * SIZE, keep - remove))
            return -(keep - remove)

        direct(f, [(0.0, 1.0), (0.0, 1.0)], maxfun=evals, maxiter=10 * evals,
               locally_biased=True)
        for cy, cx, value in samples:
            out += value * gaussian(cy, cx, sigma)
    return out, count


@pytest.mark.parametrize("baseline", [0.0, 0.1])
def test_aise_equals_sequential_reference(baseline: float) -> None:
    x = object_image(5, 18)
    widths, evals = (0.1, 0.25), 20
    calls: list[int] = []

    def spy(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return object_model(batch)[:, [0]]

    got, count = aise(x, spy, targets=1, widths=widths, evals=evals, baseline=baseline)
    ref, ref_count = reference_aise(x, object_model, 0, widths, evals, baseline)
    span = ref.max() - ref.min()
    assert span > 0 and np.abs(got[0] - ref).max() <= 1e-5 * span
    assert count == ref_count == sum(calls) <= 2 * len(widths) * evals
    assert max(calls) == 2 * len(widths)  # the two searches' points share one batch


@pytest.mark.parametrize(("top", "left"), [(2, 3), (20, 22), (12, 4)])
def test_aise_peak_lies_on_the_object(top: int, left: int) -> None:
    x = object_image(top, left)
    result = explain_one(x, object_model, "aise", BlackBoxOptions(preset="speed"), [0])
    peak = np.unravel_index(int(np.argmax(result.maps[0])), result.maps[0].shape)
    assert top <= peak[0] < top + 7 and left <= peak[1] < left + 7, peak


def test_aise_on_a_detector_peaks_inside_the_box() -> None:
    x = np.full((1, 3, 40, 40), 0.2, np.float32)
    x[0, :, 22:31, 5:17] = 1.0
    result = explain_one(x, bright_box_detector, "aise", BlackBoxOptions(), [1], detector=True)
    peak = np.unravel_index(int(np.argmax(result.maps[0])), result.maps[0].shape)
    assert 22 <= peak[0] < 31 and 5 <= peak[1] < 17, peak


def test_two_targets_and_budget() -> None:
    x = object_image(5, 5)
    p = PRESETS["balance"]
    seen: list[int] = []

    def spy(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return object_model(batch)

    maps, count = aise(x, spy, targets=2, widths=p.widths, evals=p.evals)
    assert maps.shape == (2, SIZE, SIZE)
    assert count == sum(seen) <= 2 * 2 * len(p.widths) * p.evals
    # class 1 is "the object is gone": its map is low where class 0's is high
    peak = np.unravel_index(int(np.argmax(maps[0])), maps[0].shape)
    assert maps[1][peak] < np.median(maps[1])


def test_bad_settings_are_one_line() -> None:
    x = object_image(5, 5)
    for kwargs in ({"widths": (0.0,), "evals": 5}, {"widths": (0.2,), "evals": 0}):
        with pytest.raises(BadInputError) as info:
            aise(x, object_model, targets=1, **kwargs)
        assert "\n" not in str(info.value)


def test_a_failing_model_fails_the_call() -> None:
    def broken(batch: np.ndarray) -> np.ndarray:
        raise BadInputError("the model failed")

    with pytest.raises(BadInputError, match="the model failed"):
        aise(object_image(5, 5), broken, targets=1, widths=(0.1, 0.2), evals=5)

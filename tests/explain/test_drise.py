"""D-RISE against a one-mask-at-a-time reference, on a numpy detector whose box follows the
bright pixels of its input."""

from __future__ import annotations

import numpy as np
import pytest

from xaigraph.explain import masks
from xaigraph.explain.blackbox import BlackBoxOptions, explain_one
from xaigraph.explain.detections import Detections
from xaigraph.explain.drise import drise, select_targets

SIZE = 40


def bright_box_detector(batch: np.ndarray, with_probs: bool = False) -> list[Detections]:
    """One box per image: the bounding box of the pixels brighter than 0.6 (label 1, score
    their mean brightness), plus a fixed box of label 0 in the corner (score 0.9)."""
    out = []
    for image in batch:
        grey = image.mean(axis=0)
        ys, xs = np.nonzero(grey > 0.6)
        boxes, labels, scores = [[0, 0, 8, 8]], [0], [0.9]
        if len(ys):
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(1)
            scores.append(float(grey[grey > 0.6].mean()))
        probs = None
        if with_probs:
            probs = np.array([[0.8, 0.2, 0.0], [0.1, 0.7, 0.2]][:len(boxes)])
        out.append(Detections.make(boxes, labels, scores, probs))
    return out


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_drise(x, detector, targets: Detections, n, cells, prob, seed, use_probs):
    """The paper's weighted sum, one mask and one detection at a time."""
    out = np.zeros((len(targets), SIZE, SIZE))
    for i in range(n):
        m = masks.grid_mask(seed, i, cells, prob, (SIZE, SIZE)).astype(np.float64)
        found = detector((m[None, None] * x.astype(np.float64)).astype(np.float32))[0]
        for t in range(len(targets)):
            best = 0.0
            for j in range(len(found)):
                if use_probs:
                    a, b = targets.probs[t], found.probs[j]
                    cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
                else:
                    cos = float(targets.labels[t] == found.labels[j])
                best = max(best, iou(targets.boxes[t], found.boxes[j]) * cos
                           * float(found.scores[j]))
            out[t] += best * m
    return out


def object_image(top: int, left: int) -> np.ndarray:
    x = np.full((1, 3, SIZE, SIZE), 0.2, np.float32)
    x[0, :, top:top + 9, left:left + 12] = 1.0
    return x


@pytest.mark.parametrize("use_probs", [False, True])
def test_drise_equals_one_mask_at_a_time_reference(use_probs: bool) -> None:
    def det(b: np.ndarray) -> list[Detections]:
        return bright_box_detector(b, use_probs)

    x = object_image(20, 15)
    targets = select_targets(det(x)[0], score_threshold=0.5)
    assert len(targets) == 2 and targets.scores[0] == 1.0  # best first
    got = drise(x, det, targets=targets, num_masks=120, cells=5, prob=0.5, seed=4,
                batch_size=13)
    ref = reference_drise(x, det, targets, 120, 5, 0.5, 4, use_probs)
    for t in range(2):
        span = ref[t].max() - ref[t].min()
        assert span > 0 and np.abs(got[t] - ref[t]).max() <= 1e-5 * span


@pytest.mark.parametrize(("top", "left"), [(3, 4), (25, 22), (10, 26)])
def test_drise_map_peaks_inside_the_detected_box(top: int, left: int) -> None:
    x = object_image(top, left)
    result = explain_one(x, bright_box_detector, "rise", BlackBoxOptions(num_masks=300, cells=6),
                         [1], detector=True)
    assert result.classes.tolist() == [1]
    assert result.boxes is not None
    np.testing.assert_allclose(result.boxes[0], [left, top, left + 12, top + 9, 1.0])
    peak = np.unravel_index(int(np.argmax(result.maps[0])), result.maps[0].shape)
    assert top <= peak[0] < top + 9 and left <= peak[1] < left + 12, peak


def test_targets_by_class_and_threshold() -> None:
    x = object_image(20, 15)
    found = bright_box_detector(x)[0]
    assert len(select_targets(found, score_threshold=0.95)) == 1
    only0 = select_targets(found, score_threshold=0.5, classes=[0])
    assert only0.labels.tolist() == [0]
    empty = explain_one(x, bright_box_detector, "rise", BlackBoxOptions(num_masks=10), [5],
                        detector=True)
    assert empty.maps.shape == (0, SIZE, SIZE) and empty.boxes is not None
    assert empty.boxes.shape == (0, 5)


def test_same_seed_same_maps_for_any_batch_size() -> None:
    x = object_image(12, 12)
    targets = select_targets(bright_box_detector(x)[0], score_threshold=0.5)
    maps = [drise(x, bright_box_detector, targets=targets, num_masks=70, cells=4, prob=0.5,
                  seed=2, batch_size=b) for b in (1, 7, 64)]
    span = maps[0].max() - maps[0].min()
    assert np.abs(maps[1] - maps[0]).max() <= 1e-6 * span
    assert np.abs(maps[2] - maps[0]).max() <= 1e-6 * span

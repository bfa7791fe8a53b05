"""The detector output readers on hand-made arrays; NMS and IoU against brute force."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from xaigraph.errors import BadInputError
from xaigraph.explain.detections import Detections, box_iou, find_reader, nms, similarity
from xaigraph.session import TensorInfo

SIZE = (100, 200)  # input H, W


def info(name: str, dims: tuple[int | None, ...]) -> TensorInfo:
    return TensorInfo(name, (name,), np.dtype(np.float32), dims)


def test_modelapi_reader_drops_padding() -> None:
    outputs = [info("boxes", (None, None, 5)), info("labels", (None, None))]
    reader = find_reader(outputs)
    assert reader.name == "modelapi"
    boxes = np.array([[[10, 20, 30, 40, 0.9], [1, 2, 3, 4, 0.0], [50, 5, 60, 9, 0.4]],
                      [[0, 0, 0, 0, 0.0], [0, 0, 0, 0, 0.0], [0, 0, 0, 0, 0.0]]], np.float32)
    labels = np.array([[3, -1, 7], [-1, -1, -1]])
    found = reader.read([boxes, labels], SIZE)
    assert len(found) == 2 and len(found[1]) == 0
    np.testing.assert_array_equal(found[0].boxes, [[10, 20, 30, 40], [50, 5, 60, 9]])
    assert found[0].labels.tolist() == [3, 7]
    np.testing.assert_allclose(found[0].scores, [0.9, 0.4])


def test_boxes_labels_scores_reader_without_batch_and_normalised_boxes() -> None:
    outputs = [info("scores", (None,)), info("boxes", (None, 4)), info("labels", (None,))]
    reader = find_reader(outputs)
    assert reader.name == "boxes_labels_scores"
    found = reader.read([np.array([0.8], np.float32), np.array([[0.1, 0.2, 0.5, 1.0]]),
                         np.array([2])], SIZE)
    assert len(found) == 1
    np.testing.assert_allclose(found[0].boxes, [[20, 20, 100, 100]])  # x by W, y by H
    assert found[0].labels.tolist() == [2]


def test_yolo_reader_thresholds_and_suppresses_per_class() -> None:
    reader = find_reader([info("output0", (1, 4 + 3, 12))])  # anchors > channels
    assert reader.name == "yolo"
    # anchors: cx cy w h, then 3 class scores
    anchors = np.array([
        [50, 50, 20, 20, 0.9, 0.0, 0.0],   # kept
        [52, 50, 20, 20, 0.8, 0.0, 0.0],   # same class, IoU > 0.5 with the first: suppressed
        [52, 50, 20, 20, 0.0, 0.7, 0.0],   # other class, same place: kept
        [150, 30, 10, 10, 0.0, 0.0, 0.3],  # kept
        [10, 10, 4, 4, 0.01, 0.02, 0.0],   # below the score threshold
        [150, 31, 10, 10, 0.0, 0.0, 0.2],  # suppressed by the fourth
    ], np.float32)
    anchors = np.concatenate([anchors, np.zeros((6, 7), np.float32)])  # empty anchors
    found = reader.read([anchors.T[None]], SIZE)[0]
    assert found.labels.tolist() == [0, 1, 2]
    np.testing.assert_allclose(found.scores, [0.9, 0.7, 0.3], rtol=1e-6)
    np.testing.assert_allclose(found.boxes[0], [40, 40, 60, 60])
    assert found.probs is not None
    np.testing.assert_allclose(found.probs[1], [0.0, 0.7, 0.0])


def test_postprocess_reader_calls_the_users_function(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_post.py").write_text(textwrap.dedent("""
        import numpy as np
        def read(outputs):
            raw = outputs["raw"][0]          # [M, 6]: x1 y1 x2 y2 score label
            return raw[:, :4], raw[:, 5].astype(int), raw[:, 4]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    reader = find_reader([info("raw", (None, None, 6))], postprocess="my_post:read")
    assert reader.name == "postprocess"
    raw = np.array([[[1, 2, 3, 4, 0.5, 9]], [[5, 6, 7, 8, 0.6, 1]]], np.float32)
    found = reader.read([raw], SIZE)
    assert [f.labels.tolist() for f in found] == [[9], [1]]
    np.testing.assert_allclose(found[1].boxes, [[5, 6, 7, 8]])
    sys.modules.pop("my_post", None)


@pytest.mark.parametrize(("kwargs", "text"), [
    ({}, "readers: modelapi, boxes_labels_scores, yolo, postprocess"),
    ({"name": "yolo"}, "--detector-output yolo does not fit"),
    ({"name": "ssd"}, "unknown --detector-output"),
    ({"name": "postprocess"}, "needs --postprocess"),
    ({"postprocess": "nomodule_xyz:f"}, "cannot import"),
    ({"postprocess": "justaname"}, "module:function"),
])
def test_unrecognised_outputs_are_one_line(kwargs: dict, text: str) -> None:
    with pytest.raises(BadInputError, match=text) as error:
        find_reader([info("logits", (1, 1000))], **kwargs)
    assert "\n" not in str(error.value)


def test_forced_reader_wins_over_the_found_one() -> None:
    outputs = [info("boxes", (1, 10, 4)), info("labels", (1, 10)), info("scores", (1, 10))]
    assert find_reader(outputs).name == "boxes_labels_scores"
    with pytest.raises(BadInputError, match="modelapi does not fit"):
        find_reader(outputs, "modelapi")


def test_iou_and_nms_against_brute_force() -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 50, (30, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (30, 2))], axis=1)
    scores = rng.uniform(size=30)
    labels = rng.integers(0, 2, 30)
    got = box_iou(boxes, boxes)
    for i in range(30):
        for j in range(30):
            a, b = boxes[i], boxes[j]
            inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * \
                max(0, min(a[3], b[3]) - max(a[1], b[1]))
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            assert abs(got[i, j] - inter / union) < 1e-12
    # brute force NMS: repeatedly take the best remaining box, drop its same-class overlaps
    remaining = list(range(30))
    expected = []
    while remaining:
        best = max(remaining, key=lambda i: scores[i])
        expected.append(best)
        remaining = [i for i in remaining if i != best and not (
            labels[i] == labels[best] and got[best, i] > 0.5)]
    assert nms(boxes, scores, labels, 0.5).tolist() == expected


def test_similarity_is_iou_times_cosine_times_score() -> None:
    target = Detections.make([[0, 0, 10, 10]], [1], [1.0], [[0.0, 1.0, 0.0]])
    found = Detections.make([[0, 0, 10, 20], [0, 0, 10, 10]], [1, 2], [0.8, 0.5],
                            [[0.0, 0.6, 0.8], [0.0, 0.0, 1.0]])
    # box 0: IoU 0.5, cos 0.6, score 0.8 -> 0.24; box 1: IoU 1, cos 0 -> 0
    np.testing.assert_allclose(similarity(target, found), [0.24])
    no_probs = Detections.make([[0, 0, 10, 20]], [1], [0.8])
    np.testing.assert_allclose(similarity(target, no_probs), [0.4])  # one-hot: same label
    empty = Detections.make(np.zeros((0, 4)), [], [])
    np.testing.assert_array_equal(similarity(target, empty), [0.0])

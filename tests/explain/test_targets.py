"""Target objects (xaigraph/explain/targets.py) against plain-Python references: which
classes or boxes of one image get a map, where their maps are, and the run.json text (the
strings of the string-kind `Targets` they replace, so that run digests do not change)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.explain.test_drise import bright_box_detector, object_image
from xaigraph.errors import BadInputError
from xaigraph.explain.blackbox import BlackBoxOptions, explain_one
from xaigraph.explain.detections import Detections
from xaigraph.explain.drise import select_targets
from xaigraph.explain.inputs import Box, Item
from xaigraph.explain.targets import (
    All,
    Boxes,
    Classes,
    GroundTruth,
    Outputs,
    Predicted,
    TopK,
    parse,
)

RNG = np.random.default_rng(11)


def ranked(scores: np.ndarray, pool: list[int]) -> list[int]:
    """The pool best first, ties in the pool's order (Python's stable sort)."""
    return [c for _, _, c in sorted((-float(scores[c]), i, c) for i, c in enumerate(pool))]


@pytest.mark.parametrize("available", [None, [7, 2, 9, 0, 4]])
@pytest.mark.parametrize("seed", range(4))
def test_topk_predicted_classes_all_against_a_sort(available: list[int] | None,
                                                   seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, 10).astype(np.float32) / 4  # many ties
    out = Outputs(scores, available)
    pool = list(range(10)) if available is None else available
    for k in (1, 2, 3, 5):
        assert TopK(k).classes(out) == ranked(scores, pool)[:k]
    assert Predicted().classes(out) == ranked(scores, pool)[:1]
    if available is None:
        assert Predicted().classes(out) == [int(np.argmax(scores))]
    assert All().classes(out) == pool
    wanted = (9, 3, 7)  # 3 has no map when the model computed only `available`
    assert Classes(wanted).classes(out) == [c for c in wanted if c in pool]
    chosen = TopK(3).classes(out)
    assert [pool[p] for p in out.positions(chosen)] == chosen


@pytest.mark.parametrize(("text", "target", "run_json"), [
    ("predicted", Predicted(), "topk:1"),
    ("topk:3", TopK(3), "topk:3"),
    ("all", All(), "all"),
    ("3,17", Classes((3, 17)), "3,17"),
    ("dog, tiger_cat", Classes((2, 1)), "2,1"),
])
def test_parse_and_the_run_json_text(text: str, target: object, run_json: str) -> None:
    labels = ["cat", "tiger cat", "dog"] + [f"c{i}" for i in range(20)]
    parsed = parse(text, labels)
    assert parsed == target and parsed.text() == run_json
    assert parsed.in_graph() == (None if text == "all" else run_json)


@pytest.mark.parametrize(("text", "message"), [
    ("topk:0", "--targets 'topk:0': topk:K takes a whole number K >= 1"),
    ("3,3", "--targets '3,3': a class is listed twice"),
    ("", "--targets '': give topk:K, predicted, all, or a list of class indices or names "
         "such as 3,17"),
    ("tigr", "--targets 'tigr': class name 'tigr' but the model has no class names (give "
             "--labels FILE, or indices)"),
])
def test_parse_messages(text: str, message: str) -> None:
    with pytest.raises(BadInputError) as err:
        parse(text, None)
    assert str(err.value) == message


@pytest.mark.parametrize(("text", "boxes", "run_json"), [
    ("predicted", Boxes(0.4), "predicted"),
    ("all", Boxes(0.4), "predicted"),
    ("topk:2", Boxes(0.4, k=2), "topk:2"),
    ("1,0", Boxes(0.4, labels=(1, 0)), "1,0"),
])
def test_a_detectors_reading_of_the_targets(text: str, boxes: Boxes, run_json: str) -> None:
    got = Boxes.of(parse(text, None), 0.4)
    assert got == boxes and got.text() == run_json and got.in_graph() is None


def reference_boxes(found: Detections, rule: Boxes) -> list[int]:
    """The indices of the chosen boxes, best first, ties in the detector's order."""
    order = sorted(range(len(found)), key=lambda i: (-float(found.scores[i]), i))
    if rule.k is not None:
        return [i for i in order if found.scores[i] >= 0][:rule.k]
    return [i for i in order if found.scores[i] >= rule.score_threshold
            and (rule.labels is None or int(found.labels[i]) in rule.labels)]


def old_topk(found: Detections, k: int) -> Detections:
    """How topk:K chose boxes before `Boxes`: the K-th best score (0 when fewer boxes),
    clipped to [0, 1], as the threshold, then the first K."""
    ranked_scores = np.sort(found.scores)[::-1]
    kth = float(ranked_scores[k - 1]) if len(ranked_scores) >= k else 0.0
    chosen = select_targets(found, score_threshold=min(max(kth, 0.0), 1.0))
    return chosen.keep(np.arange(min(k, len(chosen))))


@pytest.mark.parametrize("seed", range(6))
def test_boxes_select_against_a_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = 9
    found = Detections.make(rng.random((m, 4)) * 30, rng.integers(0, 3, m),
                            np.round(rng.random(m) * 4) / 4 - (seed == 5) * 0.3)  # ties
    rules = [Boxes(0.5), Boxes(0.25, labels=(2, 0)), Boxes(0.5, k=1), Boxes(0.5, k=4),
             Boxes(0.9, k=20)]
    for rule in rules:
        got = rule.select(found)
        want = reference_boxes(found, rule)
        np.testing.assert_array_equal(got.boxes, found.boxes[want])
        np.testing.assert_array_equal(got.labels, found.labels[want])
        if rule.k is not None:
            old = old_topk(found, rule.k)
            np.testing.assert_array_equal(got.boxes, old.boxes)


def test_explain_one_takes_the_chosen_boxes() -> None:
    x = object_image(20, 15)
    options = BlackBoxOptions(num_masks=60, cells=5, seed=2)
    found = bright_box_detector(x)[0]
    by_classes = explain_one(x, bright_box_detector, "rise", options, None, detector=True)
    by_boxes = explain_one(x, bright_box_detector, "rise", options, Boxes(0.5).select(found),
                           detector=True)
    np.testing.assert_array_equal(by_boxes.maps, by_classes.maps)
    np.testing.assert_array_equal(by_boxes.boxes, by_classes.boxes)
    top1 = explain_one(x, bright_box_detector, "rise", options, Boxes(k=1).select(found),
                       detector=True)
    np.testing.assert_array_equal(top1.maps, by_classes.maps[:1])
    with pytest.raises(BadInputError, match="boxes are the targets of a detector only"):
        explain_one(x, lambda a: np.ones((len(a), 2)), "rise", options, found)


def test_ground_truth_names_then_the_predicted_class() -> None:
    names = ("dog", "tiger cat", "black-footed ferret", "fish")
    scores = np.array([0.1, 0.2, 0.3, 0.4])
    rule = GroundTruth(names)
    item = Item(0, Path("a.png"), "a",
                boxes=(Box((0, 0, 1, 1), None, "Black_Footed Ferret"),
                       Box((0, 0, 2, 2), None, "unicorn"),
                       Box((1, 1, 2, 2), None, "black footed ferret")),
                labels=("DOG", "tiger-cat"))
    assert rule.classes(Outputs(scores, item=item)) == [2, 0, 1]
    assert rule.classes(Outputs(scores, item=Item(1, Path("b.png"), "b"))) == [3]
    assert rule.text().startswith("eval: the image's ground-truth class names")
    assert rule.in_graph() is None

"""Issue 22, "why was it wrong": on an image whose prediction is wrong (ground truth given),
explain and eval explain the predicted class and the ground-truth classes, the record says
which is which (`role`, `extra`), eval's metrics stay on the maps they were measured on, and
the extra map costs no extra model run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from xaigraph.cli import cli
from xaigraph.explain import evaluate
from xaigraph.explain.inputs import Item
from xaigraph.explain.io.record import Record, RecordError
from xaigraph.explain.targets import AndTruth, GroundTruth, Outputs, Predicted, TopK

NAMES = ("a", "b", "c", "d")


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def item(*labels: str) -> Item:
    return Item(0, Path("x.png"), "x", labels=labels)


@pytest.mark.parametrize("base, labels, want, marks", [
    # right: the base's classes only, the predicted one is also the truth
    (Predicted(), ("c",), [2], {2: ("both", False)}),
    # wrong: the predicted class, then the truth, added
    (Predicted(), ("a",), [2, 0], {2: ("predicted", False), 0: ("truth", True)}),
    # two truths, one of them second best: in topk:2 already, not extra
    (TopK(2), ("b", "a"), [2, 1, 0], {2: ("predicted", False), 1: ("truth", False),
                                       0: ("truth", True)}),
    # no ground truth that names a class: the base's, no marks
    (Predicted(), (), [2], {}),
    (Predicted(), ("zebra",), [2], {}),
    # eval's rule: the truth first, the wrong prediction added
    (GroundTruth(NAMES), ("a",), [0, 2], {0: ("truth", False), 2: ("predicted", True)}),
    (GroundTruth(NAMES), ("c",), [2], {2: ("both", False)}),
])
def test_and_truth_adds_the_predicted_and_true_classes_of_a_wrong_image(
        base: Any, labels: tuple[str, ...], want: list[int],
        marks: dict[int, tuple[str, bool]]) -> None:
    rule = AndTruth(base, NAMES)
    out = Outputs(np.array([0.1, 0.25, 0.6, 0.05]), item=item(*labels))
    assert rule.classes(out) == want
    assert rule.marks(out) == marks
    # the batch dict's classes (`given`) say the same as the item
    given = Outputs(out.scores, given=GroundTruth(NAMES).of_item(item(*labels)))
    assert rule.classes(given) == want
    assert rule.in_graph() is None and rule.text().startswith(base.text() + " + ")


def test_record_role_and_extra_round_trip_and_old_lines_read() -> None:
    line = {"index": 0, "path": "x.png", "key": "x", "status": "ok", "width": 4, "height": 3,
            "predictions": [{"class": 2, "label": "c", "score": 0.6}],
            "targets": [{"class": 2, "label": "c", "score": 0.6, "map": "maps/x_c_0.60.png",
                         "overlay": None, "raw": None, "box": None, "range": None,
                         "low_confidence": False, "role": "predicted"},
                        {"class": 0, "label": "a", "score": 0.1, "map": "maps/x_a_0.10.png",
                         "overlay": None, "raw": None, "box": None, "range": [0.0, 2.5],
                         "low_confidence": True, "role": "truth", "extra": True}],
            "ground_truth": {"boxes": [], "labels": ["a"]}, "method": "m",
            "method_reason": "r", "run": "d", "timings": {}}
    record = Record.from_json(line)
    assert [(t.role, t.extra) for t in record.targets] == [("predicted", False), ("truth", True)]
    assert record.to_json() == line
    old = json.loads(json.dumps(line))
    for t in old["targets"]:
        t.pop("role")
        t.pop("extra", None)
    again = Record.from_json(old)  # a line of an older xaigraph
    assert [(t.role, t.extra) for t in again.targets] == [(None, False), (None, False)]
    assert again.to_json() == old  # written back byte for byte: no new keys
    old["targets"][0]["role"] = "guess"
    with pytest.raises(RecordError, match='"role"'):
        Record.from_json(old)


@pytest.fixture(scope="module")
def model(cnn_file: Callable[..., Path]) -> Path:
    return cnn_file("gap_fc", False, "onnx17")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class folder: 3 classes the model has (`class N`), 2 random images each."""
    root = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(3)
    for name in ("class 0", "class 1", "class 3"):
        (root / name).mkdir()
        for i in range(2):
            pixels = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"im{i}.png")
    return root


def softmax(model: Path, x: np.ndarray) -> np.ndarray:
    from xaigraph.session import Session

    z = Session.open(model).run([np.ascontiguousarray(x, np.float32)])[0].astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_explain_explains_the_predicted_and_the_true_class_of_a_wrong_image(
        model: Path, folders: Path, tmp_path: Path) -> None:
    """Against the model's own outputs: a wrong image has the map of its best class (the
    same bytes as a run without ground truth writes) and of its true class (the same as
    `--targets CLASS` writes), each with its role; a right image one map, "both"."""
    out = tmp_path / "out"
    code, _, stderr = invoke("explain", model, f"classes:{folders}", "-o", out, "--raw",
                             "--method", "reciprocam")
    assert code == 0, stderr
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    wrong = 0
    for r in records:
        truth = int(r["ground_truth"]["labels"][0].split()[1])
        best = r["predictions"][0]["class"]
        got = [(t["class"], t.get("role"), t.get("extra", False)) for t in r["targets"]]
        if best == truth:
            assert got == [(best, "both", False)]
            continue
        wrong += 1
        assert got == [(best, "predicted", False), (truth, "truth", True)]
        for t in r["targets"]:  # each map is its class's map, as --targets CLASS gives it
            alone = tmp_path / f"alone_{r['key'].replace('/', '_')}_{t['class']}"
            code, _, stderr = invoke("explain", model, r["path"], "-o", alone, "--raw",
                                     "--method", "reciprocam", "--targets", str(t["class"]))
            assert code == 0, stderr
            mine = json.loads((alone / "results.jsonl").read_text())["targets"][0]
            # another batch composition: equal to float32 rounding (docs/runtime.md)
            np.testing.assert_allclose(np.load(out / t["raw"]), np.load(alone / mine["raw"]),
                                       rtol=0, atol=1e-6)
            assert mine["score"] == t["score"] and "role" not in mine
    assert 0 < wrong < len(records)  # the data set has both kinds
    card = json.loads((out / "run.json").read_text())
    assert card["options"]["targets"] == "topk:1" + AndTruth.SUFFIX


def test_eval_metrics_are_those_of_the_ground_truth_maps_as_before(
        model: Path, folders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """eval adds a wrong image's predicted map (`extra`) and measures the same maps as the
    rule before it (GroundTruth alone): metrics.json's figures are equal."""
    args = ("--methods", "reciprocam,rise", "--steps", "4", "--resamples", "50",
            "--num-masks", "16", "--mask-cells", "3")
    new = tmp_path / "new"
    code, _, stderr = invoke("eval", model, f"classes:{folders}", "-o", new, *args)
    assert code == 0, stderr
    with monkeypatch.context() as m:
        m.setattr(evaluate, "_ground_truth",
                  lambda spec: GroundTruth(tuple(spec.label(i) for i in range(spec.num_classes))))
        old = tmp_path / "old"
        code, _, stderr = invoke("eval", model, f"classes:{folders}", "-o", old, *args)
        assert code == 0, stderr
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (new, old))
    assert a["images"] == b["images"] and a["summary"] == b["summary"]
    assert a["per_class"] == b["per_class"]
    for method in ("reciprocam", "rise"):
        records = [json.loads(x) for x in
                   (new / method / "results.jsonl").read_text().splitlines()]
        extra = [(r["key"], t) for r in records for t in r["targets"] if t.get("extra")]
        wrong = [r for r in records if r["predictions"][0]["class"] != int(
            r["ground_truth"]["labels"][0].split()[1])]
        assert wrong and len(extra) == len(wrong)
        for (key, t), r in zip(extra, wrong, strict=True):
            assert key == r["key"] and t["role"] == "predicted"
            assert t["class"] == r["predictions"][0]["class"]
            assert (new / method / t["raw"]).is_file()


def test_an_extra_class_costs_no_extra_model_run(model: Path) -> None:
    """White-box: one inference gives every class's map (the batch is run once whatever the
    targets); RISE: one set of masked images scores every class, so a second class adds no
    model call and leaves the first class's map as it was."""
    from dataclasses import replace

    from xaigraph.explain import blackbox
    from xaigraph.explain.explainer import Explainer
    from xaigraph.explain.options import BlackBoxOptions
    from xaigraph.explain.plan import prepare

    x = np.random.default_rng(0).random((2, 3, 16, 16), np.float32) * 255
    spec = prepare(model, method="reciprocam", targets="predicted", raw=True, truth=True)
    assert isinstance(spec.targets, AndTruth)
    explainer = Explainer(spec)
    calls: list[int] = []
    real = explainer.fn.__call__
    explainer.fn = lambda feeds, outputs: calls.append(len(feeds)) or real(feeds, outputs)
    best = softmax(model, x).argmax(axis=1)
    other = (best + 1) % spec.num_classes
    given = np.stack([other, np.full(2, -1)], axis=1)
    out = explainer({"index": np.arange(2), "input": x, "classes": given})
    assert calls == [2]  # one inference for the batch
    assert out["targets"].tolist() == [[best[0], other[0]], [best[1], other[1]]]
    every = Explainer(replace(spec, targets=TopK(spec.num_classes)))(
        {"index": np.arange(2), "input": x})
    for b in range(2):
        order = every["targets"][b].tolist()
        np.testing.assert_array_equal(out["raw"][b, 1], every["raw"][b, order.index(other[b])])

    options = BlackBoxOptions(num_masks=32, cells=3)
    counted: list[int] = []

    def predict(z: np.ndarray) -> np.ndarray:
        counted.append(len(z))
        return softmax(model, z)

    one = blackbox.explain_one(x[:1], predict, "rise", options, [int(best[0])])
    n_one, counted[:] = list(counted), []
    two = blackbox.explain_one(x[:1], predict, "rise", options, [int(best[0]), int(other[0])])
    assert counted == n_one  # the same masked images, the same calls
    np.testing.assert_allclose(two.maps[0], one.maps[0], rtol=1e-6, atol=1e-9)


def test_detectors_and_fixed_maps_keep_the_targets_asked(
        cnn_file: Callable[..., Path], detector_file: Callable[..., Path],
        tmp_path: Path) -> None:
    """Nothing is added where "wrong" is not one class (a detector's boxes, white-box or
    black-box) or where the model has the maps of its chosen classes only (insert
    --targets): the targets stay as asked, and such a model is not refused."""
    import xaigraph
    from tests.explain import detector_models as dm
    from xaigraph.explain.plan import prepare
    from xaigraph.explain.targets import Boxes

    spec = prepare(detector_file(1, "onnx17"), targets="predicted", truth=True)
    assert spec.detector and spec.targets == Predicted()
    boxes = dm.save(dm.bright_box_detector(), tmp_path / "det.onnx")
    spec = prepare(boxes, method="rise", targets="topk:2", truth=True)
    assert spec.targets == Boxes(0.5, k=2)
    fixed = tmp_path / "fixed.onnx"
    xaigraph.save(xaigraph.insert(cnn_file("gap_fc", False, "onnx17"), "reciprocam",
                                  targets="topk:1", output_format="onnx"), fixed)
    spec = prepare(fixed, targets="predicted", truth=True)
    assert spec.targets == Predicted()
    plain = prepare(cnn_file("gap_fc", False, "onnx17"), targets="predicted", truth=True)
    assert plain.targets == AndTruth(Predicted(), tuple(f"class {i}" for i in range(
        plain.num_classes)))


def test_max_maps_names_the_targets_given(model: Path, folders: Path, tmp_path: Path) -> None:
    """--max-maps counts the maps --targets asks for (a wrong image's one or two more are
    not counted) and names --targets as given."""
    code, _, stderr = invoke("explain", model, f"classes:{folders}", "-o", tmp_path / "o",
                             "--targets", "all", "--max-maps", "2")
    assert code == 2 and "error: --targets all asks for 5 maps per image" in stderr
    assert not (tmp_path / "o").exists()

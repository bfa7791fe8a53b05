"""`xaigraph eval` end to end on a tiny model and a generated COCO data set: the files, the
numbers against independent computations, --from-explain, labels only, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.explain.test_metrics import reference_curves
from xaigraph.cli import cli
from xaigraph.explain import render, stats
from xaigraph.explain.evaluate import parse_metrics
from xaigraph.explain.inputs import Box, Item
from xaigraph.explain.targets import GroundTruth, Outputs
from xaigraph.session import Session

WIDTH, HEIGHT = 40, 32
CATEGORIES = ["class 1", "class_3"]  # "class N" is how explain names an unlabelled class N
BOX = [5.0, 4.0, 25.0, 18.0]  # x1 y1 x2 y2


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(6):
        pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"im{i}.png")
        images.append({"id": i + 1, "file_name": f"im{i}.png", "width": WIDTH,
                       "height": HEIGHT})
        x1, y1, x2, y2 = BOX
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2,
                     "bbox": [x1, y1, x2 - x1, y2 - y1]})
    path = root / "instances_val.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": CATEGORIES[0]}, {"id": 2, "name": CATEGORIES[1]}]}))
    return path


@pytest.fixture(scope="module")
def model(cnn_file: Callable[..., Path]) -> Path:
    return cnn_file("gap_fc", False, "onnx17")


@pytest.fixture(scope="module")
def evaluated(model: Path, coco: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("eval") / "out"
    code, stdout, stderr = invoke("eval", model, coco, "-o", out, "--methods",
                                  "reciprocam,activationmap", "--steps", "8")
    assert code == 0, stderr
    assert "reciprocam" in stdout and "deletion_auc" in stdout and "[" in stdout
    return out, json.loads((out / "metrics.json").read_text())


def softmax_predict(model: Path) -> Callable[[np.ndarray], np.ndarray]:
    session = Session.open(model)

    def predict(x: np.ndarray) -> np.ndarray:
        z = session.run([np.ascontiguousarray(x, np.float32)])[0].astype(np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return predict


def test_files_and_layout(evaluated: tuple[Path, dict[str, Any]]) -> None:
    out, doc = evaluated
    assert doc["methods"] == ["reciprocam", "activationmap"]
    assert (out / "metrics.md").read_text().startswith("# Saliency-map metrics")
    for method in doc["methods"]:
        assert (out / method / "results.jsonl").is_file()
        assert (out / method / "run.json").is_file()
    assert doc["metrics"]["deletion_auc"]["direction"] == "lower"
    assert doc["metrics"]["insertion_auc"]["params"]["steps"] == 8
    assert len(doc["images"]) == 12  # 6 images, one ground-truth class each, 2 methods


def test_explained_classes_are_the_ground_truth_by_name(evaluated: tuple[Path, dict]) -> None:
    _, doc = evaluated
    rows = [r for r in doc["images"] if r["method"] == "reciprocam"]
    assert [r["class"] for r in rows] == [1, 3, 1, 3, 1, 3]
    assert {r["label"] for r in rows} == {"class 1", "class 3"}


def test_numbers_against_independent_computations(evaluated: tuple[Path, dict], model: Path,
                                                  coco: Path) -> None:
    out, doc = evaluated
    predict = softmax_predict(model)
    record = json.loads((out / "reciprocam" / "results.jsonl").read_text().splitlines()[1])
    target = record["targets"][0]
    raw = np.load(out / "reciprocam" / target["raw"])
    unit = (raw - raw.min()) / (raw.max() - raw.min())
    photo = Image.open(coco.parent / "images" / "im1.png").convert("RGB")
    # the tiny model's default preprocessing: the centred 32 x 32 square (columns 4..35),
    # resized to 16 x 16 (bilinear), pixels as they are
    crop = (4, 0, 36, 32)
    x = np.asarray(photo.resize((16, 16), Image.Resampling.BILINEAR, box=crop),
                   np.float32).transpose(2, 0, 1)[None]
    row = next(r for r in doc["images"] if r["method"] == "reciprocam" and r["key"] == "im1")
    # pointing game: the argmax of the map on the original, within 15 * 32 / 224 px of the box
    class _Placement:
        image_box = (4.0, 0.0, 36.0, 32.0)
        input_box = (0.0, 0.0, 16.0, 16.0)

    values, seen = render.resample(unit, _Placement(), WIDTH, HEIGHT, (16, 16))
    values = np.where(seen, values, 0.0)
    assert seen[:, 4:36].all() and not seen[:, :4].any() and not seen[:, 36:].any()
    py, px = np.unravel_index(int(np.argmax(values)), values.shape)
    dx = max(BOX[0] - (px + 0.5), (px + 0.5) - BOX[2], 0.0)
    dy = max(BOX[1] - (py + 0.5), (py + 0.5) - BOX[3], 0.0)
    assert row["pointing_game"] == (1.0 if np.hypot(dx, dy) <= 15 * 32 / 224 else 0.0)
    inside = values[4:18, 5:25].sum() / values.sum()
    assert row["mass_in_box"] == pytest.approx(inside, abs=1e-5)
    # insertion / deletion one image at a time, at the model input's resolution
    at_input = render.resample(unit, type("P", (), {"image_box": (0, 0, 16, 16),
                                                    "input_box": (0, 0, 16, 16)})(),
                               16, 16, (16, 16))[0]
    from xaigraph.explain.metrics import blur

    ins, dele = reference_curves(x, at_input, 3, predict, 8, np.zeros(1, np.float32),
                                 blur(x))
    assert row["insertion_auc"] == pytest.approx(ins, abs=1e-5)
    assert row["deletion_auc"] == pytest.approx(dele, abs=1e-5)
    # average drop and complexity
    masked = at_input[None, None] * x
    drop = max(0.0, predict(x)[0, 3] - predict(masked)[0, 3]) / predict(x)[0, 3]
    assert row["average_drop"] == pytest.approx(drop, abs=1e-5)
    assert row["complexity"] == pytest.approx(at_input.mean(), abs=1e-5)


def test_summary_is_the_mean_with_its_bootstrap_interval(evaluated: tuple[Path, dict]
                                                          ) -> None:
    _, doc = evaluated
    for method in doc["methods"]:
        values = [r["insertion_auc"] for r in doc["images"] if r["method"] == method]
        got = doc["summary"][method]["insertion_auc"]
        assert got["n"] == 6 and got["mean"] == pytest.approx(np.mean(values))
        assert got["ci95"] == pytest.approx(list(stats.bootstrap_ci(values)))
        per = doc["per_class"][method]["class 3"]["pointing_game"]
        hits = [r["pointing_game"] for r in doc["images"]
                if r["method"] == method and r["label"] == "class 3"]
        assert per["n"] == 3 and per["mean"] == pytest.approx(np.mean(hits))


def test_from_explain_reuses_a_given_out_dir(model: Path, coco: Path, tmp_path: Path,
                                             evaluated: tuple[Path, dict]) -> None:
    given = tmp_path / "given"
    code, _, stderr = invoke("explain", model, coco, "-o", given, "-m", "reciprocam",
                             "--raw", "--targets", "1")
    assert code == 0, stderr
    out = tmp_path / "eval"
    code, stdout, stderr = invoke("eval", model, coco, "-o", out, "--from-explain", given,
                                  "--steps", "8", "--json")
    assert code == 0, stderr
    obj = json.loads(stdout)
    assert obj["ok"] and obj["methods"] == ["reciprocam"]
    assert (out / "reciprocam").resolve() == given.resolve()
    doc = json.loads((out / "metrics.json").read_text())
    assert {r["class"] for r in doc["images"]} == {1}  # the given run's targets
    made = {(r["key"], r["class"]): r for r in evaluated[1]["images"]
            if r["method"] == "reciprocam"}
    shared = [r for r in doc["images"] if (r["key"], r["class"]) in made]
    assert len(shared) == 3  # the images whose ground truth is class 1: same maps, same numbers
    for r in shared:
        assert r == made[r["key"], r["class"]]


def test_class_folders_give_model_metrics_only(model: Path, tmp_path: Path) -> None:
    for name in ("class 2", "class 4"):
        (tmp_path / "data" / name).mkdir(parents=True)
        Image.new("RGB", (20, 20), (200, 10, 10)).save(tmp_path / "data" / name / "a.png")
    out = tmp_path / "out"
    code, _, stderr = invoke("eval", model, f"classes:{tmp_path / 'data'}", "-o", out,
                             "--methods", "activationmap", "--steps", "4", "--metrics",
                             "pointing_game,insertion_deletion")
    assert code == 0, stderr
    doc = json.loads((out / "metrics.json").read_text())
    assert list(doc["metrics"]) == ["pointing_game", "insertion_auc", "deletion_auc"]
    assert sorted(r["class"] for r in doc["images"]) == [2, 4]
    assert doc["summary"]["activationmap"]["pointing_game"] == {"mean": None, "ci95": None,
                                                                "n": 0}
    assert doc["summary"]["activationmap"]["deletion_auc"]["n"] == 2


@pytest.mark.parametrize("args, text", [
    (["--methods", "reciprocam", "--metrics", "pointing"], "unknown metric 'pointing'"),
    (["--methods", "reciprocam", "--steps", "0"], "--steps must be at least 1"),
    ([], "name the methods"),
    (["--methods", "nosuch"], "nosuch"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(model: Path, coco: Path, tmp_path: Path,
                                                     args: list[str], text: str) -> None:
    out = tmp_path / "out"
    code, _, stderr = invoke("eval", model, coco, "-o", out, *args)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1 and text in stderr
    assert not out.exists()


def test_from_explain_without_raw_maps_is_refused(model: Path, coco: Path,
                                                  tmp_path: Path) -> None:
    given = tmp_path / "given"
    assert invoke("explain", model, coco, "-o", given, "-m", "reciprocam")[0] == 0
    code, _, stderr = invoke("eval", model, coco, "-o", tmp_path / "out", "--from-explain",
                             given)
    assert code == 2 and "--raw" in stderr and not (tmp_path / "out").exists()


def test_parse_metrics_and_the_class_rule() -> None:
    assert parse_metrics("adcc,pointing_game") == ("pointing_game", "average_drop",
                                                    "coherency", "complexity", "adcc")
    item = Item(0, Path("a.png"), "a", boxes=(Box((0, 0, 1, 1), 0, "Tiger_Cat"),),
                labels=("tiger cat", "dog"))
    rule = GroundTruth(("dog", "tiger cat", "fish"))
    scores = np.array([0.1, 0.2, 0.7])
    assert rule.classes(Outputs(scores, item=item)) == [1, 0]
    assert rule.classes(Outputs(scores, item=Item(1, Path("b.png"), "b"))) == [2]
    assert rule.text() == "eval: " + rule.RULE


def test_eval_and_the_report_match_hyphenated_class_names_alike() -> None:
    # 21 ImageNet labels hold a '-' (black-footed ferret, go-kart, ...). A data set that
    # spells one with a space or '_' names the same class for the report's flags; eval must
    # explain that class (not the predicted one) and find its boxes for the pointing game,
    # and --targets must accept that spelling.
    from xaigraph.explain import evaluate, report
    from xaigraph.labels import class_index, imagenet_labels

    labels = imagenet_labels()
    hyphenated = [i for i, name in enumerate(labels) if "-" in name]
    assert len(hyphenated) == 21
    scores = np.full(len(labels), 1e-4)
    scores[0] = 0.9  # the predicted class is another one (tench)
    for i in hyphenated:
        name = labels[i]
        for spelling in (name.replace("-", " "), name.replace("-", "_").upper()):
            item = Item(0, Path("a.png"), "a", boxes=(Box((1, 2, 3, 4), None, spelling),))
            flagged, missed = report.flag_labels([(name, 0.8)], [spelling])
            assert flagged == [(name, 0.8, "TP")] and missed == []  # the report: the same class
            eval_classes = GroundTruth(tuple(labels)).classes(Outputs(scores, item=item))
            assert eval_classes == [i], spelling  # eval: the same class too
            assert evaluate._boxes_of(item, name) == [(1, 2, 3, 4)], spelling
            assert class_index(spelling, labels, "--targets") == i


def test_black_box_method_with_its_options(model: Path, coco: Path, tmp_path: Path) -> None:
    # the issue's --methods mix: white-box and RISE side by side; --num-masks reaches RISE
    out = tmp_path / "out"
    code, stdout, stderr = invoke("eval", model, coco, "-o", out, "--methods",
                                  "reciprocam,rise", "--num-masks", "12", "--mask-cells", "3",
                                  "--steps", "4", "--resamples", "50")
    assert code == 0, stderr
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["methods"] == ["reciprocam", "rise"]
    card = json.loads((out / "rise" / "run.json").read_text())
    assert card["options"]["blackbox"]["num_masks"] == 12
    assert card["options"]["blackbox"]["cells"] == 3
    rows = [r for r in doc["images"] if r["method"] == "rise"]
    assert [r["class"] for r in rows] == [1, 3, 1, 3, 1, 3]
    assert all(r["deletion_auc"] is not None and r["coherency"] is not None for r in rows)
    header = next(line for line in stdout.splitlines() if line.startswith("metric"))
    assert header.split()[1:] == ["reciprocam", "rise"]  # side by side on the terminal
    md = (out / "metrics.md").read_text()
    assert "| metric | reciprocam | rise |" in md
    assert "| class | metric | reciprocam | rise |" in md and "| class 3 | adcc ↑ |" in md


def test_precision_reaches_the_maps_and_the_metrics(model: Path, coco: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """--precision bf16: the explain OUT_DIR says so and the metrics' session is compiled
    with it; the metrics stay near f32's."""
    from xaigraph import session as session_module

    hints: list[str | None] = []
    real_open = session_module.Session.open.__func__

    def spy(cls: Any, model: Any, engine: Any = None, **kwargs: Any) -> Any:
        hints.append(kwargs.get("precision", "f32"))
        return real_open(cls, model, engine, **kwargs)

    monkeypatch.setattr(session_module.Session, "open", classmethod(spy))
    docs = {}
    for precision in ("f32", "bf16"):
        out = tmp_path / precision
        hints.clear()
        code, _, stderr = invoke("eval", model, coco, "-o", out, "--methods", "rise",
                                 "--num-masks", "24", "--mask-cells", "3", "--steps", "4",
                                 "--resamples", "50", "--precision", precision)
        assert code == 0, stderr
        assert hints and set(hints) == {precision}  # every session: maps and metrics
        card = json.loads((out / "rise" / "run.json").read_text())
        assert card["runtime"] == "openvino"
        assert card["options"].get("precision", "f32") == precision
        docs[precision] = json.loads((out / "metrics.json").read_text())
    for a, b in zip(docs["f32"]["images"], docs["bf16"]["images"], strict=True):
        assert a["class"] == b["class"]
        assert abs(a["insertion_auc"] - b["insertion_auc"]) < 0.05
    code, _, stderr = invoke("eval", model, coco, "-o", tmp_path / "ort", "--methods", "rise",
                             "--runtime", "onnxruntime", "--precision", "bf16")
    assert code == 2 and "ONNX Runtime runs f32" in stderr
    assert not (tmp_path / "ort").exists()


def test_a_detector_is_refused_in_one_line(detector_file: Callable[..., Path], coco: Path,
                                           tmp_path: Path) -> None:
    detector = detector_file(3, "onnx17")
    for methods in ("reciprocam", "rise", "detclassprobabilitymap"):
        out = tmp_path / methods
        code, _, stderr = invoke("eval", detector, coco, "-o", out, "--methods", methods)
        assert code == 2, stderr
        line = stderr.strip()
        assert len(line.splitlines()) == 1
        assert "is a detector" in line and "classifiers" in line and "not yet" in line
        assert not out.exists()


@pytest.mark.parametrize("layout", ["voc", "yolo"])
def test_voc_and_yolo_ground_truth_give_cocos_numbers(layout: str, model: Path, coco: Path,
                                                      tmp_path: Path,
                                                      evaluated: tuple[Path, dict]) -> None:
    # the COCO set's images and boxes written as Pascal VOC (1-based inclusive bndbox) and as
    # YOLO (normalised centre and size, no names: classes match the model's by index)
    root = tmp_path / layout
    x1, y1, x2, y2 = BOX
    for i in range(6):
        photo = coco.parent / "images" / f"im{i}.png"
        if layout == "voc":
            (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
            (root / "Annotations").mkdir(exist_ok=True)
            (root / "JPEGImages" / photo.name).write_bytes(photo.read_bytes())
            (root / "Annotations" / f"im{i}.xml").write_text(
                f"<annotation><filename>{photo.name}</filename><object><name>"
                f"{CATEGORIES[i % 2]}</name><bndbox><xmin>{x1 + 1:g}</xmin><ymin>{y1 + 1:g}"
                f"</ymin><xmax>{x2:g}</xmax><ymax>{y2:g}</ymax></bndbox></object>"
                "</annotation>")
        else:
            (root / "images").mkdir(parents=True, exist_ok=True)
            (root / "labels").mkdir(exist_ok=True)
            (root / "images" / photo.name).write_bytes(photo.read_bytes())
            (root / "labels" / f"im{i}.txt").write_text(
                f"{1 + 2 * (i % 2)} {(x1 + x2) / 2 / WIDTH} {(y1 + y2) / 2 / HEIGHT} "
                f"{(x2 - x1) / WIDTH} {(y2 - y1) / HEIGHT}\n")
    out = tmp_path / "out"
    code, _, stderr = invoke("eval", model, root, "-o", out, "--methods", "reciprocam",
                             "--metrics", "localisation", "--resamples", "50")
    assert code == 0, stderr
    doc = json.loads((out / "metrics.json").read_text())
    want = {(r["key"], r["class"]): r for r in evaluated[1]["images"]
            if r["method"] == "reciprocam"}
    assert len(doc["images"]) == 6
    for r in doc["images"]:
        assert r["pointing_game"] == want[r["key"], r["class"]]["pointing_game"]
        assert r["mass_in_box"] == pytest.approx(want[r["key"], r["class"]]["mass_in_box"],
                                                 abs=1e-6)


def test_a_second_run_reuses_the_maps(model: Path, coco: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("eval", model, coco, "-o", out, "--methods", "activationmap", "--steps", "4",
            "--metrics", "insertion_deletion,complexity", "--resamples", "50")
    assert invoke(*args)[0] == 0
    files = sorted((out / "activationmap" / "raw").glob("*.npy"))
    records = [json.loads(line) for line in
               (out / "activationmap" / "results.jsonl").read_text().splitlines()]
    targets = [t for r in records for t in r["targets"]]
    assert len(files) == len(targets) and sum(not t.get("extra") for t in targets) == 6
    stamps = [f.stat().st_mtime_ns for f in files]
    lines = (out / "activationmap" / "results.jsonl").read_text()
    first = json.loads((out / "metrics.json").read_text())
    code, stdout, stderr = invoke(*args)
    assert code == 0, stderr
    assert [f.stat().st_mtime_ns for f in files] == stamps  # not explained again
    assert (out / "activationmap" / "results.jsonl").read_text() == lines
    assert json.loads((out / "metrics.json").read_text())["images"] == first["images"]
    assert "Per class" in stdout and "class 3" in stdout


def test_ground_truth_classes_travel_in_the_batch_dict() -> None:
    """`targets.item_classes`: each item's ground-truth classes, -1 padded; None for targets
    that read no item; the target reads them back (`Outputs.given`), else the best class."""
    from xaigraph.explain.targets import TopK, item_classes

    rule = GroundTruth(("a", "b", "c"))
    items = [Item(0, Path("0.png"), "0", labels=("c", "a")), Item(1, Path("1.png"), "1"),
             Item(2, Path("2.png"), "2", boxes=(Box((0, 0, 1, 1), None, "B"),))]
    got = item_classes(rule, items)
    assert got is not None and got.tolist() == [[2, 0], [-1, -1], [1, -1]]
    assert item_classes(TopK(2), items) is None
    scores = np.array([0.1, 0.2, 0.7])
    assert rule.classes(Outputs(scores, given=[0])) == [0]
    assert rule.classes(Outputs(scores, given=[])) == [2]


@pytest.mark.parametrize("method", ["reciprocam", "activationmap", "rise"])
def test_the_explainer_explains_the_classes_of_the_batch_dict(model: Path, method: str
                                                              ) -> None:
    """A batch dict with `classes` gets maps of those classes: a white-box method's maps
    selected (equal to the maps of an All run), RISE's computed for those classes only (equal
    to a run that asks for them), a one-map method's map labelled with each."""
    from dataclasses import replace

    from xaigraph.explain.blackbox import BlackBoxOptions
    from xaigraph.explain.explainer import Explainer
    from xaigraph.explain.plan import prepare

    options = BlackBoxOptions(num_masks=16, cells=3)
    spec = prepare(model, method=method, targets="all", raw=True, blackbox=options)
    rule = GroundTruth(tuple(spec.label(i) for i in range(spec.num_classes)))
    explainer = Explainer(replace(spec, targets=rule))
    x = np.random.default_rng(0).random((2, 3, *spec.preprocess.size), np.float32) * 255
    given = np.array([[3, 1], [0, -1]], np.int64)
    out = explainer({"index": np.arange(2), "input": x, "classes": given})
    assert out["targets"].tolist() == [[3, 1], [0, -1]]
    if method == "rise":
        calls: list[list[int]] = []
        real = explainer._blackbox
        explainer._blackbox = lambda xb, classes: calls.append(classes) or real(xb, classes)
        again = explainer({"index": np.arange(2), "input": x, "classes": given})
        assert calls == [[3, 1], [0]]  # RISE computes those classes' maps only
        np.testing.assert_array_equal(again["raw"], out["raw"])
        return
    every = Explainer(spec)({"index": np.arange(2), "input": x})
    if method == "activationmap":
        np.testing.assert_array_equal(out["raw"][0, 0], every["raw"][0, 0])
        np.testing.assert_array_equal(out["raw"][0, 1], every["raw"][0, 0])
    else:
        pos = every["targets"][0].tolist()
        np.testing.assert_array_equal(out["raw"][0], every["raw"][0, [pos.index(3),
                                                                       pos.index(1)]])
        np.testing.assert_array_equal(out["maps"][1, 0], every["maps"][1, pos.index(0)])


def test_metrics_do_not_change_with_the_colour_scale_or_legend(model: Path, coco: Path,
                                                               tmp_path: Path) -> None:
    """eval reads the raw maps, the report the map files: neither changes with the overlays'
    colour scale or legend (the maps/ files are the same bytes)."""
    docs = []
    for name, flags in (("bare", ["--no-legend", "--map-scale", "map"]),
                        ("legend", ["--map-scale", "score"])):
        given = tmp_path / name
        code, _, stderr = invoke("explain", model, coco, "-o", given, "-m", "reciprocam",
                                 "--raw", "--targets", "topk:2", *flags)
        assert code == 0, stderr
        code, _, stderr = invoke("eval", model, coco, "-o", tmp_path / f"eval_{name}",
                                 "--from-explain", given, "--steps", "8")
        assert code == 0, stderr
        docs.append(json.loads((tmp_path / f"eval_{name}" / "metrics.json").read_text()))
    assert docs[0]["images"] and docs[0]["images"] == docs[1]["images"]
    assert docs[0]["summary"] == docs[1]["summary"]
    for m in sorted((tmp_path / "bare" / "maps").iterdir()):
        assert (tmp_path / "legend" / "maps" / m.name).read_bytes() == m.read_bytes()

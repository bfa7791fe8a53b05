"""`xaigraph eval MODEL ... --reference FP32_MODEL`: compressed copies of a tiny classifier
(FP16 IR, INT8 ONNX QDQ, INT8 FakeQuantize IR, INT8 weight-compressed IR, all made in
`compressed_models`) against their FP32 source; each figure against an independent
computation one image at a time; the known answers (itself: 1, 1, 1; a uniform map: 0);
the target layer found at the same place; bad references refused."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import spearmanr

from tests.explain.compressed_models import build, calibration_inputs
from tests.explain.run_models import photos
from xaigraph.cli import cli
from xaigraph.errors import BadInputError
from xaigraph.explain import stats
from xaigraph.explain.evaluate import EvalOptions, evaluate
from xaigraph.explain.reference import Given, layout, rank_correlation, top_iou, top_set
from xaigraph.explain.targets import Outputs
from xaigraph.session import Session

METHODS = "reciprocam,activationmap"


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return photos(tmp_path_factory.mktemp("photos") / "img", 6)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, images: Path) -> dict[str, Path]:
    return build(tmp_path_factory.mktemp("models"), images)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, models: dict[str, Path], images: Path
         ) -> dict[str, tuple[Path, dict[str, Any]]]:
    """eval of each model against fp32.onnx: (EVAL_DIR, metrics.json)."""
    root = tmp_path_factory.mktemp("evals")
    done = {}
    for name in ("fp32.onnx", "int8_qdq.onnx", "negated.onnx", "flat.onnx"):
        out = root / name
        code, stdout, stderr = invoke("eval", models[name], images, "-o", out, "--methods",
                                      METHODS, "--metrics", "complexity", "--reference",
                                      models["fp32.onnx"])
        assert code == 0, stderr
        assert "Against the reference fp32.onnx" in stdout and "top10_iou" in stdout
        done[name] = (out, json.loads((out / "metrics.json").read_text()))
    return done


def _rows(doc: dict[str, Any], method: str) -> list[dict[str, Any]]:
    return [r for r in doc["reference"]["images"] if r["method"] == method]


# -- the figures on hand-made maps --------------------------------------------------------------

def test_rank_correlation_is_spearmans_rho() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 7))
    b = a + 0.5 * rng.standard_normal((7, 7))
    assert rank_correlation(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel())[0])
    ties = np.round(a, 0)  # many ties: average ranks, as scipy
    assert rank_correlation(ties, b) == pytest.approx(spearmanr(ties.ravel(), b.ravel())[0])
    assert rank_correlation(a, 3 * a + 1) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)


def test_a_uniform_map_agrees_with_nothing() -> None:
    """A uniform (all-red) map is never left out as undefined: rho 0 and IoU ~0.1 against
    a peaked map; two uniform maps agree."""
    peaked = np.arange(100, dtype=np.float64).reshape(10, 10)
    flat = np.full((10, 10), 7.0)
    assert rank_correlation(flat, peaked) == 0.0 and rank_correlation(peaked, flat) == 0.0
    assert rank_correlation(flat, flat + 1) == 1.0
    assert top_iou(flat, peaked) == pytest.approx(10 / 100)
    nan = np.full((10, 10), np.nan)
    assert rank_correlation(nan, peaked) == 0.0
    with_nan = peaked.copy()
    with_nan[9, 9] = np.nan  # ranks lowest: the top set moves down by one
    assert top_set(with_nan)[9, 8] and not top_set(with_nan)[9, 9]


def test_top_iou_by_counting() -> None:
    a = np.zeros((10, 10))
    b = np.zeros((10, 10))
    a.ravel()[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]] = np.arange(1, 11)
    b.ravel()[[5, 6, 7, 8, 9, 10, 11, 12, 13, 14]] = np.arange(1, 11)
    assert top_iou(a, b) == pytest.approx(5 / 15)  # 10 % of 100 = 10 pixels each, 5 shared
    assert top_iou(a, a) == 1.0
    small = np.arange(9.0).reshape(3, 3)  # ceil(0.9) = 1 pixel: the maximum
    assert top_set(small).sum() == 1 and top_set(small)[2, 2]


# -- the target layer of compressed models ------------------------------------------------------

def test_compressed_models_have_the_target_at_the_same_place(models: dict[str, Path]) -> None:
    """FP16 weights with Convert, Q/DQ pairs, FakeQuantize, u8 weights with Convert /
    Subtract / Multiply: the target map found after the same two Convs, before the same
    Gemm, with the same shape, as in the FP32 source."""
    source = layout(models["fp32.onnx"])
    assert (source.target_shape, source.before, source.after) == ((12, 8, 8), 2, 1)
    import onnx
    import openvino as ov

    kinds = {
        "fp16.xml": "Convert", "int8_fq.xml": "FakeQuantize", "int8_wc.xml": "Subtract"}
    for name, op in kinds.items():
        found = {o.get_type_name() for o in ov.Core().read_model(str(models[name])).get_ops()}
        assert op in found, name  # the copy is compressed as claimed
    qdq = {n.op_type for n in onnx.load(str(models["int8_qdq.onnx"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= qdq
    for name in ("fp16.xml", "int8_qdq.onnx", "int8_fq.xml", "int8_wc.xml"):
        found = layout(models[name])
        assert (found.inputs, found.outputs, found.num_classes) == (
            source.inputs, source.outputs, source.num_classes), name
        assert (found.target_shape, found.before, found.after) == (
            source.target_shape, source.before, source.after), name


def test_every_compressed_copy_is_close_to_its_source(models: dict[str, Path],
                                                      images: Path, tmp_path: Path) -> None:
    """FP16 and the three INT8 forms through eval: high figures (they are good copies)."""
    for name in ("fp16.xml", "int8_fq.xml", "int8_wc.xml"):
        doc = evaluate(models[name], [str(images)], tmp_path / name, EvalOptions(
            methods=("reciprocam",), metrics=("complexity",),
            reference=models["fp32.onnx"]))
        got = doc["reference"]["summary"]["reciprocam"]
        assert got["rank_correlation"]["mean"] > 0.8, name
        assert got["prediction_agreement"]["mean"] == 1.0, name
        assert got["rank_correlation"]["n"] == 6 and got["prediction_agreement"]["n"] == 6


# -- eval end to end ----------------------------------------------------------------------------

def test_the_model_against_itself_gives_ones(runs: dict[str, tuple[Path, dict]]) -> None:
    out, doc = runs["fp32.onnx"]
    block = doc["reference"]
    assert block["explain_dirs"] == {"reciprocam": "reference/reciprocam",
                                     "activationmap": "reference/activationmap"}
    for method in ("reciprocam", "activationmap"):
        assert (out / "reference" / method / "results.jsonl").is_file()
        rows = _rows(doc, method)
        assert len(rows) == 6
        for r in rows:
            assert r["rank_correlation"] == 1.0 and r["top10_iou"] == 1.0
            assert r["prediction_agreement"] == 1.0
        for name in ("rank_correlation", "top10_iou", "prediction_agreement"):
            assert block["summary"][method][name] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 6}
    md = (out / "metrics.md").read_text()
    assert "## Against the reference fp32.onnx" in md and "| top10_iou ↑ |" in md
    assert list(doc)[:9] == ["methods", "model", "data", "class_rule", "explain_dirs",
                             "metrics", "bootstrap", "summary", "per_class"]


def _predict(model: Path, x: np.ndarray) -> int:
    return int(np.argmax(Session.open(model).run([x])[0][0]))


def test_figures_against_independent_computations(runs: dict[str, tuple[Path, dict]],
                                                  models: dict[str, Path],
                                                  images: Path) -> None:
    """INT8 QDQ against FP32, one image at a time: scipy's Spearman on the two raw maps,
    the top-10 % sets by sorting, the top-1 of each model run by its own session."""
    out, doc = runs["int8_qdq.onnx"]
    inputs = calibration_inputs(models["fp32.onnx"], images)
    keys = [p.stem for p in sorted(images.glob("*.png"))]
    for method in ("reciprocam", "activationmap"):
        mine = {json.loads(line)["key"]: json.loads(line)
                for line in (out / method / "results.jsonl").read_text().splitlines()}
        theirs = {json.loads(line)["key"]: json.loads(line) for line in (
            out / "reference" / method / "results.jsonl").read_text().splitlines()}
        rows = _rows(doc, method)
        assert [r["key"] for r in rows] == keys
        for r, x in zip(rows, inputs, strict=True):
            a = np.load(out / method / mine[r["key"]]["targets"][0]["raw"]).astype(np.float64)
            b = np.load(out / "reference" / method / theirs[r["key"]]["targets"][0]["raw"]
                        ).astype(np.float64)
            assert a.shape == b.shape == (8, 8)
            assert r["rank_correlation"] == pytest.approx(
                spearmanr(a.ravel(), b.ravel())[0], abs=1e-6)
            k = math.ceil(0.1 * a.size)
            top_a = a >= np.sort(a.ravel())[::-1][k - 1]
            top_b = b >= np.sort(b.ravel())[::-1][k - 1]
            assert r["top10_iou"] == pytest.approx((top_a & top_b).sum() / (top_a | top_b).sum(),
                                                   abs=1e-6)
            agree = _predict(models["int8_qdq.onnx"], x) == _predict(models["fp32.onnx"], x)
            assert r["prediction_agreement"] == float(agree)
        for name in ("rank_correlation", "top10_iou", "prediction_agreement"):
            values = [r[name] for r in rows]
            got = doc["reference"]["summary"][method][name]
            assert got["mean"] == pytest.approx(np.mean(values))
            assert got["ci95"] == pytest.approx(list(stats.bootstrap_ci(values)))


def test_broken_copies_give_low_figures(runs: dict[str, tuple[Path, dict]]) -> None:
    """A negated head: ReciproCAM maps reversed (rho -1, top sets apart), top-1 changed;
    activationmap, which reads no head, unchanged. Zeroed conv2: uniform maps, rho exactly
    0 and the IoU of the reference's 7 top pixels with all 64."""
    negated = runs["negated.onnx"][1]
    for r in _rows(negated, "reciprocam"):
        assert r["rank_correlation"] == pytest.approx(-1.0, abs=1e-6)
        assert r["top10_iou"] == 0.0 and r["prediction_agreement"] == 0.0
    summary = negated["reference"]["summary"]
    assert summary["reciprocam"]["prediction_agreement"]["mean"] == 0.0
    assert summary["activationmap"]["rank_correlation"]["mean"] == 1.0
    flat = runs["flat.onnx"][1]
    for r in _rows(flat, "reciprocam"):
        assert r["rank_correlation"] == 0.0
        assert r["top10_iou"] == pytest.approx(7 / 64, abs=1e-6)
    assert flat["reference"]["summary"]["reciprocam"]["rank_correlation"]["mean"] == 0.0


def test_the_reference_explains_the_models_classes(runs: dict[str, tuple[Path, dict]]) -> None:
    """Where the negated model's top-1 differs from the reference's, the reference's map is
    still of the model's class (the same class compared)."""
    out, doc = runs["negated.onnx"]
    rows = _rows(doc, "reciprocam")
    assert any(r["prediction_agreement"] == 0.0 for r in rows)  # the case exists
    theirs = {json.loads(line)["key"]: json.loads(line) for line in (
        out / "reference" / "reciprocam" / "results.jsonl").read_text().splitlines()}
    for r in rows:
        assert r["class"] == r["model_top1"]  # no ground truth: the model's predicted class
        assert [t["class"] for t in theirs[r["key"]]["targets"]] == [r["class"]]
        assert theirs[r["key"]]["predictions"][0]["class"] == r["reference_top1"]


def test_given_target_reads_the_mapping() -> None:
    target = Given({"a": [3, 1]})
    item = type("Item", (), {"key": "a"})()
    scores = np.array([0.1, 0.2, 0.3, 0.15, 0.25])
    assert target.classes(Outputs(scores, item=item)) == [3, 1]
    assert target.classes(Outputs(scores, given=[4])) == [4]
    assert target.classes(Outputs(scores, item=type("Item", (), {"key": "b"})())) == [2]


def test_black_box_and_a_second_run_resumes(models: dict[str, Path], images: Path,
                                            tmp_path: Path) -> None:
    """RISE through the same path; a second eval reuses both folders (same numbers)."""
    args = ["eval", models["fp16.xml"], images, "-o", tmp_path / "out", "--methods", "rise",
            "--num-masks", "40", "--metrics", "complexity", "--reference",
            models["fp32.onnx"], "--json"]
    code, stdout, stderr = invoke(*args)
    assert code == 0, stderr
    first = json.loads(stdout)["reference"]["summary"]["rise"]
    assert first["prediction_agreement"]["mean"] == 1.0
    assert first["rank_correlation"]["mean"] > 0.9
    code, stdout, stderr = invoke(*args)
    assert code == 0, stderr
    assert json.loads(stdout)["reference"]["summary"]["rise"] == first


# -- bad references -----------------------------------------------------------------------------

def _mismatched(tmp_path: Path) -> dict[str, Path]:
    import onnx

    from tests import tiny_onnx
    from tests.explain.run_models import classifier

    found = {}
    found["size"] = tmp_path / "size.onnx"  # 32 x 32 input, 5 classes
    onnx.save_model(classifier(), str(found["size"]))
    found["classes"] = tmp_path / "classes.onnx"
    onnx.save_model(classifier(size=16, classes=7), str(found["classes"]))
    found["head"] = tmp_path / "head.onnx"  # a 1x1 Conv more after the target
    onnx.save_model(tiny_onnx.cnn("gap_mlp"), str(found["head"]))
    found["text"] = tmp_path / "notes.onnx"
    found["text"].write_text("not a model\n")
    return found


@pytest.mark.parametrize("case, text", [
    ("missing", "--reference {ref}: not found"),
    ("folder", "--reference {ref}: not a model file"),
    ("text", "--reference {ref}: "),
    ("size", "its inputs [3,32,32] are not fp32.onnx's [3,16,16]"),
    ("classes", "its outputs [7] are not fp32.onnx's [5]"),
    ("head", "its target layer is not where fp32.onnx's is"),
])
def test_bad_reference_is_one_line_exit_2_nothing_written(
        case: str, text: str, models: dict[str, Path], images: Path, tmp_path: Path) -> None:
    refs = _mismatched(tmp_path)
    refs["missing"] = tmp_path / "nothing.onnx"
    refs["folder"] = tmp_path
    ref = refs[case]
    out = tmp_path / "out"
    code, _, stderr = invoke("eval", models["fp32.onnx"], images, "-o", out, "--methods",
                                  METHODS, "--reference", ref)
    assert code == 2
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert text.format(ref=ref) in stderr
    assert not out.exists()


def test_api_refuses_a_bad_reference(models: dict[str, Path], images: Path,
                                     tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        evaluate(models["fp32.onnx"], [str(images)], tmp_path / "out", EvalOptions(
            methods=("activationmap",), reference=tmp_path / "no.onnx"))
    assert not (tmp_path / "out").exists()


def test_several_classes_per_image_from_a_given_out_dir(models: dict[str, Path],
                                                        images: Path, tmp_path: Path) -> None:
    """`--from-explain` of a topk:2 run: the reference explains both classes of each image,
    and each row compares the maps of its class."""
    given = tmp_path / "given"
    code, _, stderr = invoke("explain", models["int8_qdq.onnx"], images, "-o", given, "-m",
                             "reciprocam", "--raw", "--targets", "topk:2")
    assert code == 0, stderr
    out = tmp_path / "out"
    code, _, stderr = invoke("eval", models["int8_qdq.onnx"], images, "-o", out,
                             "--from-explain", given, "--metrics", "complexity",
                             "--reference", models["fp32.onnx"])
    assert code == 0, stderr
    doc = json.loads((out / "metrics.json").read_text())
    rows = doc["reference"]["images"]
    assert len(rows) == 12 and doc["reference"]["summary"]["reciprocam"][
        "prediction_agreement"]["n"] == 6
    theirs = {json.loads(line)["key"]: json.loads(line) for line in (
        out / "reference" / "reciprocam" / "results.jsonl").read_text().splitlines()}
    mine = {json.loads(line)["key"]: json.loads(line)
            for line in (given / "results.jsonl").read_text().splitlines()}
    for r in rows:
        assert [t["class"] for t in theirs[r["key"]]["targets"]] == [
            t["class"] for t in mine[r["key"]]["targets"]]
        a = next(np.load(given / t["raw"]) for t in mine[r["key"]]["targets"]
                 if t["class"] == r["class"])
        b = next(np.load(out / "reference" / "reciprocam" / t["raw"])
                 for t in theirs[r["key"]]["targets"] if t["class"] == r["class"])
        assert r["rank_correlation"] == pytest.approx(spearmanr(a.ravel(), b.ravel())[0],
                                                      abs=1e-6)


def test_a_reference_folder_of_another_model_is_refused(models: dict[str, Path],
                                                        images: Path, tmp_path: Path) -> None:
    """The reference's classes came from MODEL's folder: another MODEL in the same EVAL_DIR
    is refused without --force, and with it the reference is redone on the new classes."""
    out = tmp_path / "out"
    base = [images, "-o", out, "--methods", "reciprocam", "--metrics", "complexity",
            "--reference", models["fp32.onnx"]]
    code, _, stderr = invoke("eval", models["fp32.onnx"], *base)
    assert code == 0, stderr
    shutil.rmtree(out / "reciprocam")  # MODEL's own folder would be refused first
    code, _, stderr = invoke("eval", models["negated.onnx"], *base)
    assert code == 2 and "--force" in stderr and str(out / "reference" / "reciprocam") in stderr
    code, _, stderr = invoke("eval", models["negated.onnx"], *base, "--force")
    assert code == 0, stderr
    doc = json.loads((out / "metrics.json").read_text())
    for r in doc["reference"]["images"]:
        assert r["rank_correlation"] == pytest.approx(-1.0, abs=1e-6)

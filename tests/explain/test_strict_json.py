"""NaN and infinity (issue 21): every JSON file xaigraph writes is strict JSON (`null` where a
value is undefined), a map's name never says `nan`, and options that are not finite numbers
are refused in one line before anything is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from tests.explain.run_models import classifier, photos
from tests.explain.test_inputs import write_coco
from xaigraph import jsontext
from xaigraph.cli import cli


def strict(text: str) -> Any:
    """`text` as a strict JSON reader reads it: NaN, Infinity and -Infinity refused."""
    def reject(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=reject)


def strict_files(folder: Path) -> int:
    """Every JSON file under `folder` (results.jsonl line by line, the report's data.js as
    its one JSON value) parsed strictly; how many."""
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".json":
            strict(path.read_text(encoding="utf-8"))
        elif path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").splitlines():
                strict(line)
        elif path.name == "data.js":
            text = path.read_text(encoding="utf-8")
            strict(text[text.index("=") + 1:].strip().rstrip(";"))
        else:
            continue
        count += 1
    return count


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run-loop classifier with NaN class weights: every score is NaN."""
    model = classifier()
    for init in model.graph.initializer:
        if init.name == "fc":
            weights = np.full_like(numpy_helper.to_array(init), np.nan)
            init.CopyFrom(numpy_helper.from_array(weights, "fc"))
    path = tmp_path_factory.mktemp("nan") / "nan.onnx"
    onnx.save(model, path)
    return path


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_dumps_writes_null_for_undefined_values_and_escapes_surrogates() -> None:
    value = {"a": float("nan"), "b": [np.float32(np.inf), -float("inf"), 1.5],
             "c": (np.int64(3),), "name": "\udcff\udcfe.png", "cat": "猫"}
    text = jsontext.dumps(value, ensure_ascii=False)
    text.encode("utf-8")
    assert strict(text) == {"a": None, "b": [None, None, 1.5], "c": [3],
                            "name": "\udcff\udcfe.png", "cat": "猫"}
    assert "猫" in text and "\\udcff" in text


def test_nan_scores_are_null_and_maps_are_not_named_nan(nan_model: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = invoke("explain", nan_model, photos(tmp_path / "ph", 2), "-o", out,
                                  "--report", "--json")
    assert code == 0, stderr
    strict(stdout)
    assert strict_files(out) >= 3  # results.jsonl, run.json, report/data.js
    record = strict((out / "results.jsonl").read_text().splitlines()[0])
    assert [p["score"] for p in record["predictions"]] == [None] * 5
    (target,) = record["targets"]
    assert target["score"] is None and "nan" not in target["map"]
    assert target["map"] == "maps/im000_0_noscore.png"
    assert not [p for p in out.rglob("*") if "nan" in p.name.lower()]
    code, _, stderr = invoke("report", out, "-o", tmp_path / "again")  # read back
    assert code == 0, stderr


def test_eval_of_nan_scores_writes_strict_json(nan_model: Path, tmp_path: Path) -> None:
    coco = write_coco(tmp_path / "coco")
    out = tmp_path / "eval"
    code, stdout, stderr = invoke("eval", nan_model, coco, "-o", out, "--methods",
                                  "reciprocam", "--steps", "3", "--resamples", "10",
                                  "--report", "--json")
    assert code == 0, stderr
    strict(stdout)
    assert strict_files(out) >= 4  # metrics.json, data.js, the method's run.json and lines


@pytest.mark.parametrize(("args", "words"), [
    (["eval", "--methods", "reciprocam", "--tolerance", "nan"], "--tolerance"),
    (["eval", "--methods", "reciprocam", "--tolerance", "inf"], "--tolerance"),
    (["explain", "--opacity", "nan"], "--opacity"),
    (["explain", "--mask-prob", "nan", "-m", "rise"], "--mask-prob"),
    (["explain", "--score-threshold", "nan"], "--score-threshold"),
    (["explain", "--crop-fraction", "nan"], "--crop-fraction"),
    (["explain", "--mean", "nan"], "--mean"),
    (["explain", "--std", "1,inf,1"], "--std"),
    (["explain", "--scale", "inf"], "--scale"),
    (["explain", "--scale", "1e309"], "--scale"),
    (["explain", "--size", "nan"], "--size"),
    (["explain", "--size", "inf,2"], "--size"),
])
def test_options_that_are_not_finite_are_refused(cnn_file: Callable[..., Path], tmp_path: Path,
                                                 args: list[str], words: str) -> None:
    command, *rest = args
    model = cnn_file("gap_fc", False, "onnx17")
    out = tmp_path / "out"
    code, _, stderr = invoke(command, model, write_coco(tmp_path / "coco"), "-o", out, *rest)
    assert code == 2, stderr
    assert len(stderr.strip().splitlines()) == 1 and words in stderr, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert not out.exists()

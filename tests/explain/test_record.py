"""The results.jsonl record (`io/record.py`): what the writer writes reads back as the same
record, malformed lines name what is wrong, and docs/runtime.md's example line has exactly the
type's keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from xaigraph.explain.io.record import Prediction, Record, RecordError, Target

DOCS = Path(__file__).parents[2] / "docs" / "runtime.md"

OK = Record(0, "photos/cat.png", "cat", "ok", "abc", width=451, height=300,
            predictions=(Prediction(282, "tiger cat", 0.409),),
            targets=(Target(282, "tiger cat", 0.409, "maps/cat_tiger_cat_0.41.png",
                            "overlays/cat_tiger_cat_0.41.png", None, None,
                            [0.0, 3.25], False),),
            ground_truth={"boxes": [], "labels": ["cat"]}, method="reciprocam",
            method_reason="auto", timings={"decode": 0.004}, map_scale="score")


def test_a_record_reads_back_as_itself() -> None:
    line = json.dumps(OK.to_json())
    assert Record.from_json(json.loads(line)) == OK
    error = Record(3, "b.png", "b", "error", "abc", error="b.png: not an image")
    assert error.to_json() == {"index": 3, "path": "b.png", "key": "b", "status": "error",
                               "error": "b.png: not an image", "run": "abc"}
    assert Record.from_json(error.to_json()) == error
    assert OK.files() == ["maps/cat_tiger_cat_0.41.png", "overlays/cat_tiger_cat_0.41.png"]


@pytest.mark.parametrize(("obj", "problem"), [
    ([1], "not a JSON object"),
    ({"status": "ok"}, 'no "key"'),
    ({"key": "a", "status": "done"}, "\"status\" is 'done'"),
    ({"key": "a", "status": "ok", "predictions": {}, "targets": []}, '"predictions" is not'),
    ({"key": "a", "status": "ok", "predictions": [{"score": "x"}], "targets": []},
     'numeric "score"'),
    ({"key": "a", "status": "ok", "predictions": [], "targets": [{"map": 3}]},
     '"map" is not a path'),
])
def test_a_malformed_line_says_what_is_wrong(obj: object, problem: str) -> None:
    with pytest.raises(RecordError, match=re.escape(problem)):
        Record.from_json(obj)


def test_the_documented_line_has_the_types_keys() -> None:
    text = DOCS.read_text()
    example = text.split("One results.jsonl\nline:", 1)[1].split("```json", 1)[1].split("```")[0]
    example = example.replace("[x1, y1, x2, y2]", "[0, 0, 1, 1]").replace(", ...", "")
    doc = json.loads(example)
    assert set(doc) == set(OK.to_json())  # detector_output is a detector's only
    assert set(doc["targets"][0]) == set(OK.targets[0].to_json())
    assert set(doc["predictions"][0]) == set(OK.predictions[0].to_json())
    assert Record.from_json(doc).to_json() == doc

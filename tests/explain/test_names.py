"""File names (issue 21): output names keep Unicode letters and digits; a name that is not
valid UTF-8 is explained and reported; names from a model or a file never reach the
terminal as control characters."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from tests.explain.run_models import classifier
from tests.explain.test_inputs import picture
from xaigraph.cli import cli
from xaigraph.cli_common import terminal
from xaigraph.explain.inputs import collect
from xaigraph.explain.io.names import file_safe

ESC_TITLE = "\x1b]0;pwned\x07"  # sets a terminal's title


def test_keys_keep_unicode_letters_and_digits(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for name in ("猫.png", "foto_n\u0303.png", "Ärger 2.png", 'a:b?"c|d*.png', "x\ty.png"):
        picture(root / name)
    keys = sorted(i.key for i in collect([str(root)]).items)
    assert keys == sorted(["猫", "foto_ñ", "Ärger_2", "a_b__c_d_", "x_y"])
    assert file_safe("tiger cat") == "tiger_cat" and file_safe("猫科") == "猫科"
    assert file_safe("a/b\\c<d>") == "a_b_c_d_" and file_safe("") == "_"


def test_a_unicode_image_and_class_keep_their_names_in_the_files(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(classifier(), model)
    labels = tmp_path / "labels.txt"
    labels.write_text("猫\nchien\noiseau\npoisson\nñu\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["explain", str(model), str(picture(tmp_path / "猫.png")),
                                      "-o", str(out), "--labels", str(labels), "--targets",
                                      "all"])
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in (out / "maps").iterdir())
    assert len(names) == 5 and all(n.startswith("猫_") for n in names)
    assert any(n.startswith("猫_猫_") for n in names) and any("_ñu_" in n for n in names)


@pytest.mark.skipif(sys.platform != "linux", reason="file names of any bytes: Linux")
def test_a_name_that_is_not_utf8_is_explained_and_reported(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(classifier(), model)
    folder = tmp_path / "photos"
    good = picture(folder / "good.png")
    bad = Path(os.fsdecode(os.fsencode(folder) + b"/\xff\xfe.png"))
    bad.write_bytes(good.read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["explain", str(model), str(folder), "-o", str(out),
                                      "--report"])
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["status"] for r in records} == {"ok"}
    (odd,) = [r for r in records if r["key"] != "good"]
    assert os.fsencode(odd["path"]).endswith(b"/\xff\xfe.png")  # the bytes come back
    assert odd["key"] == "__"
    data = (out / "report" / "data.js").read_text(encoding="utf-8")
    assert "\\udcff\\udcfe.png" in data
    again = CliRunner().invoke(cli, ["report", str(out), "-o", str(tmp_path / "r2")])
    assert again.exit_code == 0, again.stderr


def test_terminal_escapes_control_characters() -> None:
    assert terminal(f"layer {ESC_TITLE}x") == "layer \\x1b]0;pwned\\x07x"
    assert terminal("a\u202eb\udcffc") == "a\\u202eb\\xffc"
    assert terminal("two\nlines\tand 猫") == "two\nlines\tand 猫"


def hostile_model(path: Path) -> Path:
    """The run-loop classifier with a control sequence in its layers' and outputs' names."""
    model = classifier()
    rename = {"r2": f"r2{ESC_TITLE}", "relu2": f"relu2{ESC_TITLE}"}
    for node in model.graph.node:
        node.name = rename.get(node.name, node.name)
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    onnx.save(model, path)
    return path


def test_names_from_a_model_never_reach_the_terminal_raw(tmp_path: Path) -> None:
    model = hostile_model(tmp_path / "m.onnx")
    labels = tmp_path / "labels.txt"
    labels.write_text(f"a{ESC_TITLE}\nb\nc\nd\ne\n")
    runs = [CliRunner().invoke(cli, ["inspect", str(model)]),
            CliRunner().invoke(cli, ["explain", str(model), str(picture(tmp_path / "a.png")),
                                     "-o", str(tmp_path / "out"), "--labels", str(labels)]),
            CliRunner().invoke(cli, ["explain", str(model), str(tmp_path / "a.png"), "-o",
                                     str(tmp_path / "o2"), "--target-layer",
                                     f"nosuch{ESC_TITLE}"])]
    for run in runs:
        text = run.stdout + run.stderr
        assert "\x1b" not in text and "\x07" not in text, text
    assert "relu2\\x1b]0;pwned\\x07" in runs[0].stdout + runs[1].stdout

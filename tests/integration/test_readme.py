"""What the README promises: its options exist, its Python example runs, its pipeline text is
the one stamped into models."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

import xaigraph
from xaigraph.cli import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_documented_insert_option_exists() -> None:
    text = README.read_text()
    table = text.split("### `xaigraph insert", 1)[1].split("Supported files", 1)[0]
    documented = set(re.findall(r"\| `(--[a-z-]+)", table))
    documented |= {opt for opt in re.findall(r"`-[a-z], (--[a-z-]+)`", table)}
    assert {"--method", "--target-layer", "--no-scaling", "--no-validate", "--force",
            "--json"} <= documented
    help_text = CliRunner().invoke(cli, ["insert", "--help"]).stdout
    for option in documented:
        assert option in help_text, option


def test_python_example_runs(tiny_file: Callable[..., Path], tmp_path: Path) -> None:
    model = tiny_file("gap_fc", False, "onnx13")
    result = xaigraph.insert(model, method="reciprocam")
    assert result.report["validation"]["passed"]
    out = xaigraph.save(result, tmp_path / "model_xai.xml")
    assert out.exists()
    info = xaigraph.inspect(model)
    assert info["methods"]["reciprocam"]["applies"]


def test_pipeline_text_matches(tiny_file: Callable[..., Path]) -> None:
    result = xaigraph.insert(tiny_file("gap_fc", False, "onnx13"), method="reciprocam")
    assert f"`{result.report['pipeline']}`" in README.read_text()


def test_commands_in_quick_start_exist() -> None:
    makefile = (README.parent / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_every_method_is_documented() -> None:
    from xaigraph.methods import METHODS

    text = README.read_text()
    table = text.split("## Methods", 1)[1].split("###", 1)[0]
    for name in METHODS:
        assert f"| `{name}` |" in table, name
    help_text = CliRunner().invoke(cli, ["insert", "--help"]).stdout
    for name in METHODS:
        assert name in help_text

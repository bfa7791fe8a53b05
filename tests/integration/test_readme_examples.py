"""The README's example blocks are this build's real output on the bundled EfficientNet-Lite0:
every `$ xaigraph ...` line is run (in a folder holding a copy of the model and the photo, in
README order) and must print the lines under it, timings aside; the Python example on the
bundled model and photo must print the block that follows it."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from xaigraph.cli import cli

README = Path(__file__).resolve().parents[2] / "README.md"
MODEL = "efficientnet_lite0.onnx"
PHOTO = "chelsea.png"


def _blocks() -> list[tuple[str, str]]:
    """(info string, body) of every fenced block."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", README.read_text(), re.S | re.M)


def _commands() -> list[tuple[str, list[str]]]:
    """(command, expected lines) for every `$ xaigraph` line of the README's blocks."""
    out: list[tuple[str, list[str]]] = []
    for _, body in _blocks():
        current: list[str] | None = None
        for line in body.splitlines():
            if line.startswith("$ xaigraph "):
                current = []
                out.append((line[2:], current))
            elif current is not None:
                current.append(line)
    return out


def _masked(lines: list[str]) -> list[str]:
    return [re.sub(r"\d+\.\d+s", "#s", line) for line in lines]


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (MODEL, PHOTO):  # the explain examples run on the bundled photo
        shutil.copy(Path(str(resources.files("xaigraph.data").joinpath(name))), tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_examples_run_on_the_bundled_model() -> None:
    commands = [c for c, _ in _commands()]
    assert sum(MODEL in c for c in commands) >= 4, commands
    assert not any("light_" in body for _, body in _blocks())


def test_command_blocks_are_real_output(folder: Path) -> None:
    for command, expected in _commands():
        result = CliRunner().invoke(cli, shlex.split(command)[1:])
        got = (result.stdout + result.stderr).splitlines()
        assert _masked(got) == _masked(expected), command


def test_python_example_prints_what_the_readme_says(folder: Path) -> None:
    blocks = _blocks()
    index = next(i for i, (info, body) in enumerate(blocks)
                 if info == "python" and "efficientnet_lite0.onnx" in body)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(blocks[index][1], "README example", "exec"), {})
    assert printed.getvalue() == blocks[index + 1][1]


def _activation() -> str:
    """The README's one activation line (the block after "activate it first")."""
    text = README.read_text()
    after = text.split("activate it first", 1)[1]
    line = re.search(r"^```\n(.*?)\n^```$", after, re.S | re.M)
    assert line is not None
    return line.group(1).strip()


@pytest.mark.slow
def test_command_blocks_run_in_a_fresh_shell(folder: Path) -> None:
    """Every `$ xaigraph` line as a new user types it: a fresh shell (no inherited
    environment), the README's activation line run in the repository's root, then the line;
    the output is the README's."""
    import subprocess

    root = README.parent
    activate = _activation()
    assert activate == "source .venv/bin/activate"
    clean = {"HOME": str(folder), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    for command, expected in _commands():
        script = f"cd {shlex.quote(str(root))} && {activate} && cd {shlex.quote(str(folder))}" \
                 f" && {command}"
        done = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], env=clean,
                              capture_output=True, text=True, timeout=300)
        got = (done.stdout + done.stderr).splitlines()
        assert _masked(got) == _masked(expected), (command, done.stderr[-2000:])

"""Atomic writes: the destination holds the old file or the new one, and nothing else is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from xaigraph.files import atomic_write, staged


def test_writes_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    atomic_write(target, lambda p: p.write_text("new"))
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_keeps_the_old_file(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "out.png"
    target.write_text("old")

    def half_write(p: Path) -> None:
        p.write_text("half")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, half_write)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_failure_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    with pytest.raises(OSError, match="nothing was written"):
        atomic_write(target, lambda p: None)
    with pytest.raises(ValueError):
        atomic_write(target, lambda p: (p.write_text("x"), int("not a number")))
    assert list(tmp_path.iterdir()) == []


def test_the_writer_sees_the_final_name(tmp_path: Path) -> None:
    seen: list[Path] = []

    def write(p: Path) -> None:
        seen.append(p)
        p.write_bytes(b"x")

    atomic_write(tmp_path / "picture.png", write)
    assert seen[0].name == "picture.png" and tmp_path in seen[0].parents


def test_staged_pair_renames_what_was_written(tmp_path: Path) -> None:
    """Two files that name each other (an IR's .xml and .bin); a target not written belongs
    to the old set of files and goes with it (issue 11: OUT is the old set or the new one)."""
    (tmp_path / "m.onnx.data").write_text("old data")
    with staged([tmp_path / "m.xml", tmp_path / "m.bin"]) as (xml, bin_):
        xml.write_text("<net/>")
        bin_.write_bytes(b"\0")
    with staged([tmp_path / "m.onnx.data", tmp_path / "m.onnx"]) as (_, model):
        model.write_bytes(b"onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.onnx", "m.xml"]


def test_staged_targets_share_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="share one folder"), \
            staged([tmp_path / "x.xml", tmp_path / "a" / "x.bin"]):
        pass

"""`xaigraph eval -o DIR` and the files of DIR that are not eval's (issue 21): a metrics.json or
metrics.md eval did not write is refused without --force, in one line, nothing written, as
explain refuses an OUT_DIR of another run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.explain.test_eval import coco, invoke, model

__all__ = ["coco", "model"]  # the fixtures of test_eval, used here


@pytest.mark.parametrize(("name", "text"), [
    ("metrics.json", '{"my": "numbers"}\n'),
    ("metrics.json", "not json at all\n"),
    ("metrics.md", "# My notes\n\nkeep me\n"),
])
def test_eval_refuses_to_replace_a_metrics_file_it_did_not_write(
        model: Path, coco: Path, tmp_path: Path, name: str, text: str) -> None:
    out = tmp_path / "eval"
    out.mkdir()
    (out / name).write_text(text)
    args = ("eval", model, coco, "-o", out, "--methods", "activationmap", "--metrics",
            "pointing_game", "--resamples", "10")
    code, _, stderr = invoke(*args)
    assert code == 2, stderr
    assert len(stderr.strip().splitlines()) == 1 and f"{out / name}" in stderr
    assert "--force" in stderr
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing written
    assert (out / name).read_text() == text
    code, _, stderr = invoke(*args, "--force")
    assert code == 0, stderr
    assert (out / name).read_text() != text
    code, _, stderr = invoke(*args)  # eval's own files: a rerun needs no --force
    assert code == 0, stderr


def test_a_metrics_json_that_is_a_folder_is_refused_even_with_force(
        model: Path, coco: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    (out / "metrics.json").mkdir(parents=True)
    code, _, stderr = invoke("eval", model, coco, "-o", out, "--methods", "activationmap",
                             "--metrics", "pointing_game", "--force")
    assert code == 2 and "is a folder" in stderr and len(stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]

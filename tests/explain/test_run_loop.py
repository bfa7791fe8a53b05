"""The run loop's guarantees (docs/runtime.md, "The run loop"): one writer per OUT_DIR, one
image's trouble is one image's error, nothing lost on a rerun, exit 2 means nothing written,
never an abort. Each test failed on the code before the run loop had them."""

from __future__ import annotations

import errno
import fcntl
import json
import shutil
from pathlib import Path
from typing import Any

import onnx
import pytest
from click.testing import CliRunner

from tests.explain import run_models
from xaigraph.cli import cli


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs from run to run (its timings)."""
    return {k: v for k, v in record.items() if k != "timings"}


def files(out: Path) -> dict[str, bytes]:
    """Every file a run wrote that a rerun must reproduce (maps, overlays, raw maps)."""
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for folder in ("maps", "overlays", "raw") for p in sorted((out / folder).rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "classifier.onnx"
    onnx.save(run_models.classifier(), str(path))
    return path


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    return run_models.photos(tmp_path / "photos", 6)


# -- one writer per OUT_DIR ---------------------------------------------------------------------

def test_a_second_run_into_an_out_dir_in_use_is_refused_at_once(model: Path, photos: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, stderr = invoke("explain", model, photos, "-o", out)
    assert code == 0, stderr
    before = (out / "results.jsonl").read_bytes()
    # another process holds OUT_DIR's lock as a run does (the lock file names its pid)
    lock = out / ".xaigraph.lock"
    holder = run_models.popen_holding_lock(lock)
    try:
        result = run_models.cli("explain", model, photos, "-o", out, "--force")
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"xaigraph: error: {out} is in use by another xaigraph run (pid {holder.pid})"]
        assert (out / "results.jsonl").read_bytes() == before
        assert not (out / ".results.jsonl.partial").exists()
    finally:
        holder.kill()
        holder.wait()
    code, _, stderr = invoke("explain", model, photos, "-o", out, "--force")  # free again
    assert code == 0, stderr


def test_the_lock_is_held_for_the_whole_run(model: Path, photos: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    from xaigraph.explain import runloop

    seen: list[bool] = []
    real_write = runloop.write

    def write(*args: Any, **kwargs: Any) -> Any:  # is the lock taken while images are written?
        with open(out / ".xaigraph.lock", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                seen.append(True)
            else:
                fcntl.flock(f, fcntl.LOCK_UN)
                seen.append(False)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(runloop, "write", write)
    code, _, stderr = invoke("explain", model, photos, "-o", out)
    assert code == 0, stderr
    assert seen and all(seen)


# -- one image's trouble is one image's error ---------------------------------------------------

def test_a_name_too_long_for_its_maps_is_that_images_error(model: Path, photos: Path,
                                                           tmp_path: Path) -> None:
    long = photos / ("x" * 250 + ".png")  # fits NAME_MAX; its map's name does not
    shutil.copy(photos / "im002.png", long)
    out = tmp_path / "out"
    code, stdout, stderr = invoke("explain", model, photos, "-o", out, "--json")
    assert code == 3, stderr
    assert [line for line in stderr.splitlines() if line.strip()] == [
        line for line in stderr.splitlines() if line.startswith("xaigraph: error:")]
    assert "Traceback" not in stderr
    got = {r["key"]: r for r in records(out)}
    assert len(got) == 7
    bad = got["x" * 250]
    assert bad["status"] == "error" and "file name is too long" in bad["error"]
    assert all(r["status"] == "ok" for k, r in got.items() if k != "x" * 250)
    assert json.loads(stdout)["errors"] == 1
    assert not list(out.rglob("*xaigraph-tmp*"))
    assert not [p for p in (out / "maps").iterdir() if p.name.startswith("x" * 20)]


FULL_DISK = """
import errno, itertools
from xaigraph.explain.io import write as runner
_calls = itertools.count()
_real = runner._save_bytes
def _save_bytes(data, path):
    if next(_calls) == 5:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    _real(data, path)
runner._save_bytes = _save_bytes
"""


def test_a_full_disk_ends_the_run_with_exit_2_and_a_resume_completes(
        model: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_models.cli("explain", model, photos, "-o", out, "--batch-size", "2",
                            "--runtime", "openvino", prelude=FULL_DISK)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.splitlines() if line.startswith("xaigraph: error:")]
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no space left" in result.stderr.lower()
    assert not list(out.rglob("*xaigraph-tmp*"))
    code, _, stderr = invoke("explain", model, photos, "-o", out, "--runtime", "openvino")
    assert code == 0, stderr
    whole = tmp_path / "whole"
    code, _, stderr = invoke("explain", model, photos, "-o", whole, "--runtime", "openvino")
    assert code == 0, stderr
    assert [comparable(r) for r in records(out)] == [comparable(r) for r in records(whole)]
    assert files(out) == files(whole)


# -- nothing lost on a rerun --------------------------------------------------------------------

def test_a_rerun_over_a_subset_keeps_the_other_records(model: Path, photos: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, stderr = invoke("explain", model, photos, "-o", out)
    assert code == 0, stderr
    first = records(out)
    code, _, stderr = invoke("explain", model, photos / "im001.png", photos / "im004.png",
                             "-o", out)
    assert code == 0, stderr
    again = records(out)
    assert sorted(r["key"] for r in again) == sorted(r["key"] for r in first)
    by_key = {r["key"]: comparable(r) for r in first}
    assert all(by_key[r["key"]] == comparable(r) for r in again if r["key"] not in (
        "im001", "im004"))


def test_an_out_dir_inside_the_input_folder_is_not_read_back(model: Path, photos: Path
                                                             ) -> None:
    out = photos / "out"
    for _ in range(2):
        code, stdout, stderr = invoke("explain", model, photos, "-o", out, "--json")
        assert code == 0, stderr
        assert json.loads(stdout)["images"] == 6
    assert len(records(out)) == 6


@pytest.mark.parametrize("text", ["not json at all\n", '{"some": "thing else"}\n', "[1, 2]\n"])
def test_a_run_json_that_is_not_ours_is_refused_without_force(model: Path, photos: Path,
                                                              tmp_path: Path,
                                                              text: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(text)
    code, _, stderr = invoke("explain", model, photos, "-o", out)
    assert code == 2
    assert "run.json" in stderr and "--force" in stderr
    assert (out / "run.json").read_text() == text
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]
    code, _, stderr = invoke("explain", model, photos, "-o", out, "--force")
    assert code == 0, stderr
    assert json.loads((out / "run.json").read_text())["digest"]


# -- exit 2 means nothing written ---------------------------------------------------------------

def _nothing_in(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


def test_checks_that_can_fail_run_before_anything_is_written(model: Path, photos: Path,
                                                            tmp_path: Path) -> None:
    cases: list[tuple[str, ...]] = [
        ("--method", "rise", "--mask-cells", "100000"),
        ("--method", "rise", "--num-masks", "4", "--postprocess", "no_such_module_xg:read"),
    ]
    for n, args in enumerate(cases):
        out = tmp_path / f"out{n}"
        code, _, stderr = invoke("explain", model, photos, "-o", out, *args)
        assert code == 2, (args, stderr)
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert _nothing_in(out), (args, sorted(p.name for p in out.iterdir()))


@pytest.mark.parametrize("folder", ["maps", "overlays", "raw"])
def test_an_out_dir_whose_sub_folder_is_a_file_is_refused_first(model: Path, photos: Path,
                                                               tmp_path: Path,
                                                               folder: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / folder).write_text("mine")
    code, _, stderr = invoke("explain", model, photos, "-o", out, "--raw")
    assert code == 2, stderr
    assert f"{folder}" in stderr and "not a folder" in stderr
    assert sorted(p.name for p in out.iterdir()) == [folder]
    assert (out / folder).read_text() == "mine"


def test_a_run_level_error_reports_the_errno_as_one_line() -> None:
    from xaigraph.explain.io.rundir import image_error

    assert image_error(OSError(errno.ENAMETOOLONG, "File name too long"))
    assert not image_error(OSError(errno.ENOSPC, "No space left on device"))
    assert not image_error(OSError(errno.EROFS, "Read-only file system"))

"""How an explain run behaves around its maps: the progress bar (a terminal only; quiet with
--json and in CI), an interrupted run (no half-written PNG; the next run resumes), and
`--report` on explain (also when some images failed) and on eval."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from xaigraph.cli import cli
from xaigraph.explain.io import write as runner_write
from xaigraph.explain.plan import prepare

XAIGRAPH = Path(sys.executable).with_name("xaigraph")


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (18 + i, 22, 3), dtype=np.uint8)).save(
            folder / f"im{i}.png")
    return folder


@pytest.fixture()
def model(cnn_file: Callable[..., Path]) -> Path:
    return cnn_file("gap_fc", False, "onnx17")


# -- the progress bar -----------------------------------------------------------------------------

def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `xaigraph ARGS` with stderr on a pseudo-terminal; (exit status, what it showed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    proc = subprocess.Popen([str(XAIGRAPH), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal's other side is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return proc.wait(timeout=120), shown.decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_only(model: Path, photos: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TERM")}
    env["TERM"] = "xterm"
    code, shown = _on_a_terminal(["explain", str(model), str(photos), "-o",
                                  str(tmp_path / "a")], env)
    assert code == 0, shown
    assert "6/6" in shown and "img/s" in shown  # images, images/s
    assert "<" in shown and "00:00" in shown  # elapsed<ETA
    code, shown = _on_a_terminal(["explain", str(model), str(photos), "-o",
                                  str(tmp_path / "b"), "--json"], env)
    assert code == 0 and "img/s" not in shown and "6/6" not in shown
    code, shown = _on_a_terminal(["explain", str(model), str(photos), "-o",
                                  str(tmp_path / "c")], {**env, "CI": "true"})
    assert code == 0 and "img/s" not in shown and "6/6" not in shown
    code, _, stderr = invoke("explain", model, photos, "-o", tmp_path / "d")  # not a tty
    assert code == 0 and "img/s" not in stderr


# -- an interrupted run ---------------------------------------------------------------------------

def test_interrupted_run_leaves_no_half_png_and_resumes(model: Path, photos: Path,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    real_save = runner_write._save_bytes
    calls = {"n": 0}

    def dying_save(data: bytes, path: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 5:  # half a PNG written, then the run is stopped
            real_save(data, path)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
            raise KeyboardInterrupt
        real_save(data, path)

    monkeypatch.setattr(runner_write, "_save_bytes", dying_save)
    code, _, _ = invoke("explain", model, photos, "-o", out, "--batch-size", "2")
    assert code != 0
    monkeypatch.setattr(runner_write, "_save_bytes", real_save)
    pngs = sorted(out.rglob("*.png"))
    for png in pngs:  # every PNG there is whole
        with Image.open(png) as im:
            im.load()
    assert not list(out.rglob("*.xaigraph-tmp"))
    assert not (out / "results.jsonl").exists()
    done = [r for r in lines(out / ".results.jsonl.partial") if r["status"] == "ok"]
    assert len(done) < 6
    # a killed run's temporary (SIGKILL: no clean-up) is removed by the next run
    stale = out / "maps" / ".im5_3_0.20.png.999-0.xaigraph-tmp"
    stale.write_bytes(b"\x89PNG half")
    code, stdout, stderr = invoke("explain", model, photos, "-o", out, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["skipped"] == len(done) and summary["explained"] == 6 - len(done)
    assert not stale.exists() and not (out / ".results.jsonl.partial").exists()
    records = lines(out / "results.jsonl")
    assert [r["key"] for r in records] == [f"im{i}" for i in range(6)]
    for r in records:
        for t in r["targets"]:
            for f in (t["map"], t["overlay"]):
                with Image.open(out / f) as im:
                    im.load()


# -- --report -------------------------------------------------------------------------------------

def test_explain_report_is_built_at_the_end(model: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = invoke("explain", model, photos, "-o", out, "--report")
    assert code == 0, stderr
    index = out / "report" / "index.html"
    assert index.is_file() and (out / "report" / "data.js").is_file()
    assert f"report      {index}" in stdout
    (photos / "broken.png").write_text("not an image")  # exit 3: the report still comes
    code, stdout, stderr = invoke("explain", model, photos, "-o", out, "--report", "--json")
    assert code == 3
    summary = json.loads(stdout)
    assert summary["errors"] == 1 and summary["report"] == str(index) and index.is_file()
    assert "broken" in (out / "report" / "data.js").read_text()  # replaced: the new run's


def test_run_json_records_the_input_folders(model: Path, photos: Path, tmp_path: Path) -> None:
    """run.json `inputs`: the images' real folders relative to OUT_DIR, joined over the runs
    of one digest (not part of it); the report takes originals from there only."""
    out = tmp_path / "out"
    more = tmp_path / "more" / "deep"
    more.mkdir(parents=True)
    Image.new("RGB", (20, 16), (9, 99, 199)).save(more / "x.png")
    (tmp_path / "linked.png").symlink_to(more / "x.png")
    code, _, stderr = invoke("explain", model, photos, "-o", out)
    assert code == 0, stderr
    card = json.loads((out / "run.json").read_text())
    assert card["inputs"] == ["../photos"]
    code, _, stderr = invoke("explain", model, tmp_path / "linked.png", "-o", out)
    assert code == 0, stderr  # the same digest: this run adds to the other
    again = json.loads((out / "run.json").read_text())
    assert again["inputs"] == ["../more/deep", "../photos"]
    assert again["digest"] == card["digest"]
    code, _, stderr = invoke("report", out)
    assert code == 0, stderr
    data = json.loads((out / "report" / "data.js").read_text().split("=", 1)[1].rstrip()
                      .rstrip(";"))
    assert len(data["images"]) == 7 and all(im["img"] for im in data["images"])


def test_explain_report_place_taken_is_refused_first(model: Path, photos: Path,
                                                     tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "report").mkdir(parents=True)
    (out / "report" / "mine.txt").write_text("keep")
    code, _, stderr = invoke("explain", model, photos, "-o", out, "--report")
    assert code == 2 and "not an xaigraph report" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["report"]  # nothing written
    assert (out / "report" / "mine.txt").read_text() == "keep"


def test_eval_report_is_built_at_the_end(model: Path, tmp_path: Path) -> None:
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(
            root / "images" / f"im{i}.png")
        images.append({"id": i + 1, "file_name": f"im{i}.png", "width": 40, "height": 32})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2,
                     "bbox": [5, 4, 20, 14]})
    coco = root / "instances_val.json"
    coco.write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "class 1"}, {"id": 2, "name": "class_3"}]}))
    out = tmp_path / "eval"
    code, stdout, stderr = invoke("eval", model, coco, "-o", out, "--methods", "reciprocam",
                                  "--steps", "4", "--resamples", "20", "--report")
    assert code == 0, stderr
    index = out / "report" / "index.html"
    assert index.is_file() and f"report      {index}" in stdout
    data = (out / "report" / "data.js").read_text()
    assert "reciprocam" in data and "pointing_game" in data  # the metric tables are in


def test_rise_shows_the_masks_of_each_image_on_a_terminal(model: Path, photos: Path,
                                                          tmp_path: Path) -> None:
    """RISE: a second bar counts each image's masks (it starts again at 0 for the next
    image) and every image is written as soon as it is done (black-box batches are of one
    image)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TERM")}
    env["TERM"] = "xterm"
    out = tmp_path / "rise"
    code, shown = _on_a_terminal(["explain", str(model), str(photos), "-o", str(out),
                                  "--method", "rise", "--num-masks", "48",
                                  "--mask-cells", "3"], env)
    assert code == 0, shown
    assert "6/6" in shown and "/48" in shown and "mask/s" in shown
    counts = [int(n) for n in re.findall(r"masks:\s+\d+%\S*\s*\|\s*(\d+)/48", shown)]
    assert counts.count(0) >= 6  # reset for each image
    assert json.loads((out / "run.json").read_text())["method"]["name"] == "rise"
    code, _, stderr = invoke("explain", model, photos, "-o", tmp_path / "q", "--method",
                             "rise", "--num-masks", "48", "--mask-cells", "3")  # not a tty
    assert code == 0 and "mask/s" not in stderr


def test_black_box_batches_are_of_one_image(model: Path) -> None:
    assert prepare(model, method="rise", batch_size=8).batch == 1
    assert prepare(model, method="aise", batch_size=8).batch == 1
    assert prepare(model, batch_size=8).batch == 8


def test_resume_redoes_a_record_that_names_files_outside_the_run(
        model: Path, photos: Path, tmp_path: Path) -> None:
    """A results.jsonl line edited to name `../secret.png` (or an absolute path) is not kept
    on resume: its image is redone and its record names the run's own files again."""
    out = tmp_path / "out"
    code, _, stderr = invoke("explain", model, photos, "-o", out)
    assert code == 0, stderr
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for the report")
    records = lines(out / "results.jsonl")
    records[0]["targets"][0]["map"] = "../secret.png"
    records[1]["targets"][0]["overlay"] = str(secret)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    code, stdout, stderr = invoke("explain", model, photos, "-o", out, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["explained"] == 2 and summary["skipped"] == 4
    for r in lines(out / "results.jsonl"):
        for t in r["targets"]:
            for f in (t["map"], t["overlay"]):
                assert not Path(f).is_absolute() and ".." not in Path(f).parts
                assert (out / f).is_file()

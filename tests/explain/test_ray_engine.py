"""`xaigraph explain --engine ray` writes what the local engine writes, for a white-box and a
black-box (RISE: same seed, same maps) method: every file byte for byte and every
results.jsonl record (timings aside), on a local Ray instance with 2
inference actors, over a handful of generated images, one of them not an image; a resumed
run with nothing left to do does not start Ray.

The command runs in a child process, as a user runs it (`xaigraph.__main__.main`), so Ray
is started and shut down there and not in the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

ENTRY = "import sys; from xaigraph.__main__ import main; sys.argv[0] = 'xaigraph'; main()"
EXIT_SOME_FAILED = 3


def explain(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ENTRY, "explain", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def photos(folder: Path, n: int) -> None:
    """`n` generated photos of different sizes and formats, and `broken.jpg`, not an image."""
    rng = np.random.default_rng(3)
    folder.mkdir()
    for i in range(n):
        pixels = rng.integers(0, 256, (24 + 5 * i, 30 + 3 * i, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i}.{('png', 'jpg', 'bmp')[i % 3]}")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")


def files(out: Path) -> dict[str, bytes]:
    """Every file the run wrote under maps/, overlays/, raw/, by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.parts[len(out.parts)] in ("maps", "overlays", "raw")}


def records(out: Path) -> list[dict[str, Any]]:
    lines = (out / "results.jsonl").read_text().splitlines()
    found = [json.loads(line) for line in lines]
    for r in found:
        r.pop("timings", None)
    return found


@pytest.mark.slow  # `make test-fast` leaves it out (and needs Ray, the `ray` extra)
@pytest.mark.parametrize("method", [
    [],  # auto: reciprocam inserted in memory
    ["--method", "rise", "--num-masks", "40", "--mask-cells", "3", "--seed", "5"],
], ids=["white-box", "rise"])
def test_ray_engine_writes_what_the_local_engine_writes(
        cnn_file: Callable[..., Path], tmp_path: Path, method: list[str]) -> None:
    model = cnn_file("gap_fc", False, "onnx17")
    photos(tmp_path / "photos", 7)
    common = [str(model), "photos", "--targets", "topk:2", "--raw", "--batch-size", "3",
              *method]
    local = explain(*common, "-o", "local", cwd=tmp_path)
    ray = explain(*common, "-o", "ray", "--engine", "ray", "--ray-actors", "2", cwd=tmp_path)

    for proc in (local, ray):  # the broken file: one line, the rest go on, exit 3
        assert proc.returncode == EXIT_SOME_FAILED, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if "broken.jpg" in line]
        assert len(errors) == 1, proc.stderr
    assert ray.stderr == local.stderr  # nothing from Ray on the terminal

    want, got = records(tmp_path / "local"), records(tmp_path / "ray")
    assert [r["status"] for r in want].count("error") == 1
    assert len(want) == 8 and [r["index"] for r in want] == list(range(8))
    assert got == want
    written = files(tmp_path / "local")
    assert len(written) == 7 * 2 * 3  # 7 photos, 2 targets, map + overlay + raw
    assert files(tmp_path / "ray") == written
    run_local = json.loads((tmp_path / "local" / "run.json").read_text())
    run_ray = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert run_ray == run_local

    (tmp_path / "photos" / "broken.jpg").unlink()  # resume: nothing left to do, no Ray
    again = explain(*common, "-o", "ray", "--engine", "ray", "--ray-actors", "2", "--json",
                    cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["skipped"], summary["errors"], summary["explained"]) == (7, 0, 0)
    # the broken file's line stays, after this run's (a rerun over a subset loses nothing)
    assert records(tmp_path / "ray") == ([r for r in want if r["status"] == "ok"]
                                         + [r for r in want if r["status"] == "error"])
    assert files(tmp_path / "ray") == written


def test_without_ray_one_line_and_exit_2(cnn_file: Callable[..., Path], tmp_path: Path
                                        ) -> None:
    model = cnn_file("gap_fc", False, "onnx17")
    photos(tmp_path / "photos", 1)
    hide_ray = "import sys; sys.modules['ray'] = None; "  # `import ray` raises ImportError
    proc = subprocess.run([sys.executable, "-c", hide_ray + ENTRY, "explain", str(model),
                           "photos", "-o", "out", "--engine", "ray"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "xaigraph: error: --engine ray needs Ray: pip install 'xaigraph[ray]'"]
    assert not (tmp_path / "out").exists()


def test_ray_options_need_the_ray_engine(cnn_file: Callable[..., Path], tmp_path: Path
                                         ) -> None:
    model = cnn_file("gap_fc", False, "onnx17")
    photos(tmp_path / "photos", 1)
    proc = explain(str(model), "photos", "-o", "out", "--ray-actors", "2", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "xaigraph: error: --ray-address and --ray-actors need --engine ray"]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # `make test-fast` leaves it out (and needs Ray, the `ray` extra)
def test_a_signal_ends_a_ray_run_cleanly_and_it_resumes(tmp_path: Path) -> None:
    """SIGTERM while Ray starts (ray.init's own handler exited with status 15 and nothing
    printed) and while it runs: exit 143 and one line; a resume writes what one run writes."""
    import signal
    import time

    import onnx

    from tests.explain import run_models

    onnx.save(run_models.classifier(size=64, width=16), str(tmp_path / "m.onnx"))
    run_models.photos(tmp_path / "photos", 24, size=(120, 160))
    common = ["m.onnx", "photos", "--batch-size", "2"]
    whole = explain(*common, "-o", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    for n, delay in enumerate([1.5, 3.0, 4.0, 4.5, 6.0, 8.0, 10.0, 12.0]):
        out = f"ray{n}"
        proc = subprocess.Popen([sys.executable, "-c", ENTRY, "explain", *common, "-o", out,
                                 "--engine", "ray", "--ray-actors", "1"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONFAULTHANDLER": "1"})
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # a hang: every thread's stack, then fail
            proc.send_signal(signal.SIGABRT)
            _, stderr = proc.communicate(timeout=60)
            raise AssertionError(f"no exit 120 s after SIGTERM at {delay}s:\n{stderr}"
                                 ) from None
        if proc.returncode == -signal.SIGTERM:  # during ray.shutdown (which sets SIGTERM's
            assert (tmp_path / out / "results.jsonl").is_file()  # default action), after
            assert records(tmp_path / out) == records(tmp_path / "whole")  # the commit
        elif proc.returncode != 0:
            assert proc.returncode == 143, (delay, proc.returncode, stderr)
            assert stderr.splitlines() == ["xaigraph: error: interrupted by SIGTERM"], stderr
        again = explain(*common, "-o", out, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert ([{k: v for k, v in r.items() if k != "timings"} for r in records(tmp_path / out)]
                == [{k: v for k, v in r.items() if k != "timings"}
                    for r in records(tmp_path / "whole")])
        assert files(tmp_path / out) == files(tmp_path / "whole")

"""`make dist`'s wheel in a bare venv (no dev extra, no editable checkout on the path):
insert, explain, eval and report run from it on the model the wheel carries."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(argv: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def test_the_wheel_runs_in_a_bare_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT), "-w",
          str(wheels)], tmp_path)
    wheel = next(wheels.glob("xaigraph-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], tmp_path)
    work = tmp_path / "work"  # not the repository: its xaigraph/ folder must not be imported
    (work / "data" / "tiger cat").mkdir(parents=True)
    data = Path(_run([str(python), "-c", "import os, xaigraph.data as d; "
                      "print(os.path.dirname(d.__file__))"], work).strip())
    assert ROOT not in data.parents  # the installed copy, not the checkout
    model = data / "efficientnet_lite0.onnx"
    cat = Image.open(data / "chelsea.png").convert("RGB")
    for i, size in enumerate([(320, 240), (200, 260)]):
        cat.resize(size).save(work / "data" / "tiger cat" / f"cat{i}.png")
    xaigraph = str(env_dir / "bin" / "xaigraph")
    _run([xaigraph, "insert", str(model), "-o", "model_xai.xml", "--method", "reciprocam"], work)
    assert (work / "model_xai.xml").is_file() and (work / "model_xai.bin").is_file()
    _run([xaigraph, "explain", "model_xai.xml", "data", "-o", "explained"], work)
    assert len(list((work / "explained").rglob("*.png"))) >= 2
    _run([xaigraph, "eval", str(model), "classes:data", "-o", "evaluated", "--methods",
          "activationmap", "--metrics", "pointing_game,insertion_auc", "--resamples", "50"],
         work)
    assert (work / "evaluated" / "metrics.json").is_file()
    _run([xaigraph, "report", "evaluated", "-o", "report"], work)
    html = (work / "report" / "index.html").read_text()
    assert "<html" in html.lower()

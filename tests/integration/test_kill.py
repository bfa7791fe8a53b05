"""The kill test: signals at random moments of `xaigraph insert --force` over a good output.

SIGKILL: no clean-up runs, so the folder may keep a staging folder; once the next run has
looked at the folder (`files.recover`, which `insert` calls first), it holds exactly the old
complete pair or the new one, byte for byte as complete runs wrote them, and nothing else.
SIGINT, SIGTERM, SIGHUP: exit 128 + signal with one line and no traceback (or 0 if the run
had finished), and the folder is the old or the new pair at once.

For many SIGKILL rounds in a few seconds, a driver process imports xaigraph once and forks
a child per round that runs the command line (`xaigraph.__main__.main`), killed after a
seeded random delay spread over a run's length; a last round runs the real entry point in
a fresh interpreter. The driver never creates an OpenVINO core, so its forks are safe.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest

from tests.unit.files_models import ENTRY, RESET_SIGNALS, ROOT, classifier
from tests.unit.test_files_signals import _handlers_installed

SEED = 11
ROUNDS = 24
OLD_ARGS = ["-m", "activationmap", "--no-validate"]
NEW_ARGS = ["--no-validate"]


def _pair(folder: Path) -> tuple[bytes, bytes]:
    return (folder / "o.xml").read_bytes(), (folder / "o.bin").read_bytes()


def _child(model: Path, out: Path, args: list[str]) -> None:
    """In a forked child: run the command line, never return."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    from xaigraph.__main__ import main

    try:
        main(["insert", str(model), "-o", str(out), "--force", *args])
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 2)
    os._exit(0)


def _fork_run(model: Path, out: Path, args: list[str], delay: float | None) -> tuple[int, float]:
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(model, out, args)
    if delay is not None:
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), time.monotonic() - start


def drive(scratch: str, rounds: int, seed: int) -> None:
    """The driver (in its own interpreter): reference pairs, then killed rounds; prints one
    JSON object with what each round left."""
    import xaigraph.cli  # noqa: F401  (the heavy imports, once, before the forks)
    from xaigraph.files import STAGE_PATTERN, recover

    folder = Path(scratch)
    model, out = folder / "m.onnx", folder / "out" / "o.xml"
    refs = {}
    for name, args in (("old", OLD_ARGS), ("new", NEW_ARGS)):
        code, took = _fork_run(model, folder / name / "o.xml", args, None)
        assert code == 0, f"the {name} reference run failed: {code}"
        refs[name] = _pair(folder / name)
    rng = random.Random(seed)
    results = []
    for _ in range(rounds):
        shutil.copy(folder / "old" / "o.xml", out)
        shutil.copy(folder / "old" / "o.bin", out.with_suffix(".bin"))
        delay = rng.uniform(0.1 * took, 0.9 * took)  # mostly inside a run, however loaded
        code, _ = _fork_run(model, out, NEW_ARGS, delay)
        staged = any(STAGE_PATTERN.fullmatch(p.name) for p in out.parent.iterdir())
        recover(out.parent)
        files = sorted(os.listdir(out.parent))
        state = next((k for k, v in refs.items() if files == ["o.bin", "o.xml"]
                      and _pair(out.parent) == v), f"neither: {files}")
        results.append({"delay": round(delay, 4), "code": code, "staged": staged,
                        "state": state})
    print(json.dumps({"run_seconds": took, "rounds": results}))


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    onnx.save(classifier(width=8), str(tmp_path / "m.onnx"))
    for name in ("old", "new", "out"):
        (tmp_path / name).mkdir()
    return tmp_path


def test_sigkill_at_random_moments_leaves_the_old_or_the_new_pair(folder: Path) -> None:
    code = (f"from tests.integration.test_kill import drive; "
            f"drive({str(folder)!r}, {ROUNDS}, {SEED})")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rounds = json.loads(proc.stdout.strip().splitlines()[-1])["rounds"]
    assert [r for r in rounds if r["state"] not in ("old", "new")] == []
    killed = [r for r in rounds if r["code"] == -signal.SIGKILL]
    assert len(killed) >= ROUNDS // 4, rounds  # many rounds were cut short (timing varies)
    assert all(r["code"] == 0 for r in rounds if r["code"] != -signal.SIGKILL), rounds
    assert all(r["state"] == "new" for r in rounds if r["code"] == 0)
    # the pairs compared against load and run
    for name in ("old", "new"):
        compiled = ov.Core().compile_model(folder / name / "o.xml", "CPU")
        result = compiled(np.zeros((1, 3, 8, 8), np.float32))
        assert result[compiled.output("y")].shape == (1, 5)
        assert result[compiled.output("saliency_map")].shape[-2:] == (8, 8)


def test_sigkill_of_the_installed_command(folder: Path) -> None:
    """One round through a fresh interpreter (start-up included): the next real run in the
    folder recovers it, then refuses the existing output without --force."""
    def cli(*args: str) -> list[str]:
        return [sys.executable, "-c", ENTRY, "insert", "m.onnx", *args]

    for name, args in (("old", OLD_ARGS), ("new", NEW_ARGS)):
        proc = subprocess.run(cli("-o", f"{name}/o.xml", *args), cwd=folder,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    for name in ("o.xml", "o.bin"):
        shutil.copy(folder / "old" / name, folder / "out" / name)
    run = subprocess.Popen(cli("-o", "out/o.xml", "--force", *NEW_ARGS), cwd=folder,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _handlers_installed(run.pid)
    time.sleep(random.Random(SEED).uniform(0.2, 1.0))
    run.kill()
    run.wait(timeout=60)
    proc = subprocess.run(cli("-o", "out/o.xml"), cwd=folder, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "output exists" in proc.stderr, proc.stderr
    assert sorted(os.listdir(folder / "out")) == ["o.bin", "o.xml"]
    assert _pair(folder / "out") in (_pair(folder / "old"), _pair(folder / "new"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_at_a_random_moment_ends_with_one_line(folder: Path, sig: int) -> None:
    rng = random.Random(f"{SEED} {sig}")
    for delay in (0.0, rng.uniform(0.0, 0.6), rng.uniform(0.6, 1.6)):
        proc = _run_and_signal(folder, sig, delay)
        assert "Traceback" not in proc.stderr, proc.stderr
        files = sorted(os.listdir(folder / "out"))
        assert files in ([], ["o.bin", "o.xml"]), files
        if proc.returncode == 0:  # it finished before the signal came
            continue
        assert proc.returncode == 128 + sig, (delay, proc.returncode, proc.stderr)
        name = signal.Signals(sig).name
        assert proc.stderr.splitlines() == [f"xaigraph: error: interrupted by {name}"]


def _run_and_signal(folder: Path, sig: int, delay: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", RESET_SIGNALS + ENTRY, "insert", "m.onnx", "-o", "out/o.xml",
         "--force"],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _handlers_installed(proc.pid)
    time.sleep(delay)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_json_on_a_signal_prints_one_object(folder: Path) -> None:
    """`--json` prints its one object whatever ends the run, a signal included (sent right
    after the handlers are installed: the run is still loading, nothing can have finished)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", RESET_SIGNALS + ENTRY, "insert", "m.onnx", "-o", "out/o.xml",
         "--json"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _handlers_installed(proc.pid)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.splitlines() == ["xaigraph: error: interrupted by SIGTERM"]
    assert json.loads(stdout) == {"ok": False, "exit_code": 143, "error": {
        "kind": "interrupted", "message": "interrupted by SIGTERM"}}
    assert os.listdir(folder / "out") == []

"""A SIGKILL of the driver leaves no Ray process behind: the local instance `explain --engine
ray` starts (GCS, raylet, workers, actors) ends with it, within 10 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from tests import extras
from tests.explain.run_models import classifier
from tests.explain.test_ray_engine import ENTRY, photos

extras.require("ray")


def _children() -> dict[int, int]:
    """pid -> parent pid of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            found[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def _descendants(root: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


@pytest.mark.slow  # Ray's start: about 10 s
def test_no_ray_process_outlives_a_killed_driver(tmp_path: Path) -> None:
    onnx.save(classifier(size=16), tmp_path / "m.onnx")
    photos(tmp_path / "photos", 40)
    driver = subprocess.Popen([sys.executable, "-c", ENTRY, "explain", "m.onnx", "photos", "-o",
                               "out", "--engine", "ray", "--no-overlay"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    ray_pids: set[int] = set()
    while time.monotonic() < deadline and driver.poll() is None:
        ray_pids = {p for p in _descendants(driver.pid) if "ray" in _cmdline(p)}
        if any("raylet" in _cmdline(p) for p in ray_pids) and len(ray_pids) >= 3:
            break
        time.sleep(0.2)
    assert driver.poll() is None and ray_pids, "Ray did not start"
    time.sleep(1.0)  # the pipeline's workers and actors
    ray_pids |= {p for p in _descendants(driver.pid) if "ray" in _cmdline(p)}
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    end = time.monotonic() + 10
    while time.monotonic() < end and any(_alive(p) for p in ray_pids):
        time.sleep(0.2)
    left = {p: _cmdline(p) for p in ray_pids if _alive(p)}
    for pid in left:  # leave the machine clean whatever the verdict
        os.kill(pid, signal.SIGKILL)
    assert not left, f"Ray processes outlived the driver by 10 s: {left}"

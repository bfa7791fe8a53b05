"""`explain --ray-address` on a real two-node Ray cluster (`ray start --head` and a second node
joined with `ray start --address`, both on this machine): the second node's processes are killed
mid-run, and the run still finishes with every record exactly once, equal to the local
engine's (Ray restarts the inference actors and retries the tasks it lost)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import pytest

from tests import extras
from tests.explain.run_models import classifier
from tests.explain.test_ray_engine import ENTRY, photos

extras.require("ray")

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _marked(marker: str) -> list[int]:
    """Processes whose environment holds XAIGRAPH_TEST_NODE=`marker`."""
    found = []
    needle = f"XAIGRAPH_TEST_NODE={marker}".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _kill(marker: str) -> None:
    for pid in _marked(marker):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture()
def cluster() -> Iterator[str]:
    """A head node (3 CPUs) and a second node (2 CPUs) on 127.0.0.1; the head's address.
    Their processes carry XAIGRAPH_TEST_NODE=head|second, by which they are ended."""
    temp = tempfile.mkdtemp(prefix="xr", dir="/tmp")  # short: Ray's socket paths
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--disable-usage-stats"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    try:
        subprocess.run([RAY, "start", "--head", f"--port={port}", "--num-cpus=3",
                        "--include-dashboard=false", f"--temp-dir={temp}", *common],
                       env={**env, "XAIGRAPH_TEST_NODE": "head"}, check=True,
                       capture_output=True, timeout=120)
        subprocess.run([RAY, "start", f"--address={address}", "--num-cpus=2", *common],
                       env={**env, "XAIGRAPH_TEST_NODE": "second"}, check=True,
                       capture_output=True, timeout=120)
        yield address
    finally:
        _kill("second")
        _kill("head")
        shutil.rmtree(temp, ignore_errors=True)


def _records(out: Path) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for r in found:
        r.pop("timings", None)
        r.pop("run", None)
    return sorted(found, key=lambda r: r["key"])


@pytest.mark.slow  # a two-node cluster: about a minute
def test_a_node_killed_mid_run_loses_no_record(tmp_path: Path, cluster: str) -> None:
    onnx.save(classifier(size=16, width=32), tmp_path / "m.onnx")
    photos(tmp_path / "photos", 60)
    args = ["explain", "m.onnx", "photos", "--no-overlay", "--raw"]
    local = subprocess.run([sys.executable, "-c", ENTRY, *args, "-o", "local"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert local.returncode == 3, local.stderr  # broken.jpg
    run = subprocess.Popen([sys.executable, "-c", ENTRY, *args, "-o", "ray", "--engine", "ray",
                            "--ray-address", cluster, "--ray-actors", "2"], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "ray" / ".results.jsonl.partial"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and run.poll() is None:
        if partial.exists() and len(partial.read_text().splitlines()) >= 5:
            break
        time.sleep(0.1)
    assert run.poll() is None, "the run ended before the node could be killed"
    killed = _marked("second")
    assert killed
    _kill("second")
    _, err = run.communicate(timeout=400)
    assert run.returncode == 3, err
    got, want = _records(tmp_path / "ray"), _records(tmp_path / "local")
    assert [r["key"] for r in got] == sorted({r["key"] for r in got})  # each once
    assert got == want

"""`--ray-address` that cannot be joined fails in one line (exit 2) before the model is read or
anything is written: a closed port at once, an address that takes connections but never
answers as Ray within `--ray-timeout`; a signal while it waits ends the run as usual."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import extras
from tests.explain.test_ray_engine import ENTRY, photos
from xaigraph.errors import BadInputError

extras.require("ray")
extras.require("grpc")  # ray[client], which `ray://` addresses need


@pytest.fixture()
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (not a Ray cluster)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for s in held:
        s.close()
    server.close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _start(tmp_path: Path, model: Path, *args: str) -> subprocess.Popen[str]:
    photos(tmp_path / "photos", 2)
    return subprocess.Popen([sys.executable, "-c", ENTRY, "explain", str(model), "photos",
                             "-o", "out", "--engine", "ray", *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_closed_port_is_one_line_at_once(cnn_file: Callable[..., Path],
                                           tmp_path: Path) -> None:
    proc = _start(tmp_path, cnn_file("gap_fc", False, "onnx17"),
                  "--ray-address", f"ray://127.0.0.1:{_closed_port()}")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.splitlines() == [f"xaigraph: error: cannot reach Ray at "
                                f"{proc.args[-1]}: Connection refused"], err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # about 8 s
def test_an_address_that_never_answers_gives_up_after_the_timeout(
        cnn_file: Callable[..., Path], tmp_path: Path, silent_server: int) -> None:
    start = time.monotonic()
    proc = _start(tmp_path, cnn_file("gap_fc", False, "onnx17"), "--ray-address",
                  f"ray://127.0.0.1:{silent_server}", "--ray-timeout", "2")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.splitlines() == [f"xaigraph: error: cannot reach Ray at ray://127.0.0.1:"
                                f"{silent_server}: no Ray answer in 2 s (--ray-timeout)"], err
    assert time.monotonic() - start < 30  # Ray's own retries take about a minute
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # about 10 s
def test_sigterm_while_joining_ends_the_run(cnn_file: Callable[..., Path], tmp_path: Path,
                                            silent_server: int) -> None:
    proc = _start(tmp_path, cnn_file("gap_fc", False, "onnx17"), "--ray-address",
                  f"ray://127.0.0.1:{silent_server}", "--ray-timeout", "120")
    time.sleep(8)  # imports, then the wait for an answer
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.splitlines() == ["xaigraph: error: interrupted by SIGTERM"], err
    assert not (tmp_path / "out").exists()


def test_reachable_waits_for_an_answer_then_gives_up() -> None:
    from xaigraph.explain.ray_engine import reachable

    calls: list[float] = []

    def no_answer(where: tuple[str, int], timeout: float) -> socket.socket:
        calls.append(timeout)
        time.sleep(timeout)
        raise TimeoutError("timed out")

    start = time.monotonic()
    with pytest.raises(BadInputError, match=r"no answer in 1\.5 s \(--ray-timeout\)"):
        reachable("ray://head:10001", 1.5, connect=no_answer)
    assert 1.0 <= time.monotonic() - start < 5 and calls
    reachable("auto", 1.0, connect=no_answer)  # not HOST:PORT: Ray finds it
    assert len(calls) < 5

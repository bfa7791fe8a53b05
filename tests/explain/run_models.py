"""Torch-free models and photos for the run-loop tests, and the command line in a subprocess.

    x [N,3,32,32] -> Conv(8) -> Relu -> Conv(8) -> Relu -> GlobalAveragePool -> Flatten
      -> Gemm(fc, 5 classes) -> Softmax -> y [N,5]

A dynamic batch, so that every batch size runs; the weights are seeded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from PIL import Image

from tests.unit.files_models import ENTRY, RESET_SIGNALS

__all__ = ["ENTRY", "classifier", "cli", "photos", "popen", "popen_holding_lock"]


def classifier(seed: int = 0, size: int = 32, width: int = 8,
               classes: int = 5) -> onnx.ModelProto:
    """`width` channels in each Conv (a wider model spends longer in the runtime)."""
    rng = np.random.default_rng(seed)

    def tensor(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(
            (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["l"], name="fc", transB=1),
        helper.make_node("Softmax", ["l"], ["y"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "run_loop",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", classes])],
        [tensor("w1", width, 3, 3, 3), tensor("w2", width, width, 3, 3),
         tensor("fc", classes, width)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def photos(folder: Path, count: int, seed: int = 0, size: tuple[int, int] = (48, 64)) -> Path:
    """`count` PNGs `im000.png` ... of random structured content."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(count):
        base = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
        big = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))
        Image.fromarray(big).save(folder / f"im{i:03d}.png")
    return folder


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    return env


def popen(*args: str | Path, cwd: Path | None = None) -> subprocess.Popen[str]:
    """`xaigraph ARGS` in a subprocess, started as the installed command starts from an
    interactive shell (SIGINT and SIGHUP not ignored, even when the tests run as a
    background job, which ignores SIGINT, and the entry point keeps an ignored signal so)."""
    return subprocess.Popen([sys.executable, "-c", RESET_SIGNALS + ENTRY, *map(str, args)],
                            cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())


def cli(*args: str | Path, cwd: Path | None = None, timeout: float = 120,
        prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`xaigraph ARGS` in a subprocess; `prelude` is Python run first (a test's fault
    injection), so that a crash by signal or an abort shows as an exit status. A run that
    does not end within `timeout` fails the test with every thread's stack."""
    proc = subprocess.Popen([sys.executable, "-c", prelude + ENTRY, *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**_env(), "PYTHONFAULTHANDLER": "1"})
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        _, stderr = proc.communicate(timeout=60)
        raise AssertionError(f"xaigraph {' '.join(map(str, args))}: no exit in {timeout} s:"
                             f"\n{stderr}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


HOLD_LOCK = """
import fcntl, os, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX)
f.seek(0); f.truncate(); f.write(str(os.getpid())); f.flush()
print("ready", flush=True)
time.sleep(600)
"""


def popen_holding_lock(lock: Path) -> subprocess.Popen[str]:
    """A process that holds `lock` as a run holds its OUT_DIR's (flock, its pid inside)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc

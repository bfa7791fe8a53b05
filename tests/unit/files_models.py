"""A tiny ONNX classifier for the file-handling tests, and the command line in a subprocess.

    x [1,3,8,8] -> Conv(w) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(fc) -> Softmax -> y

`constants=True` gives the weights as `Constant` nodes instead of initializers. The
subprocess runs what the installed `xaigraph` command runs (`ENTRY`), so a crash by signal
shows as an exit status instead of taking the test process down.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["ENTRY", "RESET_SIGNALS", "ROOT", "Run", "classifier", "invoke", "run_cli",
           "save_external"]

ROOT = Path(__file__).parents[2]


def _entry() -> str:
    """What the installed `xaigraph` command runs: pyproject's `[project.scripts]` entry."""
    scripts = (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1]
    target = scripts.split("[")[0].split("=", 1)[1].split()[0].strip('"')
    module, func = target.split(":")
    return f"import sys; sys.argv[0] = 'xaigraph'; from {module} import {func}; sys.exit({func}())"


ENTRY = _entry()
# As when started from an interactive shell, whatever ignores signals in the test's parent
# (a background job ignores SIGINT, nohup SIGHUP, and the entry point keeps them ignored)
RESET_SIGNALS = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "signal.signal(signal.SIGHUP, signal.SIG_DFL); ")


def classifier(constants: bool = False, seed: int = 0, width: int = 4) -> onnx.ModelProto:
    """`width` channels after the Conv (16 or more: its weights pass onnx's 1 KiB threshold
    for external data)."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((width, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.standard_normal((5, width)).astype(np.float32), "fc")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["l"], name="fc", transB=1),
        helper.make_node("Softmax", ["l"], ["y"], name="softmax", axis=1),
    ]
    inits = [w, fc]
    if constants:
        nodes = [helper.make_node("Constant", [], [t.name], name=f"const_{t.name}", value=t)
                 for t in inits] + nodes
        inits = []
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 5])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def save_external(model: onnx.ModelProto, path: Path, location: str = "weights.bin") -> None:
    """Save with every tensor (Constant values too) in the external file `location` (a copy:
    saving this way rewrites the proto)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    onnx.save_model(copy, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0, convert_attribute=True)


def run_cli(*args: str | Path, cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The command line in a subprocess (for what crashes or hangs on old code)."""
    return subprocess.run([sys.executable, "-c", ENTRY, *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str | Path, cwd: Path) -> Run:
    """The command line in this process (for what cannot crash or hang), from `cwd`."""
    from click.testing import CliRunner

    from xaigraph.cli import cli

    with contextlib.chdir(cwd):
        result = CliRunner().invoke(cli, list(map(str, args)))
    return Run(result.exit_code, result.stdout, result.stderr)

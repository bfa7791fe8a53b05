"""Fuzz: mutated tiny models through `xaigraph insert` and `xaigraph inspect`.

Hypothesis mutates the hand-built classifier of `tests.fuzz_models`: its IR's XML text, its
`.bin` bytes, its ONNX bytes and its ONNX structure (inputs, nodes, attributes,
initializers, shapes, types, opset). Each case runs `inspect` and `insert` by one route
(IR->IR, ONNX->IR, ONNX->ONNX) in a worker process (`tests.integration.fuzz_worker`, click's
CliRunner in-process, so a signal or a hang is caught), and one case in 20 also through the real
`xaigraph` executable. Whatever the input, it must hold that:

- no crash by a signal, no hang (30 s a command);
- no traceback, no exception escaping the CLI;
- at most one line on stderr (native libraries' loggers included), exit code 0, 1 or 2;
- on failure nothing is left in OUT's folder, on success only OUT (and its `.bin`); the
  input files are never changed.

`make test` runs 200 cases with a fixed seed (`XAIGRAPH_FUZZ_CASES`, default 200);
`make fuzz` runs 2000 with fresh randomness.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzz_models

CASES = int(os.environ.get("XAIGRAPH_FUZZ_CASES", "200"))
RANDOM = os.environ.get("XAIGRAPH_FUZZ_RANDOM", "") == "1"
TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).with_name("xaigraph")


class Worker:
    """The worker process; restarted after it dies or hangs."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.fuzz_worker"], cwd=ROOT, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return self.proc

    def run(self, args: list[str]) -> dict[str, Any]:
        proc = self.start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"args": args}) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        if not ready:
            self.stop()
            raise AssertionError(f"hang: no answer in {TIMEOUT:.0f} s for {args}")
        line = proc.stdout.readline()
        if not line:
            code = proc.wait()
            self.proc = None
            raise AssertionError(f"crash: the command died with exit {code} "
                                 f"(signal {-code if code < 0 else None}) for {args}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    w.stop()


# -- mutations ------------------------------------------------------------------------------

OV_TYPES = ["Convolution", "MatMul", "ReduceMean", "Relu", "Const", "Parameter", "Result",
            "Add", "SoftMax", "Reshape", "Concat", "Nope", ""]
ATTR_VALUES = ["", "f32", "f16", "i64", "u8", "boolean", "?", "-1", "0", "1,2", "abc", "NaN",
               "99999999999999999999", "1,1,1,1,1", "same_upper", "-3"]
NUMBERS = [0, 1, 2, 3, -1, 7, 255, 2**31 - 1, 2**31, 2**63, 10**30]
ONNX_OPS = ["Conv", "Relu", "GlobalAveragePool", "Flatten", "MatMul", "Gemm", "Add",
            "Softmax", "Reshape", "Identity", "MaxPool", "Transpose", "Nope"]
ELEM_TYPES = [0, 1, 2, 6, 7, 9, 10, 11, 16, 99]


def mutate_text(data: st.DataObject, text: str) -> str:
    how = data.draw(st.sampled_from(["number", "attr", "type", "delete", "duplicate",
                                     "insert", "lines"]), label="xml mutation")
    if how == "number":
        spots = [m.span() for m in re.finditer(r"-?\d+", text)]
        i, j = data.draw(st.sampled_from(spots))
        value = data.draw(st.one_of(st.sampled_from(NUMBERS), st.integers(-10**6, 10**6)))
        return text[:i] + str(value) + text[j:]
    if how == "attr":
        spots = [m.span(1) for m in re.finditer(r'="([^"]*)"', text)]
        i, j = data.draw(st.sampled_from(spots))
        return text[:i] + data.draw(st.sampled_from(ATTR_VALUES)) + text[j:]
    if how == "type":
        spots = [m.span(1) for m in re.finditer(r'type="([^"]*)"', text)]
        i, j = data.draw(st.sampled_from(spots))
        return text[:i] + data.draw(st.sampled_from(OV_TYPES)) + text[j:]
    if how == "lines":
        lines = text.splitlines(keepends=True)
        i = data.draw(st.integers(0, len(lines) - 1))
        j = data.draw(st.integers(i, min(len(lines), i + 8)))
        return "".join(lines[:i] + lines[j:])
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, min(len(text), i + 64)))
    if how == "delete":
        return text[:i] + text[j:]
    if how == "duplicate":
        return text[:j] + text[i:j] + text[j:]
    junk = data.draw(st.text(alphabet='<>/="? abcdefglnprtyx0123456789-', max_size=24))
    return text[:i] + junk + text[i:]


def mutate_bytes(data: st.DataObject, blob: bytes) -> bytes:
    how = data.draw(st.sampled_from(["truncate", "flip", "insert", "delete", "special"]),
                    label="byte mutation")
    i = data.draw(st.integers(0, max(len(blob) - 1, 0)))
    if how == "truncate":
        return blob[:i]
    if how == "flip":
        count = data.draw(st.integers(1, 8))
        out = bytearray(blob)
        for k in range(count):
            pos = (i + 97 * k) % max(len(out), 1)
            if out:
                out[pos] ^= data.draw(st.integers(1, 255))
        return bytes(out)
    if how == "insert":
        return blob[:i] + data.draw(st.binary(min_size=1, max_size=32)) + blob[i:]
    if how == "delete":
        return blob[:i] + blob[i + data.draw(st.integers(1, 64)):]
    special = data.draw(st.sampled_from([b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f",
                                         b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"]))
    pos = i - i % 4
    return blob[:pos] + special * data.draw(st.integers(1, 16)) + blob[pos + 4:]


def mutate_structure(data: st.DataObject, model: onnx.ModelProto) -> onnx.ModelProto:
    """One edit of the ONNX graph's structure, as a model an exporter might write."""
    g = model.graph
    how = data.draw(st.sampled_from(["drop_input", "drop_node", "op_type", "attr",
                                     "init_dims", "input_dims", "elem_type", "opset",
                                     "swap", "rename", "drop_output", "extra_output"]),
                    label="onnx mutation")
    node = g.node[data.draw(st.integers(0, len(g.node) - 1))]
    if how == "drop_input" and node.input:
        del node.input[data.draw(st.integers(0, len(node.input) - 1))]
    elif how == "drop_node":
        g.node.remove(node)
    elif how == "op_type":
        node.op_type = data.draw(st.sampled_from(ONNX_OPS))
    elif how == "attr":
        name = data.draw(st.sampled_from(["pads", "strides", "kernel_shape", "axis",
                                          "dilations", "group", "transA"]))
        value = data.draw(st.one_of(st.integers(-3, 9),
                                    st.lists(st.integers(-2, 9), min_size=1, max_size=6)))
        del node.attribute[:]
        node.attribute.append(onnx.helper.make_attribute(name, value))
    elif how == "init_dims":
        init = g.initializer[data.draw(st.integers(0, len(g.initializer) - 1))]
        dims = data.draw(st.lists(st.integers(0, 6), max_size=5))
        del init.dims[:]
        init.dims.extend(dims)
    elif how == "input_dims":
        dim = g.input[0].type.tensor_type.shape.dim[data.draw(st.integers(0, 3))]
        value = data.draw(st.one_of(st.sampled_from([0, 1, 2, 10**6]), st.just("N"),
                                    st.just(None)))
        if isinstance(value, int):
            dim.dim_value = value
        elif value is None:
            dim.Clear()
        else:
            dim.dim_param = value
    elif how == "elem_type":
        target = data.draw(st.sampled_from([g.input[0], g.output[0]]))
        target.type.tensor_type.elem_type = data.draw(st.sampled_from(ELEM_TYPES))
    elif how == "opset":
        model.opset_import[0].version = data.draw(st.sampled_from([1, 7, 11, 13, 21, 99]))
    elif how == "swap" and len(g.node) > 1:
        a, b = g.node[0], g.node[len(g.node) - 1]
        first, last = onnx.NodeProto(), onnx.NodeProto()
        first.CopyFrom(a)
        last.CopyFrom(b)
        a.CopyFrom(last)
        b.CopyFrom(first)
    elif how == "rename" and node.output:
        node.output[0] = data.draw(st.sampled_from(["", "x", "logits", "renamed"]))
    elif how == "drop_output":
        del g.output[:]
    elif how == "extra_output":
        g.output.append(onnx.helper.make_tensor_value_info(node.output[0] if node.output
                                                           else "z", 1, None))
    return model


# -- the properties -------------------------------------------------------------------------


def check(reply: dict[str, Any], args: list[str]) -> None:
    where = f"for {' '.join(args)}: {reply}"
    assert reply["exception"] is None, where
    assert reply["code"] in (0, 1, 2), where
    everything = reply["stdout"] + reply["stderr"] + reply["native_stderr"]
    assert "Traceback" not in everything, where
    err_lines = (reply["stderr"] + reply["native_stderr"]).strip().splitlines()
    assert len(err_lines) <= (0 if reply["code"] == 0 else 1), where
    assert reply["native_stdout"] == "", where
    if reply["code"]:
        assert err_lines[0].startswith("xaigraph: error: "), where
    if "--json" in args:
        obj = json.loads(reply["stdout"])
        assert obj["ok"] is (reply["code"] == 0) and obj["exit_code"] == reply["code"], where


def check_real(args: list[str]) -> None:
    proc = subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=TIMEOUT)
    reply = {"code": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
             "native_stdout": "", "native_stderr": "", "exception": None}
    check(reply, args)


def run_case(worker: Worker, folder: Path, model: Path, suffix: str, real: bool) -> None:
    inputs = {p.name: p.read_bytes() for p in folder.iterdir()}
    out_dir = folder.parent / "out"
    out_dir.mkdir()
    out = out_dir / f"o{suffix}"
    commands = [["inspect", str(model), "--json"],
                ["insert", str(model), "-o", str(out), "-m", "reciprocam", "--json"]]
    for args in commands:
        reply = worker.run(args)
        check(reply, args)
        written = sorted(p.name for p in out_dir.iterdir())
        if args[0] == "insert":
            expected = sorted(p.name for p in outputs(out)) if reply["code"] == 0 else []
            assert written == expected, f"left behind {written} for {args}: {reply['stderr']}"
    if real:
        for p in out_dir.iterdir():
            p.unlink()
        check_real(commands[1])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == inputs, "input changed"


def outputs(out: Path) -> list[Path]:
    return [out, out.with_suffix(".bin")] if out.suffix == ".xml" else [out]


TARGETS = ["ir_xml", "ir_bin", "onnx_bytes", "onnx_structure"]
_IR: dict[str, bytes] = {}


def write_base_ir(folder: Path) -> Path:
    """The tiny IR, the same bytes in every case (OpenVINO numbers unnamed ops per process,
    and hypothesis needs the same input to replay a case)."""
    if not _IR:
        with tempfile.TemporaryDirectory() as tmp:
            xml = fuzz_models.write_ir(Path(tmp))
            _IR.update(xml=xml.read_bytes(), bin=xml.with_suffix(".bin").read_bytes())
    model = folder / "tiny.xml"
    model.write_bytes(_IR["xml"])
    model.with_suffix(".bin").write_bytes(_IR["bin"])
    return model


@settings(max_examples=CASES, deadline=None, derandomize=not RANDOM, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_insert_and_inspect(worker: Worker, data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(TARGETS), label="target")
    real = data.draw(st.integers(0, 19), label="real executable") == 0
    with tempfile.TemporaryDirectory(prefix="xaigraph-fuzz-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        if target.startswith("ir_"):
            model = write_base_ir(folder)
            if target == "ir_xml":
                model.write_text(mutate_text(data, model.read_text()))
            else:
                bin_path = model.with_suffix(".bin")
                bin_path.write_bytes(mutate_bytes(data, bin_path.read_bytes()))
            suffix = ".xml"
        else:
            model = folder / "tiny.onnx"
            proto = fuzz_models.onnx_classifier()
            if target == "onnx_bytes":
                model.write_bytes(mutate_bytes(data, proto.SerializeToString()))
                suffix = data.draw(st.sampled_from([".xml", ".onnx"]), label="route")
            else:
                proto = mutate_structure(data, proto)
                model.write_bytes(proto.SerializeToString())
                suffix = data.draw(st.sampled_from([".xml", ".onnx"]), label="route")
        run_case(worker, folder, model, suffix, real)

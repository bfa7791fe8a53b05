"""The bad-input suite's machinery (issue 21, "Done when"): a `Case` is one command line over
files it makes in a folder of its own; `run` runs it as the installed `xaigraph` runs, in a
subprocess, and `violations` lists what it broke of the runtime's promises:

- the exit status is one of 0, 2, 3, 130, 143;
- no traceback, and never "internal error" (bad input is the user's, not a bug);
- exit 2: exactly one stderr line, `xaigraph: error: ...`, and nothing written (the case's
  folder, OUT_DIR included, as it was);
- any exit: no file outside what the command writes (`Case.out`) changed, added or
  removed (names, types, sizes, modification times, link targets);
- every `*.json`, `*.jsonl` and `data.js` in what it wrote, and the stdout of `--json`, is
  strict JSON (`NaN`, `Infinity` refused).

The cases themselves are `tests.explain.bad_cases.CASES`; the models and runs they start
from are made once by `make_kit`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tests.explain.run_models import ENTRY, classifier, photos

ROOT = Path(__file__).resolve().parents[2]
EXITS = frozenset({0, 2, 3, 130, 143})
TIMEOUT = 90.0

Setup = Callable[[Path], object]


def _nothing(root: Path) -> None:
    return None


@dataclass(frozen=True)
class Case:
    """`xaigraph ARGS` run in `cwd` (below the case's folder) after `setup(folder)` made its
    files and the `kit` entries were copied in. `out`: what the command may write (paths
    relative to the case's folder); `stdin`: what it reads on standard input."""

    name: str
    args: tuple[str, ...]
    setup: Setup = _nothing
    kit: tuple[str, ...] = ("cnn.onnx",)
    out: tuple[str, ...] = ("out",)
    cwd: str = "."
    stdin: bytes = b""


@dataclass(frozen=True)
class Outcome:
    case: Case
    root: Path
    code: int
    stdout: str
    stderr: str
    seconds: float
    before: dict[str, tuple[Any, ...]]
    after: dict[str, tuple[Any, ...]]
    written: list[Path]


# -- the kit: models and runs the cases start from, made once ---------------------------------

def _with_input(model: onnx.ModelProto, dims: list[int | str]) -> onnx.ModelProto:
    model.graph.input[0].CopyFrom(
        helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, dims))
    return model


def _two_inputs() -> onnx.ModelProto:
    """The classifier over the sum of two image inputs."""
    model = classifier()
    model.graph.node[0].input[0] = "xs"
    model.graph.node.insert(0, helper.make_node("Add", ["x", "x2"], ["xs"], name="add"))
    model.graph.input.append(
        helper.make_tensor_value_info("x2", onnx.TensorProto.FLOAT, ["N", 3, 32, 32]))
    return model


def _nan_scores() -> onnx.ModelProto:
    model = classifier()
    for init in model.graph.initializer:
        if init.name == "fc":
            nan = np.full_like(numpy_helper.to_array(init), np.nan)
            init.CopyFrom(numpy_helper.from_array(nan, "fc"))
    return model


def _flat() -> onnx.ModelProto:
    """No image input: x [N, 10] -> Gemm -> Softmax."""
    w = numpy_helper.from_array(np.eye(5, 10, dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["l"], transB=1),
         helper.make_node("Softmax", ["l"], ["y"], axis=1)], "flat",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 10])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 5])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _int_input() -> onnx.ModelProto:
    """The classifier behind an int64 input (Cast)."""
    model = classifier()
    model.graph.node[0].input[0] = "xf"
    model.graph.node.insert(0, helper.make_node("Cast", ["x"], ["xf"], to=onnx.TensorProto.FLOAT))
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.INT64
    return model


MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "cnn.onnx": classifier,
    "two_inputs.onnx": _two_inputs,
    "zero_dims.onnx": lambda: _with_input(classifier(), ["N", 3, 0, 0]),
    "huge_input.onnx": lambda: _with_input(classifier(), [1, 3, 100000, 100000]),
    "dynamic.onnx": lambda: _with_input(classifier(), ["N", 3, "H", "W"]),
    "nan_scores.onnx": _nan_scores,
    "flat.onnx": _flat,
    "int_input.onnx": _int_input,
}


def _cli(args: list[str], cwd: Path) -> None:
    result = subprocess.run([sys.executable, "-c", ENTRY, *args], cwd=cwd, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"kit: xaigraph {' '.join(args)}: {result.stderr}"


def _voc(root: Path, names: tuple[str, ...] = ("a", "b")) -> Path:
    """A Pascal VOC set: JPEGImages/<name>.png (64 x 48) with one `class 1` box each."""
    photos(root / "JPEGImages", len(names))
    (root / "Annotations").mkdir(parents=True)
    for i, name in enumerate(names):
        (root / "JPEGImages" / f"im{i:03d}.png").rename(root / "JPEGImages" / f"{name}.png")
        (root / "Annotations" / f"{name}.xml").write_text(voc_xml(f"{name}.png"))
    return root


def voc_xml(filename: str, name: str = "class 1", box: tuple[str, ...] = ("4", "4", "30", "40"),
            extra: str = "") -> str:
    x1, y1, x2, y2 = box
    return (f"<annotation>{extra}<filename>{filename}</filename><object><name>{name}</name>"
            f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
            "</bndbox></object></annotation>")


def make_kit(folder: Path) -> Path:
    """The models of `MODELS`, the classifier as IR (`cnn.xml`) and augmented (`aug.xml`),
    the tiny detector (`det.onnx`), and in `base/`: photos, a VOC set (`base/voc`), an
    explain run of it (`base/run`, `--raw`) and an eval (`base/ev`)."""
    from tests import tiny_onnx

    folder.mkdir(parents=True, exist_ok=True)
    for name, build in MODELS.items():
        onnx.save(build(), folder / name)
    import openvino as ov

    ov.save_model(ov.Core().read_model(folder / "cnn.onnx"), folder / "cnn.xml",
                  compress_to_fp16=False)
    onnx.save(tiny_onnx.detector(3), folder / "det.onnx")
    _cli(["insert", "cnn.onnx", "-o", "aug.xml", "--no-validate"], folder)
    base = folder / "base"
    photos(base / "photos", 2)
    shutil.copy(folder / "cnn.onnx", base / "cnn.onnx")
    _voc(base / "voc")
    _cli(["explain", "cnn.onnx", "voc", "-o", "run", "--raw", "--no-overlay"], base)
    _cli(["eval", "cnn.onnx", "voc", "-o", "ev", "--methods", "reciprocam", "--metrics",
          "pointing_game,mass_in_box", "--resamples", "20"], base)
    return folder


def _place(kit: Path, name: str, root: Path) -> None:
    source = kit / name
    if source.is_dir():
        shutil.copytree(source, root / name, symlinks=True)
        return
    shutil.copy(source, root / name)
    if source.suffix == ".xml":
        shutil.copy(source.with_suffix(".bin"), root / Path(name).with_suffix(".bin"))


# -- running a case ---------------------------------------------------------------------------

def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _under(rel: str, outs: tuple[str, ...]) -> bool:
    return any(rel == o or rel.startswith(o.rstrip("/") + "/") for o in outs)


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[Any, ...]]:
    """Every entry below `root` (links not followed) by relative path: its type and, for a
    file its size and modification time, for a link its target; `skip`'s entries left out."""
    found: dict[str, tuple[Any, ...]] = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            rel = os.path.relpath(path, root)
            if _under(rel, skip):
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                found[rel] = ("file", st.st_size, st.st_mtime_ns)
            else:
                found[rel] = (stat.S_IFMT(st.st_mode),)
    return found


def _communicate(proc: subprocess.Popen[bytes], stdin: bytes, args: tuple[str, ...]
                 ) -> tuple[bytes, bytes]:
    try:
        return proc.communicate(stdin, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        _, err = proc.communicate(timeout=60)
        raise AssertionError(f"xaigraph {' '.join(args)}: no exit in {TIMEOUT:.0f} s\n"
                             f"{err.decode(errors='replace')}") from None


def run(case: Case, root: Path, kit: Path) -> Outcome:
    """`case` made in `root` (a fresh folder) and run; its snapshots before and after."""
    root.mkdir(parents=True)
    for name in case.kit:
        _place(kit, name, root)
    case.setup(root)
    before = snapshot(root)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", ENTRY, *case.args], cwd=root / case.cwd,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**_env(), "PYTHONFAULTHANDLER": "1"})
    out, err = _communicate(proc, case.stdin, case.args)
    seconds = time.monotonic() - start
    written = [root / o for o in case.out if os.path.lexists(root / o)]
    return Outcome(case, root, proc.returncode, out.decode(errors="replace"),
                   err.decode(errors="replace"), seconds, before, snapshot(root), written)


# -- what must hold -----------------------------------------------------------------------------

def strict(text: str) -> Any:
    """`text` as a strict JSON reader reads it: NaN, Infinity and -Infinity refused."""
    def reject(name: str) -> Any:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=reject)


def _json_files(paths: list[Path]) -> Iterator[Path]:
    """The regular files of `paths` (links to files, FIFOs and devices left unread)."""
    for top in paths:
        tops = [(str(top.parent), [], [top.name])] if not top.is_dir() else os.walk(top)
        for folder, _, files in tops:
            for name in files:
                if stat.S_ISREG(os.lstat(os.path.join(folder, name)).st_mode):
                    yield Path(folder, name)


def _strict_file(path: Path) -> str | None:
    """Why `path` is not strict JSON (None: it is, or it is not a JSON file)."""
    if path.suffix not in (".json", ".jsonl") and path.name != "data.js":
        return None
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            for line in text.splitlines():
                strict(line)
        elif path.name == "data.js":
            strict(text[text.index("=") + 1:].strip().rstrip(";"))
        else:
            strict(text)
    except (ValueError, OSError) as exc:
        return f"{path}: {exc}"
    return None


def _changes(before: dict[str, tuple[Any, ...]], after: dict[str, tuple[Any, ...]],
             skip: tuple[str, ...]) -> list[str]:
    keep = {k: v for k, v in before.items() if not _under(k, skip)}
    now = {k: v for k, v in after.items() if not _under(k, skip)}
    return sorted({k for k in keep.keys() | now.keys() if keep.get(k) != now.get(k)})


def _new(o: Outcome, path: Path) -> bool:
    """Whether the command wrote `path` (not there before, or changed)."""
    rel = os.path.relpath(path, o.root)
    return o.before.get(rel) != o.after.get(rel)


def violations(o: Outcome) -> list[str]:
    """What `o` broke of the suite's invariants (the module's docstring); empty: nothing."""
    found = []
    if o.code not in EXITS:
        found.append(f"exit {o.code}, not one of {sorted(EXITS)}")
    if "Traceback" in o.stderr or "Traceback" in o.stdout:
        found.append("a traceback")
    if "internal error" in o.stderr:
        found.append("an internal error")
    lines = o.stderr.splitlines()
    if o.code == 2 and (len(lines) != 1 or not lines[0].startswith("xaigraph: error: ")):
        found.append(f"exit 2 with {len(lines)} stderr lines, not one 'xaigraph: error:' line")
    changed = _changes(o.before, o.after, () if o.code == 2 else o.case.out)
    if changed:
        where = "anywhere (exit 2)" if o.code == 2 else "outside OUT"
        found.append(f"changed {where}: {changed[:5]}")
    found += [why for p in _json_files(o.written)
              if _new(o, p) and (why := _strict_file(p)) is not None]
    if "--json" in o.case.args:
        try:
            strict(o.stdout)
        except ValueError as exc:
            found.append(f"--json stdout: {exc}")
    return found

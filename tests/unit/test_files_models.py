"""Reading models safely and writing them whole: malformed ONNX never reaches OpenVINO's
reader (it crashes on some), a FIFO is not read, external data in `Constant` nodes is
followed, and an existing `OUT.onnx.data` needs --force."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.unit.files_models import classifier, invoke, run_cli, save_external


def _one_line_error(proc: object, *words: str) -> None:
    code, stderr = proc.returncode, proc.stderr  # type: ignore[attr-defined]
    assert code == 2, (code, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xaigraph: error: "), stderr
    for word in words:
        assert word in lines[0], stderr


def _ort(path: Path, x: np.ndarray) -> list[np.ndarray]:
    """The outputs `y` and (when there) `saliency_map`."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs() if o.name in ("y", "saliency_map")]
    return session.run(names, {"x": x})  # type: ignore[return-value]


# -- item 1: OpenVINO's ONNX reader crashes (SIGSEGV) on these; the checker stops them ------


def _conv_without_weights() -> onnx.ModelProto:
    """x -> Conv (one input: no weights) -> GlobalAveragePool -> Flatten -> y"""
    model = classifier()
    del model.graph.node[0].input[1:]
    return model


def _pool_without_input() -> onnx.ModelProto:
    """GlobalAveragePool (no input) -> Flatten -> y"""
    model = classifier()
    del model.graph.node[2].input[:]
    return model


@pytest.mark.parametrize("make", [_conv_without_weights, _pool_without_input])
@pytest.mark.parametrize("out", ["o.xml", "o.onnx"])
def test_malformed_onnx_is_refused_before_openvino_reads_it(tmp_path: Path, make: object,
                                                            out: str) -> None:
    onnx.save(make(), str(tmp_path / "bad.onnx"))  # type: ignore[operator]
    proc = run_cli("insert", "bad.onnx", "-o", out, cwd=tmp_path)
    _one_line_error(proc, "bad.onnx is not a valid ONNX model", "input size")
    assert sorted(os.listdir(tmp_path)) == ["bad.onnx"]


def test_in_memory_onnx_is_checked_too(tmp_path: Path) -> None:
    """The Python API with a ModelProto (in a subprocess: old code crashed the process)."""
    onnx.save(_conv_without_weights(), str(tmp_path / "bad.onnx"))
    code = ("import onnx, xaigraph\n"
            "try:\n"
            "    xaigraph.insert(onnx.load('bad.onnx'), output_format='ir')\n"
            "except xaigraph.BadInputError as exc:\n"
            "    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "not a valid ONNX model" in proc.stdout


# -- item 5: weights in Constant nodes stored as external data -----------------------------


@pytest.mark.parametrize("out", ["o.onnx", "o.xml"])
@pytest.mark.parametrize("from_model_folder", [True, False])
def test_constant_weights_in_external_data_are_followed(tmp_path: Path, out: str,
                                                        from_model_folder: bool) -> None:
    model_dir, out_dir = tmp_path / "model", tmp_path / "out"
    model_dir.mkdir()
    out_dir.mkdir()
    reference = classifier(constants=True)
    save_external(reference, model_dir / "m.onnx")
    stored = onnx.load(str(model_dir / "m.onnx"), load_external_data=False)
    assert stored.graph.node[0].attribute[0].t.data_location == onnx.TensorProto.EXTERNAL

    cwd = model_dir if from_model_folder else tmp_path
    proc = invoke("insert", model_dir / "m.onnx", "-o", out_dir / out, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    (expected,) = _ort_model(reference, x)
    if out.endswith(".onnx"):
        shutil.move(out_dir, tmp_path / "moved")  # the output carries its weights with it
        y, saliency = _ort(tmp_path / "moved" / out, x)
        assert saliency.shape == (1, 5, 8, 8)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def _ort_model(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})  # type: ignore[return-value]


def test_constant_external_data_outside_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    save_external(classifier(constants=True), tmp_path / "m.onnx", location="w.bin")
    model = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    for node in model.graph.node[:2]:
        for entry in node.attribute[0].t.external_data:
            if entry.key == "location":
                entry.value = "../w.bin"
    onnx.save(model, str(tmp_path / "model" / "m.onnx"))
    for out in ("o.onnx", "o.xml"):
        proc = invoke("insert", tmp_path / "model" / "m.onnx", "-o", out, cwd=tmp_path)
        _one_line_error(proc, "outside the model's folder")
    assert not (tmp_path / "o.onnx").exists() and not (tmp_path / "o.xml").exists()


# -- item 4: an existing OUT.onnx.data is an existing output --------------------------------


def test_existing_data_file_needs_force(tmp_path: Path) -> None:
    save_external(classifier(), tmp_path / "m.onnx")
    data = tmp_path / "o.onnx.data"
    data.write_bytes(b"someone's data")
    proc = invoke("insert", "m.onnx", "-o", "o.onnx", cwd=tmp_path)
    _one_line_error(proc, "output exists", "o.onnx.data", "--force")
    assert data.read_bytes() == b"someone's data" and not (tmp_path / "o.onnx").exists()

    proc = invoke("insert", "m.onnx", "-o", "o.onnx", "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # the weights are under onnx's 1 KiB threshold: the new OUT has no data file, and the
    # old one went with the old OUT
    assert not data.exists()
    x = np.zeros((1, 3, 8, 8), np.float32)
    np.testing.assert_allclose(_ort(tmp_path / "o.onnx", x)[0], _ort(tmp_path / "m.onnx", x)[0],
                               rtol=1e-5, atol=1e-6)


def test_force_replaces_a_pair_with_external_data(tmp_path: Path) -> None:
    """Run from OUT's folder (onnx's own converter refuses an existing data file there)."""
    save_external(classifier(width=16), tmp_path / "m.onnx")
    for seed, force in ((0, ()), (1, ("--force",))):
        proc = invoke("insert", "m.onnx", "-o", "o.onnx", "--targets", f"{seed}", *force,
                       cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / "o.onnx.data").stat().st_size >= 16 * 27 * 4
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    y, saliency = _ort(tmp_path / "o.onnx", x)
    np.testing.assert_allclose(y, _ort(tmp_path / "m.onnx", x)[0], rtol=1e-5, atol=1e-6)
    assert saliency.shape == (1, 1, 8, 8)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "o.onnx", "o.onnx.data", "weights.bin"]


def test_data_file_of_another_model_is_not_an_output(tmp_path: Path) -> None:
    """Without external data, OUT is the .onnx alone: a data file of that name stays."""
    onnx.save(classifier(), str(tmp_path / "m.onnx"))
    (tmp_path / "o.onnx.data").write_bytes(b"keep")
    proc = invoke("insert", "m.onnx", "-o", "o.onnx", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.onnx.data").read_bytes() == b"keep"


# -- item 6: non-regular files, long names ---------------------------------------------------


@pytest.mark.parametrize("name", ["m.onnx", "m.xml"])
def test_a_fifo_as_model_is_refused(tmp_path: Path, name: str) -> None:
    os.mkfifo(tmp_path / name)
    proc = run_cli("insert", name, "-o", "o.xml", cwd=tmp_path, timeout=30)
    _one_line_error(proc, "not a regular file")


def test_a_fifo_as_weights_is_refused(tmp_path: Path) -> None:
    proc = invoke("insert", "m.onnx", "-o", "o.xml", "--no-validate", cwd=_ir(tmp_path))
    assert proc.returncode == 0, proc.stderr
    os.replace(tmp_path / "o.xml", tmp_path / "ir.xml")
    (tmp_path / "o.bin").unlink()
    os.mkfifo(tmp_path / "ir.bin")
    proc = run_cli("inspect", "ir.xml", cwd=tmp_path, timeout=30)
    _one_line_error(proc, "not a regular file")


def _ir(folder: Path) -> Path:
    onnx.save(classifier(), str(folder / "m.onnx"))
    return folder


@pytest.mark.parametrize("length", [242, 250, 255])
@pytest.mark.parametrize("suffix", [".xml", ".onnx"])
def test_output_names_up_to_the_limit(tmp_path: Path, length: int, suffix: str) -> None:
    onnx.save(classifier(), str(tmp_path / "m.onnx"))
    name = "n" * (length - len(suffix)) + suffix
    proc = invoke("insert", "m.onnx", "-o", name, "--no-validate", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = {"m.onnx", name} | ({name[:-4] + ".bin"} if suffix == ".xml" else set())
    assert set(os.listdir(tmp_path)) == expected


def test_stamp_check_still_sees_the_graph(tmp_path: Path) -> None:
    """The checker's full check accepts what xaigraph writes (re-insert: already augmented)."""
    onnx.save(classifier(), str(tmp_path / "m.onnx"))
    assert invoke("insert", "m.onnx", "-o", "a.onnx", cwd=tmp_path).returncode == 0
    model = onnx.load(str(tmp_path / "a.onnx"))
    onnx.checker.check_model(model, full_check=True)
    proc = invoke("insert", "a.onnx", "-o", "b.onnx", cwd=tmp_path)
    assert proc.returncode == 0 and "already augmented" in proc.stdout, proc.stderr

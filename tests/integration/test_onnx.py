"""ONNX in, ONNX out: exactness, the output-model contract on ONNX Runtime, IR/ONNX parity,
external data, and ONNX-specific bad input."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import helper

import xaigraph
from tests.conftest import LIGHT_MODELS, image, run
from tests.integration import tiny_models
from tests.integration.test_reciprocam import assert_close_to_reference
from xaigraph.cli import cli

ONNX_ROUTES = ("onnx11", "onnx13", "onnx17", "onnx18")


def ort_run(model: onnx.ModelProto | Path, *inputs: np.ndarray) -> list[np.ndarray]:
    """All outputs on ONNX Runtime CPU (default optimisations, as a user would run it)."""
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return [np.asarray(a) for a in session.run(None, dict(zip(names, inputs, strict=True)))]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("route", ONNX_ROUTES)
@pytest.mark.parametrize("head", tiny_models.HEADS)
def test_onnx_reciprocam_matches_brute_force(
    tiny_file: Callable[..., Path], head: str, route: str
) -> None:
    softmax = head in ("gap_fc", "conv_gap", "maxpool_view")
    result = xaigraph.insert(tiny_file(head, softmax, route), "reciprocam", scaling=False,
                             output_format="onnx")
    assert isinstance(result.model, onnx.ModelProto)
    assert result.report["format"] == "onnx"
    x = image(2, seed=9)
    maps = ort_run(result.model, x)[-1]
    model = tiny_models.Tiny(head, softmax)
    assert_close_to_reference(maps, tiny_models.brute_force_reciprocam(model, x))


def _u8_maps_ir_and_onnx(path: Path, method: str, x: np.ndarray, sanity: str = "on"
                         ) -> tuple[np.ndarray, np.ndarray]:
    ir = xaigraph.insert(path, method, sanity=sanity)
    ox = xaigraph.insert(path, method, output_format="onnx", sanity=sanity)
    return run(ir.model, x)[-1], ort_run(ox.model, x)[-1]


@pytest.mark.parametrize("method", ["reciprocam", "activationmap"])
@pytest.mark.parametrize("head", tiny_models.HEADS)
def test_parity_ir_and_onnx_tiny(tiny_file: Callable[..., Path], head: str, method: str) -> None:
    got_ir, got_onnx = _u8_maps_ir_and_onnx(tiny_file(head, True, "onnx17"), method,
                                            image(2, seed=4))
    assert got_ir.dtype == got_onnx.dtype == np.uint8
    assert got_ir.shape == got_onnx.shape
    assert np.max(np.abs(got_ir.astype(int) - got_onnx.astype(int))) <= 1


@pytest.mark.parametrize("path", LIGHT_MODELS, ids=lambda p: p.stem)
@pytest.mark.parametrize("method", ["reciprocam", "activationmap"])
def test_parity_ir_and_onnx_light(path: Path, method: str) -> None:
    # constant weights: the sanity checks refuse most of these maps (no information); the
    # parity of the two formats is what is checked here
    got_ir, got_onnx = _u8_maps_ir_and_onnx(path, method, image(1, 224, seed=2), "warn")
    assert got_ir.shape == got_onnx.shape
    assert np.max(np.abs(got_ir.astype(int) - got_onnx.astype(int))) <= 1


@pytest.mark.parametrize("path", LIGHT_MODELS, ids=lambda p: p.stem)
def test_light_model_onnx_out_checks_and_runs(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    code, stdout, stderr = invoke("insert", str(path), "-o", str(out), "--method", "reciprocam",
                                  "--sanity", "warn")  # constant weights: refused by default
    assert code == 0, stderr
    assert "validation  passed" in stdout
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    outputs = ort_run(out, image(1, 224, seed=1))
    assert outputs[-1].dtype == np.uint8 and outputs[-1].ndim == 4


# -- the contract, for ONNX ------------------------------------------------------------------


def _vi(model: onnx.ModelProto, which: str) -> list[tuple[str, int, list[object]]]:
    inits = {i.name for i in model.graph.initializer}
    items = model.graph.input if which == "input" else model.graph.output
    return [
        (vi.name, vi.type.tensor_type.elem_type,
         [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim])
        for vi in items if vi.name not in inits
    ]


@pytest.mark.parametrize("method", ["reciprocam", "activationmap"])
@pytest.mark.parametrize("head", ["gap_fc", "maxpool_view"])
def test_onnx_contract(tiny_file: Callable[..., Path], tmp_path: Path, head: str,
                       method: str) -> None:
    src = tiny_file(head, True, "onnx13")
    original = onnx.load(str(src))
    out = tmp_path / "m.onnx"
    assert invoke("insert", str(src), "-o", str(out), "--method", method)[0] == 0
    model = onnx.load(str(out))
    # 1, 2: interface unchanged, symbolic dims included; saliency_map last
    assert _vi(model, "input") == _vi(original, "input")
    assert _vi(model, "output")[:-1] == _vi(original, "output")
    name, elem, dims = _vi(model, "output")[-1]
    assert name == "saliency_map" and elem == onnx.TensorProto.UINT8
    size = 8 if head == "gap_fc" else 4
    assert dims == (["batch", 5, size, size] if method == "reciprocam" else ["batch", size, size])
    # 3: three images, three maps, each as when run alone
    x = image(3, seed=8)
    outputs = ort_run(out, x)
    assert outputs[-1].shape[0] == 3
    for i in range(3):
        np.testing.assert_array_equal(ort_run(out, x[i : i + 1])[-1], outputs[-1][i : i + 1])
    # 4: u8, each map spans 0..255
    flat = outputs[-1].reshape(outputs[-1].shape[0] * (5 if method == "reciprocam" else 1), -1)
    assert np.all(flat.min(axis=1) == 0) and np.all(flat.max(axis=1) == 255)
    # 5: standard operators at the model's own opset
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}
    assert [(o.domain, o.version) for o in model.opset_import] == \
        [(o.domain, o.version) for o in original.opset_import]
    onnx.checker.check_model(model, full_check=True)
    # kept: producer, initializer names; nothing of ours left unused
    assert model.producer_name == original.producer_name
    read = {name for node in model.graph.node for name in node.input}
    assert all(i.name in read for i in model.graph.initializer if i.name.startswith("xai/"))
    assert {i.name for i in original.graph.initializer} <= {i.name for i in model.graph.initializer}
    # 6: stamped; a second insert writes nothing and says so
    props = {p.key: p.value for p in model.metadata_props}
    assert props["xai.method"] == method
    assert props["xai.pipeline"].startswith(f"detect-target,insert-saliency{{method={method}}}")
    again = tmp_path / "again.onnx"
    code, stdout, _ = invoke("insert", str(out), "-o", str(again), "-m", method)
    assert code == 0 and "already augmented" in stdout and not again.exists()


def test_metadata_and_doc_strings_are_kept(tiny_file: Callable[..., Path],
                                           tmp_path: Path) -> None:
    model = onnx.load(str(tiny_file("gap_fc", False, "onnx17")))
    model.doc_string = "a model with a story"
    model.graph.doc_string = "its graph"
    model.graph.node[0].doc_string = "first node"
    helper.set_model_props(model, {"author": "someone", "licence": "MIT"})
    src = tmp_path / "in.onnx"
    onnx.save(model, str(src))
    out = tmp_path / "out.onnx"
    assert invoke("insert", str(src), "-o", str(out))[0] == 0
    got = onnx.load(str(out))
    assert got.doc_string == "a model with a story"
    assert got.graph.doc_string == "its graph"
    assert got.graph.node[0].doc_string == "first node"
    props = {p.key: p.value for p in got.metadata_props}
    assert props["author"] == "someone" and props["licence"] == "MIT"


def test_opset_9_model_gets_no_new_opset(tmp_path: Path) -> None:
    """Light models are opset 9: everything xaigraph adds exists at opset 9."""
    path = next(p for p in LIGHT_MODELS if "vgg19" in p.stem)  # mosaic form: EyeLike etc.
    result = xaigraph.insert(path, "reciprocam", output_format="onnx", sanity="warn")
    assert [o.version for o in result.model.opset_import] == [9]


# -- validation on ONNX Runtime -------------------------------------------------------------


def test_onnx_validation_failure_exits_1(tiny_file: Callable[..., Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from xaigraph.passes import build_pipeline

    from xaigraph.pipeline import Pass, PassContext, PassManager, PassResult

    class CorruptOutput(Pass):
        name = "corrupt-output"

        def run(self, model: onnx.ModelProto, ctx: PassContext) -> PassResult:
            first = model.graph.output[0].name
            for node in model.graph.node:
                node.output[:] = [f"{o}_pre" if o == first else o for o in node.output]
            scale = helper.make_tensor("corrupt_scale", onnx.TensorProto.FLOAT, [], [1.01])
            model.graph.initializer.append(scale)
            model.graph.node.append(helper.make_node("Mul", [f"{first}_pre", "corrupt_scale"],
                                                     [first]))
            return PassResult(model, modified=True)

    def corrupted(method: str, **kwargs: object) -> PassManager:
        passes = build_pipeline(method, **kwargs).passes  # type: ignore[arg-type]
        return PassManager([passes[0], CorruptOutput(), *passes[1:]])

    monkeypatch.setattr(xaigraph.api, "build_pipeline", corrupted)
    out = tmp_path / "out"
    out.mkdir()
    code, _, stderr = invoke("insert", str(tiny_file("gap_fc", False, "onnx13")), "-o",
                             str(out / "m.onnx"))
    assert code == 1
    assert "validation failed" in stderr and len(stderr.strip().splitlines()) == 1
    assert list(out.iterdir()) == []


# -- external data ---------------------------------------------------------------------------


def _with_external_data(src: Path, folder: Path, location: str = "weights.bin") -> Path:
    model = onnx.load(str(src))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return path


def test_external_data_is_kept_beside_the_output(tiny_file: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    src = _with_external_data(tiny_file("gap_mlp", False, "onnx17"), tmp_path / "in")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "xai.onnx"
    code, _, stderr = invoke("insert", str(src), "-o", str(out))
    assert code == 0, stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["xai.onnx", "xai.onnx.data"]
    model = onnx.load(str(out), load_external_data=False)
    external = {i.name for i in model.graph.initializer
                if i.data_location == onnx.TensorProto.EXTERNAL}
    big = {i.name for i in onnx.load(str(src)).graph.initializer if i.ByteSize() > 1024}
    assert big and big <= external  # tensors over 1 KiB live in the data file
    locations = {e.value for i in model.graph.initializer for e in i.external_data
                 if e.key == "location"}
    assert locations == {"xai.onnx.data"}
    x = image(2, seed=1)
    np.testing.assert_allclose(ort_run(out, x)[0], ort_run(src, x)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/passwd"])
def test_external_data_outside_the_folder_is_refused(tiny_file: Callable[..., Path],
                                                     tmp_path: Path, location: str) -> None:
    src = _with_external_data(tiny_file("gap_fc", False, "onnx17"), tmp_path / "in")
    model = onnx.load(str(src), load_external_data=False)
    for init in model.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = location
    bad = tmp_path / "in" / "escape.onnx"
    onnx.save(model, str(bad))
    code, _, stderr = invoke("insert", str(bad), "-o", str(tmp_path / "m.onnx"))
    assert code == 2
    assert "outside the model's folder" in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


# -- bad input, ONNX-specific -------------------------------------------------------------------


def test_onnx_bad_inputs(tiny_file: Callable[..., Path], ir_copy: Path, tmp_path: Path) -> None:
    cases: dict[str, tuple[Path, str, str]] = {}
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x0a\xff\xff\xff\xff\x0fnot protobuf at all")
    cases["invalid protobuf"] = (garbage, "m.onnx", "is not a valid ONNX model")
    model = onnx.load(str(tiny_file("gap_fc", False, "onnx17")))
    model.opset_import[0].version = 99
    future = tmp_path / "future.onnx"
    onnx.save(model, str(future))
    cases["opset too new"] = (future, "m.onnx", "opset 99")
    missing = _with_external_data(tiny_file("gap_fc", False, "onnx17"), tmp_path / "ext")
    (tmp_path / "ext" / "weights.bin").unlink()
    cases["missing external data"] = (missing, "m.onnx", "external data file not found")
    cases["IR to ONNX"] = (ir_copy, "m.onnx", "cannot be written as ONNX")
    cases["bad output suffix"] = (future, "m.pt", "unsupported output suffix '.pt'")
    for name, (src, out_name, fragment) in cases.items():
        out_dir = tmp_path / f"out_{name.replace(' ', '_')}"
        out_dir.mkdir()
        code, _, stderr = invoke("insert", str(src), "-o", str(out_dir / out_name))
        assert code == 2, name
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], (name, stderr)
        assert list(out_dir.iterdir()) == [], name


@pytest.fixture()
def ir_copy(tiny_file: Callable[..., Path], tmp_path: Path) -> Path:
    src = tiny_file("gap_fc", False, "ov_dynbatch")
    dst = tmp_path / "ir" / "model.xml"
    dst.parent.mkdir()
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".bin"), dst.with_suffix(".bin"))
    return dst


def test_opset_below_9_is_refused_for_onnx_output(tmp_path: Path) -> None:
    """Opset 8 lacks EyeLike and friends: one clear line, nothing written (IR still works)."""
    from onnx import numpy_helper

    weights = numpy_helper.from_array(np.random.default_rng(0).standard_normal(
        (4, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(np.random.default_rng(1).standard_normal(
        (4, 5)).astype(np.float32), "fc")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["f"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["f"], ["r"]),
         helper.make_node("GlobalAveragePool", ["r"], ["g"]),
         helper.make_node("Flatten", ["g"], ["v"]),
         helper.make_node("MatMul", ["v", "fc"], ["y"])],
        "old", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 5])], [weights, fc])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)], ir_version=4)
    src = tmp_path / "old.onnx"
    onnx.save(model, str(src))
    out = tmp_path / "out"
    out.mkdir()
    code, _, stderr = invoke("insert", str(src), "-o", str(out / "m.onnx"))
    assert code == 2 and "opset 8" in stderr and len(stderr.strip().splitlines()) == 1
    assert list(out.iterdir()) == []
    assert invoke("insert", str(src), "-o", str(out / "m.xml"))[0] == 0


def test_in_memory_onnx_model_to_ir(tiny_file: Callable[..., Path]) -> None:
    """An `onnx.ModelProto` can be augmented as IR too, not only as ONNX."""
    model = onnx.load(str(tiny_file("gap_fc", True, "onnx17")))
    result = xaigraph.insert(model, "reciprocam", output_format="ir")
    assert result.report["format"] == "ir"
    assert result.report["validation"]["passed"] is True
    assert run(result.model, image(2, seed=1))[-1].shape == (2, 5, 8, 8)

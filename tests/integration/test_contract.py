"""The output-model contract of DESIGN.md, one test (or more) per point."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

import xaigraph
from tests.conftest import image, run
from tests.integration import tiny_models
from xaigraph.errors import SanityError
from xaigraph.model_io import load_model

ROUTES = ["ov_static", "ov_dynbatch", "ov_dynamic", "onnx13"]


def _ports(ports: list[ov.Output]) -> list[tuple[object, ...]]:
    return [
        (sorted(p.get_names()), p.get_element_type().get_type_name(), str(p.get_partial_shape()))
        for p in ports
    ]


# 1. Inputs unchanged; 2. outputs unchanged, saliency_map last with the documented shape.
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("method", ["reciprocam", "activationmap"])
def test_interface_unchanged_and_saliency_last(
    tiny_file: Callable[..., Path], route: str, method: str
) -> None:
    path = tiny_file("gap_fc", True, route)
    original = load_model(path).model
    result = xaigraph.insert(path, method)
    model = result.model
    assert _ports(model.inputs) == _ports(original.inputs)
    n = len(original.outputs)
    assert _ports(model.outputs[:n]) == _ports(original.outputs)
    assert len(model.outputs) == n + 1
    sal = model.outputs[-1]
    assert sal.get_names() == {"saliency_map"}
    shape = sal.get_partial_shape()
    batch = original.inputs[0].get_partial_shape()[0]
    assert shape[0].is_dynamic == batch.is_dynamic
    if method == "reciprocam":
        assert shape.rank.get_length() == 4
        assert shape[1].get_length() == tiny_models.CLASSES
    else:
        assert shape.rank.get_length() == 3
    if route == "ov_static":
        want = [1, tiny_models.CLASSES, 8, 8] if method == "reciprocam" else [1, 8, 8]
        assert list(shape.to_shape()) == want


# 3. Every batch size: a dynamic-batch model returns N maps for N images, each the same as
#    the map of that image alone.
# (A flatten->linear head has no fully dynamic variant: it only runs at its trained size.)
@pytest.mark.parametrize(
    ("head", "route"),
    [("gap_fc", "ov_dynbatch"), ("gap_fc", "ov_dynamic"), ("gap_fc", "onnx17"),
     ("maxpool_fc", "ov_dynbatch"), ("maxpool_fc", "onnx17")],
)
def test_dynamic_batch_returns_one_map_per_image(
    tiny_file: Callable[..., Path], route: str, head: str
) -> None:
    result = xaigraph.insert(tiny_file(head, False, route), "reciprocam")
    x = image(3, seed=7)
    outputs = run(result.model, x)
    maps = outputs[-1]
    assert maps.shape[0] == 3
    assert outputs[0].shape[0] == 3
    for i in range(3):
        alone = run(result.model, x[i : i + 1])[-1]
        np.testing.assert_array_equal(maps[i : i + 1], alone)
    assert not np.array_equal(maps[0], maps[1])


# 4. Embedded scaling: each map min-max scaled to 0..255 in u8; --no-scaling keeps f32.
@pytest.mark.parametrize("method", ["reciprocam", "activationmap"])
def test_scaling_matches_numpy(tiny_file: Callable[..., Path], method: str) -> None:
    path = tiny_file("gap_mlp", False, "ov_dynbatch")
    raw_model = xaigraph.insert(path, method, scaling=False).model
    u8_model = xaigraph.insert(path, method).model
    assert raw_model.outputs[-1].get_element_type() == ov.Type.f32
    assert u8_model.outputs[-1].get_element_type() == ov.Type.u8
    x = image(2, seed=11)
    raw = run(raw_model, x)[-1].astype(np.float64)
    got = run(u8_model, x)[-1]
    assert got.dtype == np.uint8 and got.shape == raw.shape
    axes = tuple(range(raw.ndim - 2, raw.ndim))
    lo = raw.min(axis=axes, keepdims=True)
    hi = raw.max(axis=axes, keepdims=True)
    want = np.round((raw - lo) / np.maximum(hi - lo, 1e-12) * 255)
    assert np.max(np.abs(got.astype(np.int32) - want)) <= 1
    flat = got.reshape(-1, raw.shape[-2] * raw.shape[-1])
    assert np.all(flat.min(axis=1) == 0) and np.all(flat.max(axis=1) == 255)


def _zero_classifier() -> ov.Model:
    param = ov.opset13.parameter([1, 2, 4, 4], ov.Type.f32, name="x")
    features = ov.opset13.relu(param)
    flat = ov.opset13.reduce_mean(features, np.array([2, 3]), keep_dims=False)
    weights = ov.opset13.constant(np.zeros((2, 3), dtype=np.float32))
    scores = ov.opset13.matmul(flat, weights, False, False)
    return ov.Model([scores], [param])


def test_constant_map_scales_to_zero() -> None:
    """A map with no variation scales to zeros, not NaN or garbage (written with the sanity
    checks off: by default such a map is refused, having no information)."""
    with pytest.raises(SanityError, match="is constant on every probe"):
        xaigraph.insert(_zero_classifier(), "reciprocam", validate=False)
    result = xaigraph.insert(_zero_classifier(), "reciprocam", validate=False, sanity="off")
    maps = run(result.model, np.ones((1, 2, 4, 4), dtype=np.float32))[-1]
    assert maps.shape == (1, 3, 4, 4)
    assert np.all(maps == 0)


# 5. Standard opsets only: loads and runs in a fresh runtime without xaigraph importable.
FRESH = """
import sys
sys.modules["xaigraph"] = None  # importing xaigraph now fails
import numpy as np, openvino as ov
core = ov.Core()
model = core.read_model(sys.argv[1])
compiled = core.compile_model(model, "CPU")
out = compiled([np.zeros((2, 3, 16, 16), dtype=np.float32)])
print(out[compiled.outputs[-1]].shape, out[compiled.outputs[-1]].dtype)
"""


@pytest.mark.parametrize("method", ["reciprocam", "activationmap"])
def test_loads_in_fresh_runtime_with_standard_opsets(
    tiny_file: Callable[..., Path], tmp_path: Path, method: str
) -> None:
    result = xaigraph.insert(tiny_file("maxpool_fc", True, "onnx11"), method)
    out = xaigraph.save(result, tmp_path / "m.xml")
    versions = {layer.get("version") for layer in ET.parse(out).getroot().iter("layer")}
    assert versions <= {f"opset{i}" for i in range(1, 17)}, versions
    proc = subprocess.run([sys.executable, "-c", FRESH, str(out)], capture_output=True,
                          text=True, check=True)
    want = "(2, 5, 4, 4) uint8" if method == "reciprocam" else "(2, 4, 4) uint8"
    assert proc.stdout.strip() == want


# 6. Stamped, and a second insert is a no-op that says so.
def test_stamp_and_second_insert_is_a_no_op(
    tiny_file: Callable[..., Path], tmp_path: Path
) -> None:
    result = xaigraph.insert(tiny_file("gap_fc", False, "ov_dynbatch"), "reciprocam")
    out = xaigraph.save(result, tmp_path / "m.xml")
    reread = ov.Core().read_model(out)
    stamp = {k: reread.get_rt_info(["xai", k]).astype(str) for k in
             ("version", "method", "target_layer", "pipeline", "output", "scaling")}
    assert stamp["method"] == "reciprocam"
    assert stamp["version"] == xaigraph.__version__
    assert stamp["pipeline"] == result.report["pipeline"]
    assert stamp["pipeline"].startswith("detect-target,insert-saliency{method=reciprocam}")
    assert stamp["target_layer"] == result.report["target"]["name"]
    assert stamp["output"] == "saliency_map"

    again = xaigraph.insert(out, "reciprocam")  # another method exits 2: test_strip.py
    assert again.report["status"] == "already-augmented"
    assert not again.changed
    assert len(again.model.outputs) == len(reread.outputs)

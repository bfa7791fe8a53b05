"""Item 11 of issue 11: another method on an augmented model is refused unless `replace`,
and `strip` gives back the original graph, op for op (type, inputs, attributes, constants),
its outputs proven equal to the stamped model's on seeded inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import openvino as ov
import pytest

import xaigraph
from tests.unit.stamp_graphs import CASES, make, ops_of
from xaigraph import stamp as stamp_mod
from xaigraph.backends import get_backend
from xaigraph.errors import BadInputError

BACKENDS = ("ir", "onnx")


def _insert(graph: str, backend: str, method: str, **options: Any) -> xaigraph.InsertResult:
    return xaigraph.insert(make(graph, backend), method, output_format=backend, **options)


def _ops_of_clone(model: Any) -> dict[str, Any]:
    """`ops_of` a model that `insert` is about to change in place."""
    return ops_of(get_backend("ir" if isinstance(model, ov.Model) else "onnx").clone(model))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_strip_gives_back_the_original_op_for_op(backend: str, case: str) -> None:
    graph, method, options = CASES[case]
    model = make(graph, backend)
    original = ops_of(model)
    augmented = xaigraph.insert(model, method, output_format=backend, **options).model
    assert ops_of(augmented) != original
    result = xaigraph.strip(augmented, output_format=backend)
    assert result.report["status"] == "stripped" and result.changed
    assert ops_of(result.model) == original
    assert get_backend(backend).read_stamp(result.model) is None
    validation = result.report["validation"]
    assert validation["passed"] and all(o["max_abs"] == 0 for r in validation["runs"]
                                        for o in r["outputs"])


def _read(path: Path) -> Any:
    return onnx.load(str(path)) if path.suffix == ".onnx" else ov.Core().read_model(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_strip_through_files(backend: str, tmp_path: Path) -> None:
    suffix = ".xml" if backend == "ir" else ".onnx"
    src = tmp_path / f"in{suffix}"
    model = make("cnn_softmax", backend)
    if backend == "ir":
        ov.save_model(model, src, compress_to_fp16=False)
    else:
        onnx.save(model, str(src))
    aug = xaigraph.save(xaigraph.insert(src, "reciprocam", output_format=backend),
                        tmp_path / f"aug{suffix}")
    plain = xaigraph.save(xaigraph.strip(aug, output_format=backend), tmp_path / f"s{suffix}")
    assert ops_of(_read(plain)) == ops_of(_read(src))


@pytest.mark.parametrize("backend", BACKENDS)
def test_another_method_is_refused_and_the_same_one_is_a_no_op(backend: str) -> None:
    augmented = _insert("cnn_softmax", backend, "reciprocam").model
    with pytest.raises(BadInputError, match=r"already augmented by xaigraph .*"
                       r"insert-saliency\{method=reciprocam\}.*this run asks for .*"
                       r"activationmap.*pass --replace"):
        xaigraph.insert(augmented, "activationmap", output_format=backend)
    with pytest.raises(BadInputError, match="--replace"):
        xaigraph.insert(augmented, "reciprocam", output_format=backend, targets="topk:2")
    # same method and options (validation is no option of the result): a no-op
    same = xaigraph.insert(augmented, "reciprocam", output_format=backend, validate=False)
    assert same.report["status"] == "already-augmented" and not same.changed
    assert same.report["method"] == same.report["stamp"]["method"] == "reciprocam"
    assert "undo" not in same.report["stamp"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_replace_inserts_the_new_method_on_the_original(backend: str) -> None:
    model = make("cnn_softmax", backend)
    original = _ops_of_clone(model)
    augmented = xaigraph.insert(model, "reciprocam", output_format=backend,
                                targets="topk:2").model
    result = xaigraph.insert(augmented, "activationmap", output_format=backend, replace=True)
    assert result.report["status"] == "inserted"
    assert result.report["replaced"]["method"] == "reciprocam"
    be = get_backend(backend)
    names = [p.name for p in be.outputs(result.model)]
    assert names[-1] == "saliency_map" and "saliency_classes" not in names
    stamp = stamp_mod.read(be, result.model)
    assert stamp is not None and stamp.method == "activationmap"
    assert ops_of(xaigraph.strip(result.model, output_format=backend).model) == original


@pytest.mark.parametrize("backend", BACKENDS)
def test_strip_refuses_a_model_without_a_stamp(backend: str) -> None:
    with pytest.raises(BadInputError, match=r"not augmented by xaigraph .*nothing to strip"):
        xaigraph.strip(make("cnn", backend), output_format=backend)


def test_an_undo_record_that_does_not_fit_is_a_clear_error() -> None:
    be = get_backend("ir")
    augmented = _insert("cnn_softmax", "ir", "reciprocam").model
    fields = be.read_stamp(augmented)
    assert fields is not None
    undo = fields["undo"].replace('["pool",0]', '["nowhere",0]')
    be.write_stamp(augmented, {**fields, "undo": undo})
    with pytest.raises(BadInputError, match="cannot strip: the stamp's undo record does not "
                                            "fit this model"):
        xaigraph.strip(augmented)
    be.write_stamp(augmented, {**fields, "undo": "{"})
    with pytest.raises(BadInputError, match="undo record is not JSON"):
        xaigraph.strip(augmented)

"""The model as a function (`explain/model.py`): any number of rows through a dynamic or a
static-batch model, each row equal to the model run on that row alone (ONNX Runtime as the
reference), padding cut, streams in order."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.explain import run_models
from xaigraph.explain.model import ModelFn, pad_rows
from xaigraph.session import Session


def _static(batch: int) -> onnx.ModelProto:
    model = run_models.classifier(size=16)
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = batch
    return model


def _reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """Each row alone, through a batch-1 copy of the model."""
    one = onnx.ModelProto()
    one.CopyFrom(model)
    for value in (one.graph.input[0], one.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    session = ort.InferenceSession(one.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"x": row[None]})[0] for row in x])


@pytest.mark.parametrize("engine", ["openvino", "onnxruntime"])
@pytest.mark.parametrize(("batch", "chunk", "rows"), [
    (None, 0, 5), (None, 2, 5), (3, 0, 7), (3, 0, 3), (3, 0, 1), (4, 0, 9)])
def test_rows_equal_the_model_on_each_row(engine: str, batch: int | None, chunk: int,
                                          rows: int) -> None:
    model = run_models.classifier(size=16) if batch is None else _static(batch)
    x = np.random.default_rng(rows).standard_normal((rows, 3, 16, 16)).astype(np.float32)
    fn = ModelFn(Session.open(model, engine), chunk=chunk)
    assert fn.static_batch == batch
    got = fn(x, [0])[0]
    assert got.shape == (rows, 5)
    np.testing.assert_allclose(got, _reference(model, x), rtol=1e-5, atol=1e-6)
    parts = fn.chunks(x, [0])
    assert sum(len(p[0]) for p in parts) == rows
    streamed = list(fn.stream([x[:2], x[2:]], [0])) if batch is None else []
    if streamed:
        np.testing.assert_allclose(np.concatenate([s[0] for s in streamed]), got, rtol=1e-6)


def test_pad_rows_repeats_the_last_row() -> None:
    a = np.arange(6).reshape(3, 2)
    assert pad_rows(a, 5).tolist() == [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]]
    assert pad_rows(a, 2) is a

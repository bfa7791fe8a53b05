"""A head copy of a static-batch export: the batch of 1 is a literal in its shapes.

OpenVINO's conversion with a static input writes `x.flatten(0, 1)` and `reshape_as(x)` as
Reshapes to `[L, D]` and `[1, L, D]`, and folds `cls_token.expand(B, -1, -1)` into a
constant `[1, 1, D]` that a Concat joins to the tokens (CaiT, LeViT). A copy run on the
batch of mosaics makes such a Reshape's dim 0 -1 and broadcasts such a constant to the
batch it is joined to.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import openvino as ov
import pytest

from tests.conftest import run
from xaigraph.backends.onnx.builder import ONNXBuilder
from xaigraph.backends.openvino.builder import OVBuilder
from xaigraph.ops import relax_shape

from .graphs import BACKENDS, OnnxGraph, build, ops, ov_model, rand, value

CLS = rand(1, 1, 6, seed=1)


@pytest.mark.parametrize(("shape", "data", "relaxed"), [
    ([4, 6], (1, 4, 6), [-1, 6]),  # flatten(0, 1)
    ([1, 4, 6], (4, 6), [-1, 4, 6]),  # reshape_as after it
    ([1, 4, 2, 3], (4, 6), [-1, 4, 2, 3]),  # a split that also splits the last dim
    ([1, 4, 2, 3], (1, 4, 6), [0, 0, 2, 3]),  # batch and length kept: copied (0)
    ([2, 12], (4, 6), None),  # neither
    ([-1, 6], (1, 4, 6), None),  # already free
    ([4, -1], (1, 4, 6), None),  # one -1 only: left as it is
])
def test_relax_shape(shape: list[int], data: tuple[int, ...], relaxed: list[int] | None
                     ) -> None:
    got = relax_shape(np.array(shape), data, special_zero=True)
    assert (got is None and relaxed is None) or list(got) == relaxed  # type: ignore[arg-type]


def _models() -> dict[str, Any]:
    """image [1, 4, 6] -> merge ([4, 6]) -> relu -> split ([1, 4, 6]) -> cat (cls, split)"""
    x = ops.parameter([1, 4, 6], np.float32, name="image")
    merge = ops.reshape(x, np.array([4, 6]), False, name="merge")
    split = ops.reshape(ops.relu(merge, name="relu"), np.array([1, 4, 6]), False, name="split")
    cat = ops.concat([ops.constant(CLS), split], 1, name="cat")
    g = OnnxGraph()
    image = g.input("image", [1, 4, 6])
    merged = g.op("Reshape", [image, g.const("merge.shape", np.array([4, 6]))], "merge")
    relu = g.op("Relu", [merged], "relu")
    splitted = g.op("Reshape", [relu, g.const("split.shape", np.array([1, 4, 6]))], "split")
    out = g.op("Concat", [g.const("cls", CLS), splitted], "cat", axis=1)
    return {"ir": ov_model([cat], [x]), "onnx": g.model([out])}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_static_head_copied_onto_three_images(backend: str) -> None:
    model = _models()[backend]
    view = build(model)
    b: Any = (OVBuilder if backend == "ir" else ONNXBuilder)(model, view)
    image = value(view, "image")
    x = b.value(image)
    (copy,) = b.copy(["merge", "relu", "split", "cat"], {image: b.concat([x, x, x], 0)},
                     [value(view, "cat")])
    b.add_output(copy, "copy", [3, 5, 6])
    b.finish()
    data = rand(1, 4, 6)
    if backend == "ir":
        assert isinstance(model, ov.Model)
        out, got = run(model, data)
    else:
        import onnxruntime as ort

        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        out, got = session.run(None, {"image": data})
    one = np.concatenate([CLS, np.maximum(data, 0)], axis=1)
    np.testing.assert_allclose(out, one, rtol=1e-6)
    np.testing.assert_allclose(got, np.concatenate([one] * 3), rtol=1e-6)

"""A head copy relaxes the Reshapes that fix the batch, also under ONNX's `allowzero=1`.

torch's dynamo exporter writes every Reshape with `allowzero=1`; from a batch-1 example its
shapes are constants that start with that batch. A copy run on another batch needs a 0
("copy the input's dim") there, which `allowzero=1` would read as a literal 0: the copy drops
`allowzero`, the same op when the original shape has no 0.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from xaigraph.backends.onnx.builder import ONNXBuilder

from .graphs import OnnxGraph, build, rand, value


def _copied(allowzero: int, shape: list[int]) -> tuple[onnx.ModelProto, list[str]]:
    """The reshape copied onto three images stacked, as a second output `copy`:

        image [1, 4, 6] -> split (Reshape to `shape`, allowzero) -> out
        image, image, image -> stack (Concat) -> copy of split -> copy
    """
    g = OnnxGraph()
    image = g.input("image", [1, 4, 6])
    out = g.op("Reshape", [image, g.const("split.shape", np.array(shape))], "split",
               allowzero=allowzero)
    model = g.model([out])
    view = build(model)
    b = ONNXBuilder(model, view)
    x = b.value(value(view, "image"))
    stacked = b.concat([x, x, x], 0)
    (copy,) = b.copy(["split"], {value(view, "image"): stacked}, [value(view, "split")])
    b.add_output(copy, "copy", [3, 4, 2, 3])
    b.finish()
    attrs = [[(a.name, a.i) for a in n.attribute] for n in model.graph.node
             if n.op_type == "Reshape"]
    return model, [str(a) for a in attrs]


@pytest.mark.parametrize("allowzero", [0, 1])
def test_the_copy_accepts_another_batch(allowzero: int) -> None:
    model, _ = _copied(allowzero, [1, 4, 2, 3])
    x = rand(1, 4, 6)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out, copy = session.run(None, {"image": x})
    np.testing.assert_array_equal(out, x.reshape(1, 4, 2, 3))
    np.testing.assert_array_equal(copy, np.concatenate([x] * 3).reshape(3, 4, 2, 3))


def test_the_original_keeps_allowzero() -> None:
    _, attrs = _copied(1, [1, 4, 2, 3])
    assert attrs == [str([("allowzero", 1)]), str([])]  # the original, then the copy

"""The runtime session on a two-output graph built by hand, on both engines.

    x [N, 3] f32 ──┬── Add(c) ── sum  [N, 3]      c = [1, 2, 3]
                   └── Mul(x) ── prod [N, 3]

References are numpy. No torch, no export.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import openvino as ov
import openvino.opset13 as ops
import pytest
from onnx import TensorProto, helper, numpy_helper

from xaigraph.errors import BadInputError
from xaigraph.session import Session

C = np.array([1.0, 2.0, 3.0], dtype=np.float32)


def ov_model() -> ov.Model:
    x = ops.parameter([-1, 3], ov.Type.f32, name="x")
    x.output(0).set_names({"x"})
    add = ops.add(x, ops.constant(C))
    add.output(0).set_names({"sum"})
    mul = ops.multiply(x, x)
    mul.output(0).set_names({"prod"})
    return ov.Model([add, mul], [x], "two_outputs")


def onnx_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "c"], ["sum"]),
         helper.make_node("Mul", ["x", "x"], ["prod"])],
        "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("prod", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(C, "c")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# (the model, the engine asked for): each engine, and ONNX read by OpenVINO
CASES: dict[str, tuple[Callable[[], Any], str | None]] = {
    "openvino": (ov_model, None),
    "onnxruntime": (onnx_model, None),
    "onnx-on-openvino": (onnx_model, "openvino"),
}


@pytest.fixture(params=list(CASES), scope="module")
def session(request: pytest.FixtureRequest) -> Session:
    build, engine = CASES[request.param]
    return Session.open(build(), engine)


def batch(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3)).astype(np.float32)


def test_outputs_equal_numpy(session: Session) -> None:
    x = batch(2, 0)
    got_sum, got_prod = session.run([x])
    np.testing.assert_allclose(got_sum, x + C, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got_prod, x * x, rtol=0, atol=1e-6)


def test_describes_inputs_and_outputs(session: Session) -> None:
    assert session.input_names == ["x"]
    assert session.output_names == ["sum", "prod"]
    assert session.inputs[0].dtype == np.float32
    assert session.inputs[0].dims == (None, 3)


def test_named_outputs_in_the_order_asked(session: Session) -> None:
    x = batch(1, 1)
    (prod,) = session.run([x], outputs=["prod"])
    np.testing.assert_allclose(prod, x * x, rtol=0, atol=1e-6)
    prod, total = session.run({"x": x}, outputs=["prod", 0])
    np.testing.assert_allclose(total, x + C, rtol=0, atol=1e-6)
    (last,) = session.run([x], outputs=[-1])
    np.testing.assert_array_equal(last, prod)
    with pytest.raises(BadInputError, match="no output named 'logits'; its outputs: sum, prod"):
        session.run([x], outputs=["logits"])


@pytest.mark.parametrize("requests", [1, 3])
def test_async_results_in_input_order_equal_sync(session: Session, requests: int) -> None:
    batches = [[batch(1 + i % 3, seed)] for i, seed in enumerate(range(10, 20))]
    want = [session.run(b, outputs=["sum"]) for b in batches]
    got = session.run_many(batches, outputs=["sum"], requests=requests)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g[0], w[0])


def test_stream_yields_as_it_goes(session: Session) -> None:
    batches = ([batch(2, seed)] for seed in range(5))  # a generator: not all in memory
    stream = session.stream(batches, outputs=["prod"], requests=2)
    first = next(stream)
    np.testing.assert_allclose(first[0], batch(2, 0) ** 2, rtol=0, atol=1e-6)
    assert len(list(stream)) == 4
    left = session.stream([[batch(2, seed)] for seed in range(5)], requests=2)
    next(left)  # left unfinished: another run is not disturbed by its requests
    again = session.run_many([[batch(1, seed)] for seed in range(4)], requests=2)
    for seed, (total, _) in enumerate(again):
        np.testing.assert_allclose(total, batch(1, seed) + C, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros((2, 4), np.float32), r"input 'x' takes shape \[\?,3\], got \[2, 4\]"),
    (np.zeros((3,), np.float32), r"input 'x' takes shape \[\?,3\], got \[3\]"),
    (np.zeros((2, 3), np.float64), "input 'x' takes float32, got float64"),
])
def test_bad_input_is_one_line(session: Session, array: np.ndarray, message: str) -> None:
    for call in (lambda: session.run([array]), lambda: session.run_many([[array]], requests=2)):
        with pytest.raises(BadInputError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


def test_wrong_inputs_are_one_line(session: Session) -> None:
    x = batch(1, 0)
    with pytest.raises(BadInputError, match=r"takes 1 input\(s\) \(x\), got 2"):
        session.run([x, x])
    with pytest.raises(BadInputError, match="takes inputs x; got image"):
        session.run({"image": x})


def test_an_unloadable_model_is_one_line() -> None:
    model = onnx_model()
    model.graph.node[1].op_type = "NoSuchOp"
    for engine in ("onnxruntime", "openvino"):
        with pytest.raises(BadInputError) as info:
            Session.open(model, engine)
        assert "\n" not in str(info.value)


def test_engine_choice() -> None:
    assert Session.open(onnx_model()).engine == "onnxruntime"
    assert Session.open(onnx_model(), "openvino").engine == "openvino"
    with pytest.raises(BadInputError, match="ONNX Runtime runs ONNX models only"):
        Session.open(ov_model(), "onnxruntime")
    with pytest.raises(BadInputError, match="unknown engine 'tvm'"):
        Session.open(ov_model(), "tvm")


def test_opens_files(tmp_path: Any) -> None:
    path = tmp_path / "m.onnx"
    onnx.save_model(onnx_model(), str(path))
    x = batch(2, 3)
    for engine in ("onnxruntime", "openvino"):
        (total,) = Session.open(path, engine).run([x], outputs=["sum"])
        np.testing.assert_allclose(total, x + C, rtol=0, atol=1e-6)

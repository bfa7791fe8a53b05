"""RISE's masks made inside the OpenVINO model (`explain.masked`) against the numpy
reference that applies one mask at a time on the host, and against the host runner."""

from __future__ import annotations

import numpy as np
import pytest

from tests.explain.test_rise import bright_object_model, close, object_image, reference_rise
from xaigraph.explain import masks
from xaigraph.explain.masked import MaskedModel
from xaigraph.explain.rise import HostRunner, MaskPlan, rise
from xaigraph.model_io import core
from xaigraph.session import Session


def ov_model(static_batch: int | None = None):  # an ov.Model of the tiny classifier
    import openvino as ov

    proto = bright_object_model()
    if static_batch is not None:
        for v in (*proto.graph.input, *proto.graph.output):
            v.type.tensor_type.shape.dim[0].dim_value = static_batch
    return core().read_model(proto.SerializeToString(), ov.Tensor(np.zeros(0, np.uint8)))


def masked_model(model, baseline: np.ndarray, batch: int) -> MaskedModel:
    return MaskedModel(model, layout="NCHW", baseline=baseline, output=0, post=lambda z: z,
                       batch=batch)


@pytest.mark.parametrize(("batch", "num_masks"), [(1, 7), (4, 30), (8, 61)])
def test_in_graph_masked_inputs_equal_the_host_ones(batch: int, num_masks: int) -> None:
    """The masked model's input, read back through an identity-like check: run the same
    draws on the host model and compare the class probabilities row by row."""
    x = object_image(7, 20)
    base = np.full_like(x, 0.1)
    m = masked_model(ov_model(), base, batch)
    host = Session.open(bright_object_model(), "openvino")
    plan = MaskPlan(5, num_masks, 4, 0.5)
    got = list(m.runner(x)(plan))
    assert sum(d.length for d, _ in got) == num_masks
    for d, probs in got:
        assert probs.shape == (d.length, 2)
        ref = np.concatenate([host.run([HostRunner(x, None, baseline=base).inputs(
            masks.Draws(d.grids[i:i + 1], d.dy[i:i + 1], d.dx[i:i + 1]))])[0]
            for i in range(d.length)])
        np.testing.assert_allclose(probs, ref, atol=1e-5)


@pytest.mark.parametrize("baseline", [0.0, 0.25])
def test_rise_through_the_masked_model_equals_the_reference(baseline: float) -> None:
    x = object_image(30, 4)
    base = np.full_like(x, baseline)
    host = Session.open(bright_object_model(), "onnxruntime")
    m = masked_model(ov_model(), base, 4)
    got = rise(x, lambda b: b, targets=[0, 1], num_masks=50, cells=5, prob=0.4, seed=9,
               baseline=base, runner=m.runner(x))
    ref = reference_rise(x, lambda b: host.run([b])[0], [0, 1], 50, 5, 0.4, 9, baseline)
    close(got[0], ref[0])
    close(got[1], ref[1])


def test_same_seed_same_maps_on_either_path_and_any_batch() -> None:
    x = object_image(12, 12)
    base = np.zeros_like(x)
    ort = Session.open(bright_object_model(), "onnxruntime")
    host = rise(x, lambda b: ort.run([b])[0], targets=[0], num_masks=90, cells=6, prob=0.5,
                seed=4, batch_size=7)
    for batch in (1, 3, 16):
        m = masked_model(ov_model(), base, batch)
        graph = rise(x, lambda b: b, targets=[0], num_masks=90, cells=6, prob=0.5, seed=4,
                     runner=m.runner(x))
        close(graph, host)


def test_a_static_batch_model_that_cannot_be_reshaped_keeps_its_batch() -> None:
    m = masked_model(ov_model(static_batch=3), np.zeros((1, 3, 48, 48), np.float32), 8)
    _, batch = m.session(4, (48, 48))
    assert batch in (3, 8)  # reshaped when OpenVINO can, else the model's own
    x = object_image(3, 3)
    got = list(m.runner(x)(MaskPlan(0, 10, 4, 0.5)))
    assert [d.length for d, _ in got] == [batch] * (10 // batch) + (
        [10 % batch] if 10 % batch else [])


def test_supports_says_why_not() -> None:
    assert MaskedModel.supports(ov_model()) is None

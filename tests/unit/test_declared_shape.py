"""The saliency map's declared shape: dims that ONNX shape inference loses are taken from the
probe when the model fixes every input dim but the batch, and stay dynamic otherwise."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import onnxruntime as ort

import xaigraph
from tests import fuzz_models


def test_bundled_model_onnx_output_declares_its_map_size() -> None:
    """EfficientNet-Lite0's computed paddings lose h and w in ONNX shape inference
    ([batch,1000,?,?] before); its input is [batch,3,224,224], so the map is 7x7."""
    model = str(files("xaigraph.data") / "efficientnet_lite0.onnx")
    result = xaigraph.insert(model, "reciprocam", output_format="onnx")
    assert result.report["saliency_map"]["shape"] == "[batch,1000,7,7]"
    session = ort.InferenceSession(result.model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    x = np.zeros((2, 3, 224, 224), np.float32)
    assert session.run(["saliency_map"], {"image": x})[0].shape == (2, 1000, 7, 7)


def test_dynamic_spatial_input_keeps_the_map_size_dynamic() -> None:
    """x [n,3,h,w] -> Conv -> Relu -> GAP -> Flatten -> MatMul: the map's h, w depend on the
    image, so they stay dynamic (the probe's 224 must not be declared)."""
    proto = fuzz_models.onnx_classifier()
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    for i, name in ((0, "n"), (2, "h"), (3, "w")):
        dims[i].Clear()
        dims[i].dim_param = name
    proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "n"
    result = xaigraph.insert(proto, "reciprocam", output_format="onnx")
    shape = result.report["saliency_map"]["shape"].strip("[]").split(",")
    assert shape[2:] != [str(d) for d in result.report["target"]["shape"].strip("[]")
                         .split(",")[2:]]
    session = ort.InferenceSession(result.model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    out = session.run(["saliency_map"], {"x": np.zeros((1, 3, 6, 10), np.float32)})[0]
    assert out.shape[2:] == (6, 10)

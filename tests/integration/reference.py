"""An independent brute-force ReciproCAM for any OpenVINO model, built with plain OpenVINO calls.

The head is cut out of a clone of the original model: a new Parameter replaces the target
tensor, and the class scores (the input of a final Softmax, else the output) become the only
result. The head then runs once per location on the masked feature map.
"""

from __future__ import annotations

import numpy as np
import openvino as ov

from tests.conftest import run


def _find_output(model: ov.Model, name: str) -> ov.Output:
    base, _, port = name.rpartition(":")
    for node in model.get_ordered_ops():
        if node.get_friendly_name() == name:
            return node.output(0)
        if base and port.isdigit() and node.get_friendly_name() == base:
            return node.output(int(port))
    raise KeyError(name)


def _scores(model: ov.Model) -> ov.Output:
    out = model.output(0).get_node().input_value(0)
    node = out.get_node()
    while node.get_type_name() in ("Reshape", "Squeeze", "Unsqueeze", "Convert"):
        node = node.input_value(0).get_node()
    if node.get_type_name() == "Softmax":
        return node.input_value(0)
    return out


def brute_force(original: ov.Model, target_name: str, x: np.ndarray) -> np.ndarray:
    """`S[n, k, i, j]`: the head run on the target map masked to location (i, j)."""
    probe = original.clone()
    probe.add_outputs([_find_output(probe, target_name)])
    features = run(probe, x)[-1]

    cut = original.clone()
    target = _find_output(cut, target_name)
    scores = _scores(cut)
    param = ov.opset13.parameter(list(features.shape[1:]) and [1, *features.shape[1:]],
                                 target.get_element_type())
    for consumer in list(target.get_target_inputs()):
        consumer.replace_source_output(param.output(0))
    head = ov.Model([ov.opset13.result(scores)], [param])
    compiled = ov.Core().compile_model(head, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    n, _, h, w = features.shape
    rows = []
    for b in range(n):
        maps = None
        for i in range(h):
            for j in range(w):
                mosaic = np.zeros((1, *features.shape[1:]), dtype=features.dtype)
                mosaic[0, :, i, j] = features[b, :, i, j]
                s = np.asarray(compiled([mosaic])[0]).reshape(-1).astype(np.float64)
                if maps is None:
                    maps = np.zeros((s.size, h, w))
                maps[:, i, j] = s
        rows.append(maps)
    return np.stack(rows)

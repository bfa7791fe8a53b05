"""Small ONNX classifiers built by hand for the deployment tests (class names, several
outputs, NHWC layouts), numpy references for them, and a runner for insert's results.

Every model is `image -> [layout moves] -> Conv 3x3 (pad 1) -> Relu -> [layout moves] ->
pooling or flatten -> MatMul classifier`, with a dynamic batch `N`; `numpy_features` and the
head functions compute the same thing in numpy, so maps can be checked by brute force.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

import xaigraph
from xaigraph.session import Session

__all__ = ["Net", "brute_reciprocam", "conv_relu", "outputs", "rand"]

SIZE = (5, 7)  # H, W: unequal, and unequal to the channels, so a wrong layout shows


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def conv_relu(x_nchw: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """relu(conv2d(x, w) + b), 3x3, stride 1, padding 1, in NCHW, by loops over the window."""
    n, _, h, wd = x_nchw.shape
    padded = np.pad(x_nchw.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd))
    for dy in range(3):
        for dx in range(3):
            patch = padded[:, :, dy:dy + h, dx:dx + wd]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, dy, dx].astype(np.float64))
    return np.maximum(out + b.astype(np.float64)[None, :, None, None], 0.0)


def brute_reciprocam(features: np.ndarray, head: Callable[[np.ndarray], np.ndarray]
                     ) -> np.ndarray:
    """`S[n, k, i, j] = head(F_n masked to location (i, j))[k]`, one head run per location;
    `features` is `[N, C, H, W]`."""
    n, _, h, w = features.shape
    maps: list[list[np.ndarray]] = [[] for _ in range(n)]
    for i in range(h):
        for j in range(w):
            mask = np.zeros((1, 1, h, w))
            mask[..., i, j] = 1.0
            scores = head(features * mask)  # [N, K]
            for b in range(n):
                maps[b].append(scores[b])
    return np.stack([np.stack(m, axis=-1).reshape(-1, h, w) for m in maps])


class Net:
    """An ONNX graph under construction: ops named after their single output."""

    def __init__(self, channels_last_input: bool = False, in_channels: int = 3) -> None:
        h, w = SIZE
        shape = ["N", h, w, in_channels] if channels_last_input else ["N", in_channels, h, w]
        self.inputs = [helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, shape)]
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def conv_relu(self, x: str, w: np.ndarray, b: np.ndarray) -> str:
        conv = self.op("Conv", [x, self.const("conv.w", w), self.const("conv.b", b)], "conv",
                       pads=[1, 1, 1, 1])
        return self.op("Relu", [conv], "relu")

    def model(self, outputs: dict[str, int | list[Any]], labels: str | None = None
              ) -> onnx.ModelProto:
        """The model with these outputs (`name: K` for `[N, K]`, or `name: shape`) and
        metadata `labels`."""
        outs = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                              ["N", k] if isinstance(k, int) else k)
                for name, k in outputs.items()]
        graph = helper.make_graph(self.nodes, "g", self.inputs, outs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        if labels is not None:
            helper.set_model_props(model, {"labels": labels})
        onnx.checker.check_model(model, full_check=True)
        return model


def outputs(result: xaigraph.InsertResult, *arrays: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of an insert result's model on `arrays`, by name."""
    session = Session.open(result.model, result.backend.engine)
    names = session.output_names
    return dict(zip(names, session.run(list(arrays)), strict=True))

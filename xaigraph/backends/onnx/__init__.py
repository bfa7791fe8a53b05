"""The ONNX backend: `onnx.ModelProto` in, ONNX out, validated on ONNX Runtime."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from xaigraph import model_io
from xaigraph.backends.base import Port, undo_insertion
from xaigraph.backends.onnx.builder import ONNXBuilder, undo_record
from xaigraph.backends.onnx.view import DTYPES, build_view, real_inputs
from xaigraph.graph_view import GraphView
from xaigraph.stamp_format import SANITY_KEY, STAMP_KEYS, UNDO_KEY

__all__ = ["ONNXBackend"]

_PREFIX = "xai."


def _port(vi: onnx.ValueInfoProto) -> Port:
    tt = vi.type.tensor_type
    dtype = DTYPES.get(tt.elem_type, f"onnx{tt.elem_type}")
    if not tt.HasField("shape"):
        return Port(vi.name, "[...]", dtype, None)
    texts, dims = [], []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            texts.append(str(d.dim_value))
            dims.append(d.dim_value)
        else:
            texts.append(d.dim_param or "?")
            dims.append(None)
    return Port(vi.name, "[" + ",".join(texts) + "]", dtype, tuple(dims))


class ONNXBackend:
    name = "onnx"
    suffix = ".onnx"
    engine = "onnxruntime"

    def __init__(self, external_data: bool = False) -> None:
        self.external_data = external_data

    def build_view(self, model: onnx.ModelProto) -> GraphView:
        return build_view(model)

    def builder(self, model: onnx.ModelProto, view: GraphView | None,
                prefix: str = "xai") -> ONNXBuilder:
        return ONNXBuilder(model, view, prefix)

    def fingerprint(self, model: onnx.ModelProto) -> tuple[Any, ...]:
        g = model.graph
        nodes = tuple((n.op_type, tuple(n.input), tuple(n.output)) for n in g.node)
        outs = tuple(o.name for o in g.output)
        stamp = tuple(sorted((self.read_stamp(model) or {}).items()))
        return nodes, outs, stamp, len(g.initializer)

    def verify(self, model: onnx.ModelProto) -> None:
        onnx.checker.check_model(model)

    def clone(self, model: onnx.ModelProto) -> onnx.ModelProto:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return copy

    def inputs(self, model: onnx.ModelProto) -> list[Port]:
        return [_port(vi) for vi in real_inputs(model.graph)]

    def outputs(self, model: onnx.ModelProto) -> list[Port]:
        return [_port(vi) for vi in model.graph.output]

    def input_dtypes(self, model: onnx.ModelProto) -> list[np.dtype[Any]]:
        return [np.dtype(helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
                for vi in real_inputs(model.graph)]

    def read_stamp(self, model: onnx.ModelProto) -> dict[str, str] | None:
        props = {p.key: p.value for p in model.metadata_props}
        fields = {k: props[_PREFIX + k] for k in (*STAMP_KEYS, UNDO_KEY, SANITY_KEY)
                  if _PREFIX + k in props}
        return fields or None

    def write_stamp(self, model: onnx.ModelProto, fields: dict[str, str]) -> None:
        self.remove_stamp(model)
        helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                       **{_PREFIX + k: v for k, v in fields.items()}})

    def remove_stamp(self, model: onnx.ModelProto) -> None:
        keep = [p for p in model.metadata_props if not p.key.startswith(_PREFIX)]
        del model.metadata_props[:]
        model.metadata_props.extend(keep)

    def undo_record(self, original: onnx.ModelProto, model: onnx.ModelProto) -> str:
        return json.dumps(undo_record(original, model), separators=(",", ":"))

    def restore(self, model: onnx.ModelProto, record: dict[str, Any],
                outputs: Sequence[str]) -> None:
        undo_insertion(ONNXBuilder(model, None), record, outputs)

    def save(self, model: onnx.ModelProto, path: Path) -> None:
        onnx.checker.check_model(model, full_check=True)
        big = model.ByteSize() > 1_900_000_000
        model_io.save_onnx(model, path, external_data=self.external_data or big)

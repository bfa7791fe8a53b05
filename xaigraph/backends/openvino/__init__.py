"""The OpenVINO backend: `ov.Model` in, OpenVINO IR out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from xaigraph import model_io
from xaigraph.backends.base import Port, undo_insertion
from xaigraph.backends.openvino.builder import OVBuilder, undo_record
from xaigraph.backends.openvino.view import build_view
from xaigraph.graph_view import GraphView
from xaigraph.stamp_format import SANITY_KEY, STAMP_KEYS, UNDO_KEY

__all__ = ["OVBackend"]

_ONNX = "xai."  # the prefix of the stamp's keys in ONNX metadata_props


def _framework(model: ov.Model) -> dict[str, str]:
    """`rt_info` `framework` (where OpenVINO's ONNX reader keeps `metadata_props`)."""
    if not model.has_rt_info(["framework"]):
        return {}
    info = model.get_rt_info()["framework"]
    if not isinstance(info, dict):
        return {}
    return {k: v.astype(str) for k, v in info.items()}


def _port(i: int, p: ov.Output) -> Port:
    ps = p.get_partial_shape()
    dims = None if ps.rank.is_dynamic else tuple(
        d.get_length() if d.is_static else None for d in ps)
    return Port(", ".join(sorted(p.get_names())) or f"#{i}", str(ps),
                p.get_element_type().get_type_name(), dims)


class OVBackend:
    name = "ir"
    suffix = ".xml"
    engine = "openvino"

    def build_view(self, model: ov.Model) -> GraphView:
        return build_view(model)

    def builder(self, model: ov.Model, view: GraphView | None, prefix: str = "xai") -> OVBuilder:
        return OVBuilder(model, view, prefix)

    def fingerprint(self, model: ov.Model) -> tuple[Any, ...]:
        ops = tuple((n.get_type_name(), n.get_instance_id()) for n in model.get_ordered_ops())
        outs = tuple(tuple(sorted(o.get_names())) for o in model.outputs)
        stamp = tuple(sorted((self.read_stamp(model) or {}).items()))
        return ops, outs, stamp

    def verify(self, model: ov.Model) -> None:
        model.validate_nodes_and_infer_types()

    def clone(self, model: ov.Model) -> ov.Model:
        return model.clone()

    def inputs(self, model: ov.Model) -> list[Port]:
        return [_port(i, p) for i, p in enumerate(model.inputs)]

    def outputs(self, model: ov.Model) -> list[Port]:
        return [_port(i, p) for i, p in enumerate(model.outputs)]

    def input_dtypes(self, model: ov.Model) -> list[np.dtype[Any]]:
        return [np.dtype(p.get_element_type().to_dtype()) for p in model.get_parameters()]

    def read_stamp(self, model: ov.Model) -> dict[str, str] | None:
        """The `xai` fields: from `rt_info` `xai`, or, for an ONNX model read by OpenVINO,
        from its `metadata_props` (kept in `rt_info` `framework` as `xai.<key>`)."""
        keys = (*STAMP_KEYS, UNDO_KEY, SANITY_KEY)
        if model.has_rt_info(["xai"]):
            return {k: model.get_rt_info(["xai", k]).astype(str)
                    for k in keys if model.has_rt_info(["xai", k])} or None
        props = _framework(model)
        return {k: props[_ONNX + k] for k in keys if _ONNX + k in props} or None

    def write_stamp(self, model: ov.Model, fields: dict[str, str]) -> None:
        self.remove_stamp(model)
        for key, value in fields.items():
            model.set_rt_info(value, ["xai", key])

    def remove_stamp(self, model: ov.Model) -> None:
        """Remove the `xai` fields, and the ONNX metadata ones an ONNX model brought."""
        info = model.get_rt_info()
        if model.has_rt_info(["xai"]):
            del info["xai"]
        props = _framework(model)
        if any(k.startswith(_ONNX) for k in props):
            del info["framework"]
            for key, value in props.items():
                if not key.startswith(_ONNX):
                    model.set_rt_info(value, ["framework", key])

    def undo_record(self, original: ov.Model, model: ov.Model) -> str:
        return json.dumps(undo_record(original, model), separators=(",", ":"))

    def restore(self, model: ov.Model, record: dict[str, Any], outputs: Sequence[str]) -> None:
        undo_insertion(OVBuilder(model, None), record, outputs)

    def save(self, model: ov.Model, path: Path) -> None:
        model_io.save_ir(model, path)

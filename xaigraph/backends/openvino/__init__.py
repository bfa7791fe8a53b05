"""The OpenVINO backend: `ov.Model` in, OpenVINO IR out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from xaigraph import model_io
from xaigraph.backends.base import Port
from xaigraph.backends.openvino.builder import OVBuilder
from xaigraph.backends.openvino.view import build_view
from xaigraph.graph_view import GraphView
from xaigraph.stamp import STAMP_KEYS

__all__ = ["OVBackend"]


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
        if not model.has_rt_info(["xai", "method"]):
            return None
        return {key: model.get_rt_info(["xai", key]).astype(str)
                for key in STAMP_KEYS if model.has_rt_info(["xai", key])}

    def write_stamp(self, model: ov.Model, fields: dict[str, str]) -> None:
        for key, value in fields.items():
            model.set_rt_info(value, ["xai", key])

    def save(self, model: ov.Model, path: Path) -> None:
        model_io.save_ir(model, path)

"""The `xai` stamp written into augmented models (OpenVINO `rt_info`)."""

from __future__ import annotations

import openvino as ov

from xaigraph.version import __version__

__all__ = ["STAMP_KEYS", "read_stamp", "write_stamp"]

STAMP_KEYS = ("version", "method", "target_layer", "pipeline", "output", "scaling")


def read_stamp(model: ov.Model) -> dict[str, str] | None:
    """The stamp's fields, or None when the model carries no stamp."""
    if not model.has_rt_info(["xai", "method"]):
        return None
    out = {}
    for key in STAMP_KEYS:
        if model.has_rt_info(["xai", key]):
            out[key] = model.get_rt_info(["xai", key]).astype(str)
    return out


def write_stamp(model: ov.Model, *, method: str, target_layer: str, pipeline: str,
                scaling: str) -> None:
    fields = {
        "version": __version__,
        "method": method,
        "target_layer": target_layer,
        "pipeline": pipeline,
        "output": "saliency_map",
        "scaling": scaling,
    }
    for key, value in fields.items():
        model.set_rt_info(value, ["xai", key])

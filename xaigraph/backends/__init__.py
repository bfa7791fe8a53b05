"""Backends: one per model format, each with its graph view, op builder and I/O.

A backend is named by its format everywhere: ``"ir"`` (OpenVINO: `ov.Model`, IR files,
ONNX files read by OpenVINO) and ``"onnx"`` (`onnx.ModelProto`, ONNX files, ONNX Runtime).
Passes, methods and validation are written once against `Backend` (see `base`); a third
backend adds a folder here (view, builder, I/O) and a branch in `get_backend`. Which
backend writes an output path is `backend_for_path` (from `xaigraph.model_io`, re-exported).
"""

from __future__ import annotations

from xaigraph.backends.base import Backend, Port, output_port
from xaigraph.backends.onnx import ONNXBackend
from xaigraph.backends.openvino import OVBackend
from xaigraph.errors import BadInputError
from xaigraph.model_io import backend_for_path

__all__ = ["BACKENDS", "Backend", "Port", "backend_for_path", "get_backend", "output_port"]

BACKENDS = ("ir", "onnx")


def get_backend(name: str, external_data: bool = False) -> Backend:
    """The backend named `name` (one of `BACKENDS`); `external_data`: an ONNX model whose
    weights are kept in a file beside it, and are to be written the same way."""
    if name == "onnx":
        return ONNXBackend(external_data)
    if name == "ir":
        return OVBackend()
    raise BadInputError(f"unknown model format '{name}'; use one of {', '.join(BACKENDS)}")

"""Backends: one per model format, each with its graph view, op builder and I/O.

A backend is named by its format everywhere: ``"ir"`` (OpenVINO: `ov.Model`, IR files,
ONNX files read by OpenVINO) and ``"onnx"`` (`onnx.ModelProto`, ONNX files, ONNX Runtime).
Passes, methods and validation are written once against `Backend` (see `base`); a third
backend adds a folder here (view, builder, I/O) and an entry in `_REGISTRY`.
"""

from __future__ import annotations

from pathlib import Path

from xaigraph.backends.base import Backend, Port, output_port
from xaigraph.errors import BadInputError

__all__ = ["BACKENDS", "Backend", "Port", "backend_for_path", "get_backend", "output_port"]

BACKENDS = ("ir", "onnx")
_SUFFIXES = {".xml": "ir", ".onnx": "onnx"}


def get_backend(name: str, external_data: bool = False) -> Backend:
    """The backend named `name` (one of `BACKENDS`); `external_data`: an ONNX model whose
    weights are kept in a file beside it, and are to be written the same way."""
    if name == "onnx":
        from xaigraph.backends.onnx import ONNXBackend

        return ONNXBackend(external_data)
    if name == "ir":
        from xaigraph.backends.openvino import OVBackend

        return OVBackend()
    raise BadInputError(f"unknown model format '{name}'; use one of {', '.join(BACKENDS)}")


def backend_for_path(path: str | Path) -> str:
    """The backend that writes `path`, by its suffix: "ir" for `.xml`, "onnx" for `.onnx`."""
    p = Path(path)
    try:
        return _SUFFIXES[p.suffix.lower()]
    except KeyError:
        raise BadInputError(
            f"unsupported output suffix '{p.suffix}' ({p.name}): give an output ending in .xml "
            "(OpenVINO IR, from an .xml or .onnx model) or .onnx (ONNX, from an .onnx model)"
        ) from None

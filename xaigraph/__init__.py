"""xaigraph: embed saliency maps into vision models by graph surgery.

    import xaigraph
    result = xaigraph.insert("model.xml", method="reciprocam")
    xaigraph.save(result, "model_xai.xml")
    xaigraph.save(xaigraph.strip("model_xai.xml"), "model_again.xml")  # the original back
    for ex in xaigraph.explain("model_xai.xml", "photos/"):  # maps and overlays per image
        ex.overlay().save(f"{ex.key}_map.png")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xaigraph.errors import (
    BadInputError,
    MethodError,
    TargetError,
    ValidationError,
    XaiGraphError,
)
from xaigraph.version import __version__

if TYPE_CHECKING:
    from xaigraph.api import InsertResult, insert, inspect, save, strip
    from xaigraph.preprocess import Preprocess

__all__ = [
    "BadInputError",
    "InsertResult",
    "MethodError",
    "Preprocess",
    "TargetError",
    "ValidationError",
    "XaiGraphError",
    "__version__",
    "explain",
    "insert",
    "inspect",
    "save",
    "strip",
]

_API = ("InsertResult", "insert", "inspect", "save", "strip")


def __getattr__(name: str) -> Any:
    """The API loads OpenVINO and ONNX on first use, so that the command line's entry point
    (`xaigraph.__main__.main`) can set up its signal handling before those imports."""
    if name == "explain":  # the runtime layer's package, callable as `explain(...)`
        import importlib

        return importlib.import_module("xaigraph.explain")
    if name == "Preprocess":
        from xaigraph.preprocess import Preprocess

        return Preprocess
    if name in _API:
        from xaigraph import api

        return getattr(api, name)
    raise AttributeError(f"module 'xaigraph' has no attribute {name!r}")

"""xaigraph: embed saliency maps into vision models by graph surgery.

    import xaigraph
    result = xaigraph.insert("model.xml", method="reciprocam")
    xaigraph.save(result, "model_xai.xml")
    xaigraph.save(xaigraph.strip("model_xai.xml"), "model_again.xml")  # the original back
"""

from __future__ import annotations

from xaigraph.api import InsertResult, insert, inspect, save, strip
from xaigraph.errors import (
    BadInputError,
    MethodError,
    TargetError,
    ValidationError,
    XaiGraphError,
)
from xaigraph.version import __version__

__all__ = [
    "BadInputError",
    "InsertResult",
    "MethodError",
    "TargetError",
    "ValidationError",
    "XaiGraphError",
    "__version__",
    "insert",
    "inspect",
    "save",
    "strip",
]

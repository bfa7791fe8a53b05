"""What the pipeline needs from a backend: the `Backend` protocol and the `Port` it reports.

`xaigraph.backends.openvino` implements it for `ov.Model`, `xaigraph.backends.onnx` for
`onnx.ModelProto`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from xaigraph.graph_view import GraphView
from xaigraph.ops import OpBuilder

__all__ = ["Backend", "Port", "output_port", "undo_insertion"]


@dataclass(frozen=True)
class Port:
    """A model input or output as the contract sees it."""

    name: str  # all tensor names, comma-separated
    shape: str  # e.g. "[?,3,224,224]"; "?" or a symbolic name for dynamic dims
    type: str  # element type, e.g. "f32", "u8"
    dims: tuple[int | None, ...] | None  # None entries are dynamic; None when rank is unknown

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "shape": self.shape, "type": self.type}


class Backend(Protocol):
    name: str  # "ir" or "onnx" (see xaigraph.backends)
    suffix: str  # of the files it writes: ".xml" or ".onnx"
    engine: str  # the runtime that validates its models (`xaigraph.session.ENGINES`)

    def build_view(self, model: Any) -> GraphView: ...
    def builder(self, model: Any, view: GraphView | None, prefix: str = "xai") -> OpBuilder: ...
    def fingerprint(self, model: Any) -> tuple[Any, ...]:
        """Changes whenever ops, outputs or the stamp change."""

    def verify(self, model: Any) -> None:
        """Raise when the model is not well formed (run after every modifying pass)."""

    def clone(self, model: Any) -> Any: ...
    def inputs(self, model: Any) -> list[Port]: ...
    def outputs(self, model: Any) -> list[Port]: ...
    def input_dtypes(self, model: Any) -> list[np.dtype[Any]]: ...
    def read_stamp(self, model: Any) -> dict[str, str] | None: ...
    def write_stamp(self, model: Any, fields: dict[str, str]) -> None:
        """Replace any `xai` fields with `fields`."""

    def remove_stamp(self, model: Any) -> None: ...
    def undo_record(self, original: Any, model: Any) -> str:
        """What `model` (made from `original`) removed or rewired of the original, as text
        for the stamp, so that `restore` can put it back."""

    def restore(self, model: Any, record: dict[str, Any], outputs: Sequence[str]) -> None:
        """Put back the original ops and edges `record` (`undo_record`'s text, parsed)
        lists, remove the `outputs`, and with them every op that only they needed."""

    def save(self, model: Any, path: Path) -> None:
        """Write atomically (temporary files in the destination folder, then renames)."""


def output_port(backend: Backend, model: Any, name: str) -> Port | None:
    """The model's output named `name`, or None."""
    return next((p for p in backend.outputs(model) if name in p.name.split(", ")), None)


def undo_insertion(builder: Any, record: dict[str, Any], outputs: Sequence[str]) -> None:
    """With a backend's `builder`: put back what an insertion removed (`record`, see
    `Backend.undo_record`), drop our `outputs` and what only they needed, and finish."""
    builder.restore(record)
    for name in outputs:
        builder.remove_output(name)
    builder.finish()

"""The `xai` stamp written into augmented models: how the model was made.

OpenVINO keeps it in `rt_info` under `xai`, ONNX in `metadata_props` as `xai.<key>` (an ONNX
model read by OpenVINO carries those as `rt_info` `framework` / `xai.<key>`). The stamp is
how a later run recognises an augmented model, and what `strip` reads to take the
explanation out again.

A stamp counts only when it is whole and consistent (`check`): every key of `STAMP_KEYS`, a
version, a method xaigraph knows, a pipeline text that parses and inserts that method, and
the outputs it says were added (`saliency_map` last, `saliency_classes` just before it when
the pipeline selected classes, `feature_vector` before those when it ran feature-vector)
present as the model's last outputs. Anything less (a stray or spoofed `xai.method`, a stamp
whose outputs are gone) is not a stamp: the model is taken as not augmented, and a warning
says why. `undo` (the record of the original ops the
insertion removed or rewired, `UNDO_KEY`) is optional, so that stamps without it still count.

The keys and the fields a run writes are `xaigraph.stamp_format` (re-exported here), which
the backends and the stamp pass import; this module reads stamps back with the pipeline
parser, above the passes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from xaigraph import signals
from xaigraph.backends import Backend
from xaigraph.errors import XaiGraphError
from xaigraph.methods import METHODS
from xaigraph.passes import (
    CLASSES_OUTPUT,
    FEATURE_OUTPUT,
    SALIENCY_OUTPUT,
    InsertSaliencyPass,
    parse,
)
from xaigraph.stamp_format import SCALINGS, STAMP_KEYS, UNDO_KEY, stamp_fields

__all__ = ["STAMP_KEYS", "UNDO_KEY", "Stamp", "check", "problem", "read", "stamp_fields"]

log = logging.getLogger(__name__)

_VERSION = re.compile(r"\d+\.\d+(\.\d+)?([.+-]?[0-9A-Za-z.+-]*)?")


@dataclass(frozen=True)
class Stamp:
    """A whole, consistent stamp: its fields and the outputs the insertion added (in order,
    `saliency_map` last)."""

    fields: dict[str, str]
    outputs: tuple[str, ...]

    @property
    def method(self) -> str:
        return self.fields["method"]

    @property
    def pipeline(self) -> str:
        return self.fields["pipeline"]

    @property
    def undo(self) -> str | None:
        return self.fields.get(UNDO_KEY)

    def describe(self) -> str:
        """One readable line: who made it, the method, the target, the scaling."""
        f = self.fields
        return (f"augmented by xaigraph {f['version']}: method {f['method']}, target "
                f"{f['target_layer']}, scaling {f['scaling']}, outputs {', '.join(self.outputs)}")


def check(fields: dict[str, str], outputs: list[list[str]]) -> Stamp:
    """The stamp `fields` make for a model whose outputs have the names `outputs` (the names
    of each, in output order); raise `XaiGraphError` saying what is missing or
    inconsistent."""
    missing = [k for k in STAMP_KEYS if not fields.get(k)]
    if missing:
        raise XaiGraphError(f"partial xaigraph stamp (no {', '.join(missing)})")
    if not _VERSION.fullmatch(fields["version"]):
        raise XaiGraphError(f"stamp version '{fields['version']}' is not a version")
    if fields["method"] not in METHODS:
        raise XaiGraphError(f"stamp method '{fields['method']}' is not an xaigraph method")
    if fields["scaling"] not in SCALINGS or fields["output"] != SALIENCY_OUTPUT:
        raise XaiGraphError("stamp scaling or output is not one xaigraph writes")
    try:
        passes = parse(fields["pipeline"]).passes
    except XaiGraphError as exc:
        raise XaiGraphError(f"stamp {exc}") from None
    inserts = [p for p in passes if isinstance(p, InsertSaliencyPass)]
    if len(inserts) != 1 or inserts[0].method.name != fields["method"]:
        raise XaiGraphError("stamp pipeline does not insert the stamp's method")
    added: tuple[str, ...] = (SALIENCY_OUTPUT,)
    if any(p.name == "select-classes" for p in passes):
        added = (CLASSES_OUTPUT, SALIENCY_OUTPUT)
    if any(p.name == "feature-vector" for p in passes):
        added = (FEATURE_OUTPUT, *added)
    last = outputs[-len(added):] if len(outputs) > len(added) else []
    if len(last) != len(added) or any(a not in names for a, names in zip(added, last, strict=True)):
        have = ", ".join("/".join(names) for names in last) or "missing"
        raise XaiGraphError(f"the stamp says the model's last outputs are {', '.join(added)}; "
                            f"they are {have}")
    return Stamp(dict(fields), added)


def read(backend: Backend, model: Any) -> Stamp | None:
    """The model's stamp when it is whole and consistent, else None (with a warning when
    there were `xai` keys that do not make a stamp)."""
    stamp, why = _checked(backend, model)
    if why is not None:
        log.warning("ignoring the model's xai metadata, taken as not augmented: %s", why)
    return stamp


def problem(backend: Backend, model: Any) -> str | None:
    """Why the model's `xai` keys do not make a stamp (None when there are none, or when
    they do)."""
    return _checked(backend, model)[1]


def _checked(backend: Backend, model: Any) -> tuple[Stamp | None, str | None]:
    fields = backend.read_stamp(model)
    if not fields:
        return None, None
    try:
        return check(fields, [p.name.split(", ") for p in backend.outputs(model)]), None
    except XaiGraphError as exc:
        signals.check()  # an interrupted run ends here, never goes on another way
        return None, str(exc)

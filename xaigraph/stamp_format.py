"""The `xai` stamp's keys, and the fields a run writes under them.

What the backends store (OpenVINO `rt_info` under `xai`, ONNX `metadata_props` as
`xai.<key>`) and the stamp pass writes (`passes/stamp.py`). Reading a stamp back and checking
that it is whole and consistent is `xaigraph.stamp`, which needs the pipeline parser and so
sits above the passes; this module sits below the backends and imports almost nothing.
"""

from __future__ import annotations

from xaigraph.version import __version__

__all__ = ["SANITY_KEY", "SCALINGS", "STAMP_KEYS", "UNDO_KEY", "stamp_fields"]

STAMP_KEYS = ("version", "method", "target_layer", "pipeline", "output", "scaling")
UNDO_KEY = "undo"
SANITY_KEY = "sanity"  # the sanity checks' figures, as JSON (optional: not run with off)
SCALINGS = ("none", "minmax-u8")


def stamp_fields(*, method: str, target_layer: str, pipeline: str, scaling: str,
                 undo: str | None = None, sanity: str | None = None) -> dict[str, str]:
    """The stamp of a run: this xaigraph's version, the method, the target layer, the
    pipeline's text, the output and the scaling, `undo` (what `strip` puts back), and
    `sanity` (the sanity checks' figures, JSON)."""
    fields = {
        "version": __version__,
        "method": method,
        "target_layer": target_layer,
        "pipeline": pipeline,
        "output": "saliency_map",
        "scaling": scaling,
    }
    if undo is not None:
        fields[UNDO_KEY] = undo
    if sanity is not None:
        fields[SANITY_KEY] = sanity
    return fields

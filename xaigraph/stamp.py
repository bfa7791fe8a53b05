"""The `xai` stamp written into augmented models: how the model was made.

OpenVINO keeps it in `rt_info` under `xai`, ONNX in `metadata_props` as `xai.<key>`. The
stamp is how a later run recognises an augmented model.
"""

from __future__ import annotations

from xaigraph.version import __version__

__all__ = ["STAMP_KEYS", "stamp_fields"]

STAMP_KEYS = ("version", "method", "target_layer", "pipeline", "output", "scaling")


def stamp_fields(*, method: str, target_layer: str, pipeline: str, scaling: str
                 ) -> dict[str, str]:
    return {
        "version": __version__,
        "method": method,
        "target_layer": target_layer,
        "pipeline": pipeline,
        "output": "saliency_map",
        "scaling": scaling,
    }

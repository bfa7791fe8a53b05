"""The passes of the xaigraph pipeline, one per module, and the pipeline builder."""

from __future__ import annotations

from xaigraph.pipeline import Pass, PassManager

from .detect_target import DetectTargetPass
from .embed_scaling import EmbedScalingPass
from .insert_saliency import SALIENCY_OUTPUT, InsertSaliencyPass
from .select_classes import CLASSES_OUTPUT, SelectClassesPass
from .stamp import StampPass
from .validate import ValidatePass

__all__ = [
    "CLASSES_OUTPUT",
    "SALIENCY_OUTPUT",
    "DetectTargetPass",
    "EmbedScalingPass",
    "InsertSaliencyPass",
    "SelectClassesPass",
    "StampPass",
    "ValidatePass",
    "build_pipeline",
]


def build_pipeline(
    method: str,
    *,
    target_layer: str | None = None,
    scaling: bool = True,
    validate: bool = True,
    targets: str | None = None,
    num_anchors: int | None = None,
) -> PassManager:
    """detect-target, [select-classes{targets=T}], insert-saliency{method=M},
    [embed-scaling], stamp, [validate]."""
    passes: list[Pass] = [DetectTargetPass(target_layer, num_anchors)]
    if targets is not None:
        passes.append(SelectClassesPass(targets))
    passes.append(InsertSaliencyPass(method))
    if scaling:
        passes.append(EmbedScalingPass())
    # The stamp records the whole pipeline, itself and validation included.
    stamp = StampPass("", method, scaling)
    passes.append(stamp)
    if validate:
        passes.append(ValidatePass())
    manager = PassManager(passes)
    stamp.pipeline = manager.text()
    return manager

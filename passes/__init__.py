"""The passes of the xaigraph pipeline, one per module, the pipeline builder and the parser
of pipeline text."""

from __future__ import annotations

from xaigraph.pipeline import Pass, PassManager

from .channels_first import ChannelsFirstPass
from .detect_target import DetectTargetPass
from .embed_scaling import EmbedScalingPass
from .feature_vector import FEATURE_OUTPUT, FeatureVectorPass
from .insert_saliency import SALIENCY_OUTPUT, InsertSaliencyPass
from .sanity import SanityPass
from .select_classes import CLASSES_OUTPUT, SelectClassesPass
from .stamp import StampPass
from .text import parse_pipeline
from .validate import ValidatePass

__all__ = [
    "CLASSES_OUTPUT",
    "FEATURE_OUTPUT",
    "PASSES",
    "SALIENCY_OUTPUT",
    "ChannelsFirstPass",
    "DetectTargetPass",
    "EmbedScalingPass",
    "FeatureVectorPass",
    "InsertSaliencyPass",
    "SanityPass",
    "SelectClassesPass",
    "StampPass",
    "ValidatePass",
    "analysis_pipeline",
    "build_pipeline",
    "parse",
]

PASSES: dict[str, type[Pass]] = {
    p.name: p
    for p in (DetectTargetPass, ChannelsFirstPass, FeatureVectorPass, SelectClassesPass,
              InsertSaliencyPass, SanityPass, EmbedScalingPass, StampPass, ValidatePass)
}


def parse(text: str) -> PassManager:
    """The pipeline `text` prints (`parse(p.text()) == p`); `BadInputError` names what is
    wrong with bad text."""
    return parse_pipeline(text, PASSES)


def analysis_pipeline(target_layer: str | None = None, num_anchors: int | None = None,
                      class_output: str | None = None) -> PassManager:
    """What `inspect` runs (on a clone): detect-target, and channels-first when it asks."""
    return PassManager([DetectTargetPass(target_layer, num_anchors, class_output)])


def build_pipeline(
    method: str,
    *,
    target_layer: str | None = None,
    scaling: bool = True,
    validate: bool = True,
    targets: str | None = None,
    num_anchors: int | None = None,
    form: str | None = None,
    class_output: str | None = None,
    feature_vector: bool = False,
    sanity: str = "on",
) -> PassManager:
    """detect-target, [feature-vector], [select-classes{targets=T}],
    insert-saliency{method=M[,form=F]}, [sanity{level=L}], [embed-scaling], stamp,
    [validate]. detect-target adds channels-first after itself when the target map is
    channels-last (see `xaigraph.pipeline`). feature-vector comes before the saliency passes
    so that `saliency_map` stays the last output (what a stamp is recognised by). `sanity`
    "off" leaves the sanity checks out."""
    passes: list[Pass] = analysis_pipeline(target_layer, num_anchors, class_output).passes
    if feature_vector:
        passes.append(FeatureVectorPass())
    if targets is not None:
        passes.append(SelectClassesPass(targets))
    passes.append(InsertSaliencyPass(method, form))
    if sanity != "off":
        passes.append(SanityPass(sanity))  # on the raw maps, before they are scaled
    if scaling:
        passes.append(EmbedScalingPass())
    passes.append(StampPass())  # it stamps the text of the whole run, validation included
    if validate:
        passes.append(ValidatePass())
    return PassManager(passes)

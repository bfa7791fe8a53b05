"""Saliency methods, each built once through the `OpBuilder` interface."""

from __future__ import annotations

from xaigraph.errors import BadInputError
from xaigraph.methods.activationmap import ActivationMap
from xaigraph.methods.base import Method
from xaigraph.methods.cam import CAM
from xaigraph.methods.detclassprob import DetClassProbabilityMap
from xaigraph.methods.eigencam import EigenCAM
from xaigraph.methods.reciprocam import ReciproCAM
from xaigraph.methods.vitreciprocam import ViTReciproCAM

__all__ = ["METHODS", "Method", "get_method"]

METHODS: dict[str, Method] = {
    m.name: m
    for m in (ReciproCAM(), ActivationMap(), CAM(), EigenCAM(), ViTReciproCAM(),
              DetClassProbabilityMap())
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise BadInputError(
            f"unknown method '{name}'; choose one of: {', '.join(METHODS)}"
        ) from None

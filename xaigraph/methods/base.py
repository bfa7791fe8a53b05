"""What every saliency method provides, and the kind of target each one explains."""

from __future__ import annotations

from xaigraph.graph_view import GraphView
from xaigraph.head import Head
from xaigraph.ops import OpBuilder, T
from xaigraph.target import Target

__all__ = ["Method", "why_not"]


class Method:
    """A saliency method. Subclasses set the class attributes and implement `build`.

    `target_kind` is the kind of target it explains ("map": a CNN feature map, "tokens": a
    transformer's token map, "detector": a detector's class-score maps). A method with
    several exact forms lists them in `forms`, the last one the reference, and picks one in
    `pick_form`; the insert pass checks a picked form against the reference."""

    name: str
    per_class: bool  # maps [N, K, h, w] (True) or [N, h, w] (False)
    summary: str
    how = ""  # one line on how it is built, when that is the same for every target
    target_kind = "map"
    forms: tuple[str, ...] = ()
    form_names: tuple[str, ...] = ()  # every form `build` takes (insert-saliency's form=)

    def check(self, view: GraphView, target: Target, head: Head) -> str | None:
        """Why the method does not apply to this target (of its kind), or None."""
        return None

    def pick_form(self, view: GraphView, target: Target, head: Head) -> str | None:
        return None

    def form(self, view: GraphView, target: Target, head: Head,
             form: str | None = None) -> str:
        """One line on how the method will be built for this target (`how` by default)."""
        if not self.how:
            raise NotImplementedError
        return self.how

    def build(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
              form: str | None = None) -> T:
        """Build the raw (unscaled, float) saliency map and return it."""
        raise NotImplementedError

    def chooses_classes(self, view: GraphView, target: Target, head: Head,
                        form: str | None = None) -> bool:
        """Whether `build_chosen` can build the maps of some classes for less than all."""
        return False

    def chosen_form(self, view: GraphView, target: Target, head: Head,
                    form: str | None = None) -> str:
        """One line on how `build_chosen` builds the maps of the chosen classes."""
        raise NotImplementedError

    def build_chosen(self, b: OpBuilder, view: GraphView, target: Target, head: Head,
                     classes: T, form: str | None = None) -> T:
        """The raw maps `[N, k, h, w]` of the int64 `classes` `[N, k]` only."""
        raise NotImplementedError


def _kind_reason(method: Method, target: Target) -> str | None:
    if target.kind == method.target_kind:
        return None
    if target.kind == "detector":
        return ("the model is a detector (no classification output); use --method "
                "detclassprobabilitymap")
    if target.kind == "tokens":
        assert target.tokens is not None
        return (f"the target is a transformer's token map {list(target.shape)} "
                f"({target.tokens.prefix} + {target.tokens.height}x{target.tokens.width} "
                "tokens); use --method vitreciprocam")
    if method.target_kind == "tokens":
        return ("the target is not a transformer's token map (no transformer block after "
                "the last spatial feature map)")
    return ("the model has a classification output; this method is for single-stage "
            "detectors (per-level class-score maps, no [N, K] output)")


def why_not(method: Method, view: GraphView, target: Target, head: Head) -> str | None:
    """Why `method` does not apply to `target`, or None when it does."""
    return _kind_reason(method, target) or method.check(view, target, head)

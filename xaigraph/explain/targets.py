"""Which classes (or boxes) of one image get a map: target objects.

    rule = parse("topk:3", labels)                     # TopK(3)
    rule.classes(Outputs(scores, available))           # the image's 3 best classes
    rule.text()                                        # "topk:3", run.json's options.targets

A target maps one image's model outputs to the class indices that get a map, best first:

| target | classes | `text()` |
|---|---|---|
| `Predicted()` | the best class (`--targets predicted`) | `topk:1` |
| `TopK(k)` | the `k` best classes (ties: the model's order) | `topk:K` |
| `Classes(indices)` | these classes, in this order, where the model has their map | `3,17` |
| `All()` | every class the model has a map of | `all` |
| `GroundTruth(names)` | the item's ground-truth classes, else the best (eval) | `eval: ...` |
| `AndTruth(base, names)` | `base`'s; if wrong, the best class and the truth too | `base + ...` |
| `Boxes(...)` | a black-box detector's boxes (`select`) | `predicted`, `topk:K`, `3,17` |

Classes are chosen among `Outputs.available` (the model's `saliency_classes` row when it
computes the maps of some classes only, else every class); `Outputs.positions` gives where
their maps are among the model's maps. `text()` is what run.json records (and its digest
hashes), the same strings as before these objects, so a run resumes across the change.
`in_graph()` is the `insert --targets` text that lets a plain model compute only the maps a
target can ask for (None: every class's map is needed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.explain.detections import Detections
from xaigraph.explain.drise import select_targets
from xaigraph.labels import class_index, normal

__all__ = ["All", "AndTruth", "Boxes", "Classes", "GroundTruth", "Outputs", "Predicted",
           "Target", "TopK", "given_or_best", "item_classes", "parse"]


@dataclass(frozen=True)
class Outputs:
    """One image's model outputs as a target reads them: `scores` `[K]` class probabilities,
    `available` the classes the model has maps of in the order of its maps (None: all K),
    and the input `item` (its ground truth, for `GroundTruth`), or `given`, the classes a
    target that reads the input found in it before inference (`item_classes`: the batch
    dict's `classes` row, -1 padding removed)."""

    scores: np.ndarray
    available: Sequence[int] | None = None
    item: Any = None
    given: Sequence[int] | None = None  # the classes the input brought (batch dict `classes`)

    @property
    def pool(self) -> list[int]:
        if self.available is None:
            return list(range(len(self.scores)))
        return [int(c) for c in self.available]

    def positions(self, classes: Sequence[int]) -> list[int]:
        """Where the maps of `classes` are among the model's maps."""
        where = {c: i for i, c in enumerate(self.pool)}
        return [where[c] for c in classes]


class Target(Protocol):
    """A rule choosing the classes of one image that get a map."""

    def classes(self, out: Outputs) -> list[int]: ...

    def text(self) -> str: ...

    def in_graph(self) -> str | None: ...


def _ranked(out: Outputs, k: int) -> list[int]:
    pool = np.asarray(out.pool, dtype=np.int64)
    order = np.argsort(-out.scores[pool], kind="stable")  # ties: the model's order
    return [int(c) for c in pool[order[:k]]]


@dataclass(frozen=True)
class TopK:
    """The `k` best-scoring classes, best first."""

    k: int

    def __post_init__(self) -> None:
        if self.k < 1:
            raise BadInputError(f"topk:{self.k}: K must be a whole number >= 1")

    def classes(self, out: Outputs) -> list[int]:
        return _ranked(out, self.k)

    def text(self) -> str:
        return f"topk:{self.k}"

    def in_graph(self) -> str | None:
        return self.text()


@dataclass(frozen=True)
class Predicted:
    """The best-scoring class (`topk:1`; for a black-box detector, `Boxes()`: every box over
    the score threshold)."""

    def classes(self, out: Outputs) -> list[int]:
        return _ranked(out, 1)

    def text(self) -> str:
        return "topk:1"

    def in_graph(self) -> str | None:
        return self.text()


@dataclass(frozen=True)
class Classes:
    """These class indices, in this order (those the model has a map of)."""

    indices: tuple[int, ...]

    def classes(self, out: Outputs) -> list[int]:
        pool = set(out.pool)
        return [c for c in self.indices if c in pool]

    def text(self) -> str:
        return ",".join(map(str, self.indices))

    def in_graph(self) -> str | None:
        return self.text()


@dataclass(frozen=True)
class All:
    """Every class the model has a map of, in the order of its maps."""

    def classes(self, out: Outputs) -> list[int]:
        return out.pool

    def text(self) -> str:
        return "all"

    def in_graph(self) -> str | None:
        return None


@dataclass(frozen=True)
class GroundTruth:
    """eval's classes (`RULE`): the item's ground-truth class names (box names, then image
    labels) that name one of the model's classes `names` (compared by
    `xaigraph.labels.normal`), in that order; an item with none of them, its best class."""

    names: tuple[str, ...]
    RULE: ClassVar[str] = ("the image's ground-truth class names that name a model class (case "
                           "ignored; '_', '-' and runs of spaces as one space), else the "
                           "predicted class")

    def of_item(self, item: Any) -> list[int]:
        """The item's ground-truth classes (the rule's first part; may be empty): what the
        batch dict's `classes` row brings to the `Explainer` (`item_classes`)."""
        index = {normal(name): i for i, name in reversed(list(enumerate(self.names)))}
        named = [b.name for b in getattr(item, "boxes", ())] + list(getattr(item, "labels", ()))
        found: list[int] = []
        for name in named:
            c = index.get(normal(name))
            if c is not None and c not in found:
                found.append(c)
        return found

    def classes(self, out: Outputs) -> list[int]:
        return given_or_best(out, self.of_item)

    def text(self) -> str:
        return "eval: " + self.RULE

    def in_graph(self) -> str | None:
        return None


def given_or_best(out: Outputs, of_item: Callable[[Any], Sequence[int]]) -> list[int]:
    """The classes the batch dict's `classes` row brings (else `of_item(out.item)`) that are
    in the image's pool, in order; none of them: the best class. The rule of targets whose
    classes come from outside the model (`GroundTruth`, eval's `--reference` run)."""
    given = out.given if out.given is not None else of_item(out.item)
    pool = set(out.pool)
    found = [int(c) for c in given if int(c) in pool]
    return found or [int(np.argmax(out.scores))]


@dataclass(frozen=True)
class AndTruth:
    """`base`'s classes and, for an image whose prediction is wrong (its best class is not
    one of its ground-truth classes, `GroundTruth(names).of_item`), the best class and the
    ground-truth classes too: explain's and eval's targets on data with ground truth
    (issue 22, "why was it wrong"). An image without ground truth that names a model class
    gets `base`'s classes only. `marks` says which map is which (the record's `role` and
    `extra`). Every class's map may be asked for: `in_graph()` is None."""

    base: Target
    names: tuple[str, ...]
    SUFFIX: ClassVar[str] = (" + on a wrong prediction the predicted class and the "
                             "ground-truth classes")

    def of_item(self, item: Any) -> list[int]:
        return GroundTruth(self.names).of_item(item)

    def _truth(self, out: Outputs) -> list[int]:
        given = out.given if out.given is not None else self.of_item(out.item)
        pool = set(out.pool)
        return [int(c) for c in given if int(c) in pool]

    def classes(self, out: Outputs) -> list[int]:
        chosen = self.base.classes(out)
        truth = self._truth(out)
        best = _ranked(out, 1)
        if truth and best and best[0] not in truth:
            chosen += [c for c in best + truth if c not in chosen]
        return chosen

    def marks(self, out: Outputs) -> dict[int, tuple[str | None, bool]]:
        """Each chosen class's (role, extra): role "predicted" (the best class), "truth"
        (a ground-truth class), "both", or None (neither: another of `base`'s); extra, a
        class explained only because the prediction is wrong (not by `base`). Empty for an
        image without ground truth that names a model class."""
        truth = self._truth(out)
        if not truth:
            return {}
        best = _ranked(out, 1)
        base = set(self.base.classes(out))
        roles: dict[tuple[bool, bool], str | None] = {
            (True, True): "both", (True, False): "predicted", (False, True): "truth",
            (False, False): None}
        return {c: (roles[bool(best) and c == best[0], c in truth], c not in base)
                for c in self.classes(out)}

    def text(self) -> str:
        return self.base.text() + self.SUFFIX

    def in_graph(self) -> str | None:
        return None


@dataclass(frozen=True)
class Boxes:
    """A black-box detector's targets: boxes of the unmasked image, best score first. By
    default every box scoring at least `score_threshold`; with `labels`, those of these
    classes; with `k`, the `k` best boxes whatever the threshold (of score >= 0)."""

    score_threshold: float = 0.5
    k: int | None = None
    labels: tuple[int, ...] | None = None

    @classmethod
    def of(cls, target: Target | Boxes, score_threshold: float) -> Boxes:
        """The detector's reading of a parsed `--targets`: `predicted` and `all` every box
        over the threshold, `topk:K` the K best boxes, a class list those boxes."""
        if isinstance(target, TopK):
            return cls(score_threshold, k=target.k)
        if isinstance(target, Classes):
            return cls(score_threshold, labels=target.indices)
        if isinstance(target, Boxes):
            return target
        return cls(score_threshold)

    def select(self, found: Detections) -> Detections:
        """The boxes of `found` that get a map, best first (ties: the detector's order)."""
        if self.k is None:
            return select_targets(found, score_threshold=self.score_threshold,
                                  classes=self.labels)
        best = select_targets(found, score_threshold=0.0)
        return best.keep(np.arange(min(self.k, len(best))))

    def text(self) -> str:
        if self.k is not None:
            return f"topk:{self.k}"
        if self.labels is not None:
            return ",".join(map(str, self.labels))
        return "predicted"

    def in_graph(self) -> str | None:
        return None


def item_classes(target: Target | Boxes, items: Sequence[Any]) -> np.ndarray | None:
    """The batch dict's `classes` `[B, T]` int64 (-1 padding) of `items`: the classes each
    brings for a target that reads its input before inference (`GroundTruth.of_item`);
    None for the other targets (they read the model's outputs only)."""
    of_item = getattr(target, "of_item", None)
    if of_item is None:
        return None
    found = [of_item(item) for item in items]
    out = np.full((len(found), max((len(f) for f in found), default=0)), -1, np.int64)
    for b, classes in enumerate(found):
        out[b, : len(classes)] = classes
    return out


def parse(text: str, labels: Sequence[str] | None) -> Target:
    """`--targets` text: `topk:3`, `predicted`, `all`, or a list of indices and names (`3,17`,
    `tiger cat,tabby`), names looked up in `labels`. Bad text is a `BadInputError`."""
    spec = text.strip()
    low = spec.lower()
    if low == "predicted":
        return Predicted()
    if low == "all":
        return All()
    if low.startswith("topk:"):
        try:
            k = int(low[5:])
        except ValueError:
            k = 0
        if k < 1:
            raise BadInputError(f"--targets '{text}': topk:K takes a whole number K >= 1")
        return TopK(k)
    items = [s.strip() for s in spec.split(",")]
    if not spec or any(not s for s in items):
        raise BadInputError(f"--targets '{text}': give topk:K, predicted, all, or a list of "
                            "class indices or names such as 3,17")
    classes: list[int] = []
    for s in items:
        if re.fullmatch(r"\d+", s):
            classes.append(int(s))
        elif labels is None:
            raise BadInputError(f"--targets '{text}': class name '{s}' but the model has no "
                                "class names (give --labels FILE, or indices)")
        else:
            classes.append(class_index(s, list(labels), "--targets"))
    if len(set(classes)) != len(classes):
        raise BadInputError(f"--targets '{text}': a class is listed twice")
    return Classes(tuple(classes))

"""How a map's values become colours: the scaling modes (`--map-scale`), one rule for the
writer's overlays and the report's views (docs/runtime.md, "Colour scales").

A map file (`maps/`) is the data: each map min-max scaled on its own, `v = (m - lo) / (hi -
lo)` of the raw map `m` whose range `lo, hi` the record keeps (`range`, null when the model
gave u8 maps). Every other mode is an affine function of `v`, applied to the map's colour
indices `i = round(255 v)` through a 256-entry table (`index_table`), so that the writer and
the report, given the same indices, colour the same:

- `map`: `v` (each map on its own scale; a 6 % class glows as red as a 95 % one).
- `image`: `(m - LO) / (HI - LO)`, `LO, HI` the extremes of the image's maps (one scale for
  all target maps of one image); needs every map's raw range.
- `run`: the same with the extremes of the whole run (the report's view: the run's range is
  known only at its end); needs the raw ranges.
- `score`: `v * p`, `p` the class's probability (a detector's: the box's score) clamped to
  0..1, NaN as 0: a 6 % class is faint (the default: see the README).

Raw ranges are recorded as float32 values: the affine map is exact to float rounding, and
indices are rounded half up (`render`'s rule).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["DEFAULT", "LOW_CONFIDENCE", "MODES", "NEEDS_RANGE", "WRITTEN", "Scale", "affine",
           "extremes", "index_table", "scale_of"]

MODES = ("map", "image", "run", "score")
WRITTEN = ("map", "image", "score")  # what explain writes; `run` is the report's view
NEEDS_RANGE = frozenset({"image", "run"})
DEFAULT = "score"
LOW_CONFIDENCE = 0.1  # a map of a class scoring below this is marked "low confidence"
_TIE = 1e-4  # as render's: a value a hair below a half goes up

Range = tuple[float, float]


def extremes(ranges: Iterable[Range | None]) -> Range | None:
    """The lowest low and the highest high of raw ranges; None when any is unknown (or
    none is given)."""
    lows, highs = [], []
    for r in ranges:
        if r is None or not all(math.isfinite(v) for v in r):
            return None
        lows.append(r[0])
        highs.append(r[1])
    return (min(lows), max(highs)) if lows else None


def affine(mode: str, score: float, own: Range | None = None,
           common: Range | None = None) -> tuple[float, float]:
    """`(a, b)`: the mode's value is `a * v + b` of the map-mode value `v`. `own`: the
    map's raw range; `common`: the image's (`image`) or run's (`run`) extremes."""
    if mode == "map":
        return 1.0, 0.0
    if mode == "score":
        p = score if math.isfinite(score) else 0.0
        return min(max(p, 0.0), 1.0), 0.0
    if mode not in NEEDS_RANGE:
        raise ValueError(f"unknown map scale '{mode}'; use one of {', '.join(MODES)}")
    if own is None or common is None:
        raise ValueError(f"--map-scale {mode} needs the maps' raw ranges")
    width = common[1] - common[0]
    if not width > 0:  # every map of the image (run) constant at one value
        return 0.0, 0.0
    return (own[1] - own[0]) / width, (own[0] - common[0]) / width


def index_table(a: float, b: float) -> np.ndarray:
    """The 256-entry u8 table taking a map-mode index `i` to the index of `a * i / 255 + b`
    (rounded half up, clipped to 0..255)."""
    i = np.arange(256, dtype=np.float64)
    v = (a * (i / 255.0) + b) * 255.0 + 0.5 + _TIE
    return np.clip(np.floor(v), 0, 255).astype(np.uint8)


class Scale:
    """One map's colour scale: the mode, its table of indices, the values its ends stand
    for (`low`, `high`: raw values, or 0 and 1 for `score`, None when unknown) and where
    the map's own score lies on it (`mark`, `score` mode)."""

    def __init__(self, mode: str, a: float, b: float, low: float | None,
                 high: float | None, mark: float | None = None) -> None:
        self.mode = mode
        self.table = index_table(a, b)
        self.identity = a == 1.0 and b == 0.0
        self.low = low
        self.high = high
        self.mark = mark

    def apply(self, index: np.ndarray) -> np.ndarray:
        """Map-mode indices as this scale's indices (a new array unless the identity)."""
        return index if self.identity else np.take(self.table, index)


def scale_of(mode: str, score: float, own: Range | None,
             common: Range | None = None) -> Scale:
    """The `Scale` of one map: its score, raw range `own` and, for `image` / `run`, the
    image's or run's extremes `common`."""
    a, b = affine(mode, score, own, common)
    if mode == "score":
        return Scale(mode, a, b, 0.0, 1.0, a)
    ends: Sequence[float] | None = own if mode == "map" else common
    if ends is None:
        return Scale(mode, a, b, None, None)
    return Scale(mode, a, b, float(ends[0]), float(ends[1]))

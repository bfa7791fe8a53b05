"""Sanity checks of saliency maps (issue 22, "Trust"): degenerate maps, class sensitivity and
model parameter randomisation (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS
2018).

The checks read the raw (unscaled) maps of a set of probe inputs (`probes`). For each probe
`p` and class `k`, `M[p, k]` is the map (a method with one map per image has one "class");
`n(.)` is a map min-max scaled to [0, 1] (a constant map scales to zeros); `c(p)` is the
probe's top-1 class.

- constant: the map of every class is constant (its range within 1e-6 of its largest
  magnitude) on every probe.
- same for every input: `max |n(M[p, k]) - n(M[q, k])|` over probes `p, q` and classes `k`
  is at most `SAME_TOL` (0.001): the maps' shapes do not depend on the input (a fixed
  pattern, at most rescaled).
- same for every class (per-class methods, 2 or more maps): `max |n(M[p, k]) - n(M[p, 0])|`
  over classes and probes is at most `SAME_TOL`.
- input rank correlation (figure): the mean over ordered probe pairs of the Spearman rank
  correlation of `M[p, c(p)]` and `M[q, c(p)]` (signed: the map's pattern); at or above
  `PATTERN_WARN` (a warning) the maps barely depend on the input.
- border share (figure): the share of `n(M[p, c(p)])`'s mass on the one-cell border ring,
  mean over probes, beside the ring's share of cells; at or above `BORDER_WARN` on every
  probe (a warning) the map carries its mass on the border.
- class sensitivity (per-class methods with every class's map): the mean over probes of the
  Spearman rank correlation of `M[p, c(p)]` and the least likely class's map (signed: the
  absolute maps of a linear head's classes share the features' magnitude; lower is
  better).
- MPRT: the maps of a copy whose weights are re-initialised (`xaigraph.randomise`) beside
  the original's, per probe for `c(p)` (the original's top-1): Spearman of the absolute maps
  and SSIM of `n(.)` (`ssim`), means over probes. A faithful map changes: low similarity.
  (A model made with `--targets topk:K` holds the maps of each model's own top classes: the
  first map of each is compared.)

Rank correlations of two maps of which one is constant are 0 (nothing in common), of two
constant maps 1 (the same). `SAME_TOL`, `PATTERN_WARN`, `BORDER_WARN` and `MPRT_STRICT`
were chosen by measuring the bundled EfficientNet-Lite0 and the tiny test models (README,
"Sanity checks").
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "BORDER_WARN",
    "LEVELS",
    "MPRT_STRICT",
    "PATTERN_WARN",
    "SAME_TOL",
    "Degeneracy",
    "Similarity",
    "border_share",
    "class_sensitivity",
    "degeneracy",
    "describe",
    "normalise",
    "probe_images",
    "similarity",
    "spearman",
    "ssim",
]

LEVELS = ("off", "warn", "on", "strict")
SAME_TOL = 1e-3
PATTERN_WARN = 0.95
BORDER_WARN = 0.9
MPRT_STRICT = 0.6
SSIM_WINDOW = 7
_C1, _C2 = 0.01 ** 2, 0.03 ** 2  # SSIM's constants for data in [0, 1]


def normalise(maps: np.ndarray) -> np.ndarray:
    """Each map (the last two axes) min-max scaled to [0, 1]; a constant map to zeros."""
    m = np.asarray(maps, dtype=np.float64)
    lo = m.min(axis=(-2, -1), keepdims=True)
    span = m.max(axis=(-2, -1), keepdims=True) - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(span > 0, (m - lo) / np.where(span > 0, span, 1.0), 0.0)
    return out


def is_constant(m: np.ndarray) -> bool:
    """Whether the map's range is within 1e-6 of its largest magnitude."""
    m = np.asarray(m, dtype=np.float64)
    return float(np.ptp(m)) <= 1e-6 * float(np.max(np.abs(m), initial=0.0))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (ties get their mean rank); 0 when one of them
    is constant, 1 when both are."""
    ca, cb = is_constant(a), is_constant(b)
    if ca or cb:
        return 1.0 if ca and cb else 0.0
    from scipy.stats import rankdata  # here: importing scipy.stats costs every start 0.6 s

    ra = rankdata(np.ravel(a))
    rb = rankdata(np.ravel(b))
    ra -= ra.mean()
    rb -= rb.mean()
    return float(np.dot(ra, rb) / np.sqrt(np.dot(ra, ra) * np.dot(rb, rb)))


def ssim(a: np.ndarray, b: np.ndarray, window: int = SSIM_WINDOW) -> float:
    """Mean structural similarity (Wang et al. 2004) of two maps in [0, 1]: a uniform
    `window` x `window` window (the map's size when smaller, made odd), population
    statistics, C1 = 0.01^2, C2 = 0.03^2."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    w = min(window, *a.shape)
    w -= 1 - w % 2
    from numpy.lib.stride_tricks import sliding_window_view

    wa = sliding_window_view(a, (w, w))
    wb = sliding_window_view(b, (w, w))
    ma, mb = wa.mean(axis=(-2, -1)), wb.mean(axis=(-2, -1))
    va = wa.var(axis=(-2, -1))
    vb = wb.var(axis=(-2, -1))
    cov = (wa * wb).mean(axis=(-2, -1)) - ma * mb
    s = ((2 * ma * mb + _C1) * (2 * cov + _C2)) / ((ma ** 2 + mb ** 2 + _C1) * (va + vb + _C2))
    return float(s.mean())


def border_share(m: np.ndarray) -> float | None:
    """The share of `normalise(m)`'s mass on the one-cell border ring (None for a map
    without an interior, under 3x3, or without mass)."""
    h, w = m.shape
    if h < 3 or w < 3:
        return None
    n = normalise(m)
    total = float(n.sum())
    if total <= 0:
        return None
    inner = float(n[1:-1, 1:-1].sum())
    return (total - inner) / total


def ring_cells(h: int, w: int) -> float:
    """The border ring's share of the cells of an h x w map."""
    return 1.0 - max(h - 2, 0) * max(w - 2, 0) / (h * w)


@dataclass
class Degeneracy:
    """What the probes' maps show (see the module doc); `constant` counts probes whose
    maps are all constant."""

    probes: int
    constant: int
    same_for_inputs: float
    input_rank_corr: float
    same_for_classes: float | None
    class_rank_corr: float | None
    border_share: float | None
    border_cells: float
    border_all: bool  # at or above BORDER_WARN on every probe

    def no_information(self) -> list[str]:
        """Findings that make the map carry no information (refused by default)."""
        out = []
        if self.constant == self.probes:
            out.append(f"is constant on every probe ({self.probes} probes)")
        elif self.same_for_inputs <= SAME_TOL:
            out.append(f"is the same for every probe input (rank correlation "
                       f"{self.input_rank_corr:.2f} over {self.probes} probes; maps within "
                       f"{self.same_for_inputs:.2g} of each other)")
        if (self.constant < self.probes and self.same_for_classes is not None
                and self.same_for_classes <= SAME_TOL):
            out.append(f"is the same for every class on every probe (maps within "
                       f"{self.same_for_classes:.2g} of each other)")
        return out

    def warnings(self) -> list[str]:
        """Findings that make the map suspect (warned at every level but off)."""
        out: list[str] = []
        if self.no_information():
            return out
        if self.probes > 1 and self.input_rank_corr >= PATTERN_WARN:
            out.append(f"is nearly the same for every probe input (rank correlation "
                       f"{self.input_rank_corr:.2f}): a fixed pattern?")
        if self.border_all and self.border_share is not None:
            out.append(f"has its mass on the border ({100 * self.border_share:.0f} % on the "
                       f"outer ring of cells, which is {100 * self.border_cells:.0f} % of "
                       "them)")
        if 0 < self.constant < self.probes:
            out.append(f"is constant on {self.constant} of {self.probes} probes")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "probes": self.probes,
            "constant": self.constant,
            "same_for_inputs": _round(self.same_for_inputs),
            "input_rank_corr": _round(self.input_rank_corr),
            "same_for_classes": _round(self.same_for_classes),
            "class_rank_corr": _round(self.class_rank_corr),
            "border_share": _round(self.border_share),
            "border_cells": _round(self.border_cells),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def degeneracy(maps: np.ndarray, top: Sequence[int] | None, least: Sequence[int] | None
               ) -> Degeneracy:
    """The degenerate-map figures of `maps` `[P, K, h, w]` (P probes, K maps each), with
    each probe's top-1 class `top` and least likely class `least` (None when the maps are
    not per class, or not of every class: then the class figures that need them are None,
    and the first map is each probe's)."""
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    p_count, k_count = maps.shape[:2]
    chosen = list(top) if top is not None else [0] * p_count
    n = normalise(maps)
    constant = sum(all(is_constant(maps[p, k]) for k in range(k_count))
                   for p in range(p_count))
    same_inputs = max((float(np.max(np.abs(n[p] - n[q])))
                       for p, q in itertools.combinations(range(p_count), 2)), default=0.0)
    corr = [spearman(maps[p, chosen[p]], maps[q, chosen[p]])
            for p, q in itertools.permutations(range(p_count), 2)]
    same_classes = (float(np.max(np.abs(n - n[:, :1]))) if k_count > 1 else None)
    class_corr = (class_sensitivity(maps, chosen, least) if least is not None and k_count > 1
                  else None)
    shares = [border_share(maps[p, chosen[p]]) for p in range(p_count)]
    known = [s for s in shares if s is not None]
    h, w = maps.shape[-2:]
    return Degeneracy(
        probes=p_count,
        constant=constant,
        same_for_inputs=same_inputs,
        input_rank_corr=float(np.mean(corr)) if corr else 1.0,
        same_for_classes=same_classes,
        class_rank_corr=class_corr,
        border_share=float(np.mean(known)) if known else None,
        border_cells=ring_cells(h, w),
        border_all=bool(known) and len(known) == p_count and min(known) >= BORDER_WARN,
    )


def class_sensitivity(maps: np.ndarray, top: Sequence[int], least: Sequence[int]) -> float:
    """Mean over probes of the Spearman rank correlation of the maps of the top-1 and the
    least likely class (signed: a class map is evidence for that class; lower is
    better)."""
    return float(np.mean([spearman(maps[p, top[p]], maps[p, least[p]])
                          for p in range(len(top))]))


@dataclass
class Similarity:
    """How alike two sets of maps are: Spearman of the absolute maps and SSIM of the
    min-max scaled maps, means over probes, and per probe."""

    spearman: float
    ssim: float
    per_probe: list[tuple[float, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"spearman": _round(self.spearman), "ssim": _round(self.ssim)}


def similarity(before: np.ndarray, after: np.ndarray, top: Sequence[int] | None
               ) -> Similarity:
    """MPRT's figures for maps `[P, K, h, w]` of the original and a randomised model: the
    map of each probe's class `top[p]` (the first when None)."""
    chosen = list(top) if top is not None else [0] * len(before)
    a = np.nan_to_num(np.asarray(before, dtype=np.float64))
    b = np.nan_to_num(np.asarray(after, dtype=np.float64))
    per = []
    for p, k in enumerate(chosen):
        per.append((spearman(np.abs(a[p, k]), np.abs(b[p, k])),
                    ssim(normalise(a[p, k]), normalise(b[p, k]))))
    return Similarity(float(np.mean([s for s, _ in per])), float(np.mean([s for _, s in per])),
                      per)


def describe(record: dict[str, Any] | str) -> str:
    """One line on the figures a sanity record (or its JSON text) holds."""
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except ValueError:
            return "(unreadable)"
    if not isinstance(record, dict) or record.get("skipped"):
        return "skipped"

    def fig(key: str) -> str:
        v = record.get(key)
        return "-" if not isinstance(v, int | float) else f"{v:.2f}"

    parts = [f"{record.get('level', '?')}, {record.get('probes', '?')} probes "
             f"({record.get('probe_source', '?')}): input rank corr {fig('input_rank_corr')}"]
    if record.get("class_rank_corr") is not None:
        parts.append(f"class sensitivity {fig('class_rank_corr')}")
    parts.append(f"border {fig('border_share')} (ring {fig('border_cells')} of cells)")
    mprt = record.get("mprt") or {}
    if "spearman" in mprt:
        parts.append(f"MPRT {mprt.get('step')} Spearman {mprt['spearman']:.2f}, SSIM "
                     f"{mprt['ssim']:.2f}")
    else:
        parts.append(f"MPRT skipped ({mprt.get('skipped', '?')})")
    found = [*record.get("refused", []), *record.get("warnings", [])]
    if found:
        parts.append("found: " + "; ".join(found))
    return "; ".join(parts)


PROBE_NAMES = ("noise", "disc", "square", "stripes", "blobs", "triangle")


def probe_images(height: int, width: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """The generated probe photos, `[height, width, 3]` uint8 RGB, named:

    - noise: uniform RGB noise;
    - disc: a bright red disc (radius 0.15 of the short side) centred at (0.3, 0.3) of the
      size (row, column) on dark grey;
    - square: a dark blue square over rows and columns 0.6 to 0.9 of the size on light grey;
    - stripes: vertical black and white stripes, 8 pairs across;
    - blobs: smooth colour blobs (4 x 4 random colours, bilinearly upsampled);
    - triangle: a green triangle at the left centre on a left-to-right grey gradient.
    """
    rng = np.random.default_rng(seed)
    h, w = height, width
    rows, cols = np.mgrid[0:h, 0:w]
    out: list[tuple[str, np.ndarray]] = []
    out.append(("noise", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
    disc = np.full((h, w, 3), 40, np.uint8)
    r = 0.15 * min(h, w)
    disc[(rows - 0.3 * h) ** 2 + (cols - 0.3 * w) ** 2 <= r * r] = (230, 30, 30)
    out.append(("disc", disc))
    square = np.full((h, w, 3), 210, np.uint8)
    square[int(0.6 * h):int(0.9 * h), int(0.6 * w):int(0.9 * w)] = (20, 20, 140)
    out.append(("square", square))
    stripes = np.where(((cols * 16) // max(w, 1)) % 2 == 0, 255, 0).astype(np.uint8)
    out.append(("stripes", np.repeat(stripes[:, :, None], 3, axis=2)))
    coarse = rng.uniform(0, 255, (4, 4, 3))
    ys = np.linspace(0, 3, h)
    xs = np.linspace(0, 3, w)
    y0 = np.minimum(ys.astype(int), 2)
    x0 = np.minimum(xs.astype(int), 2)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    top_row = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom_row = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    out.append(("blobs", (top_row * (1 - fy) + bottom_row * fy).astype(np.uint8)))
    tri = np.repeat((cols * 255 // max(w - 1, 1)).astype(np.uint8)[:, :, None], 3, axis=2)
    inside = (cols >= 0.1 * w) & (cols <= 0.45 * w) & (
        np.abs(rows - 0.5 * h) <= (cols - 0.1 * w) * 0.6)
    tri[inside] = (30, 200, 40)
    out.append(("triangle", tri))
    return out

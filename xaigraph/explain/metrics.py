"""Saliency-map metrics, as pure functions over arrays and a `predict` callable.

Localisation (needs ground-truth boxes; maps at the original image's resolution):

- `pointing_game` (Zhang et al. 2016, arXiv 1608.00507): 1.0 when the map's maximum lies
  within `tolerance` pixels of a box of the explained class, else 0.0. Higher is better.
- `mass_in_box`: the share of the map's mass inside the union of those boxes. Higher is better.

Faithfulness (need the model; maps at the model input's resolution, values in 0..1):

- `insertion_deletion` (Petsiuk et al. 2018, RISE, arXiv 1806.07421): the class probability
  as the most salient pixels are removed (deletion: lower AUC is better) or added (insertion:
  higher AUC is better), AUC by the trapezoid rule over the fraction of pixels.
- `adcc` (Poppi et al. 2021, arXiv 2104.10252): average drop (lower is better), coherency
  (higher), complexity (lower) and ADCC, their harmonic mean (higher).

Conventions shared by every function here:

- `x` is ONE model input `[1, C, H, W]` (NCHW, float); `maps` are `[T, H, W]` float in 0..1,
  one per explained class `targets[t]`; `predict` maps `[B, C, H, W]` inputs to `[B, K]`
  class probabilities.
- Removing a pixel sets all its channels to `baseline`, the model input of a black image
  (a scalar, or an array broadcasting to `[1, C, H, W]`); masking an input with a map is
  `baseline + map * (x - baseline)`, which for a per-channel affine normalisation is exactly
  "multiply the 0..255 image by the map".
- The perturbed images of one call go through `predict` as one batch, or in batches of
  `batch_size` when it is given.

`METRICS` names every metric with its direction, paper and default parameters (the text
`metrics.json` carries).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from xaigraph.explain.render import resample

__all__ = [
    "BLUR_SIGMA",
    "METRICS",
    "REFERENCE_SIZE",
    "STEPS",
    "TOLERANCE",
    "ExplainFn",
    "InsertionDeletion",
    "Metric",
    "Predict",
    "adcc",
    "auc",
    "blur",
    "box_distance",
    "box_mask",
    "insertion_deletion",
    "mass_in_box",
    "pixel_counts",
    "pointing_game",
    "pointing_tolerance",
    "predict_batched",
    "resize_map",
    "saliency_ranks",
]

Predict = Callable[[np.ndarray], np.ndarray]
"""`[B, C, H, W]` model inputs -> `[B, K]` class probabilities."""
ExplainFn = Callable[[np.ndarray, Sequence[int]], np.ndarray]
"""`[B, C, H, W]` model inputs and one class per image -> `[B, h, w]` maps, map b for class b."""

TOLERANCE = 15.0  # pointing game tolerance in pixels of a REFERENCE_SIZE image (the paper's 15 px)
REFERENCE_SIZE = 224
STEPS = 30  # insertion / deletion steps
BLUR_SIGMA = 5.0  # insertion's start image: Gaussian blur, sigma in input pixels
BLUR_RADIUS = 5  # ... truncated at 5 pixels (an 11x11 kernel), as in the RISE paper's code


@dataclass(frozen=True)
class Metric:
    """One metric as `metrics.json` describes it."""

    name: str
    direction: str  # "higher" or "lower" is better
    paper: str
    needs: str  # "boxes" (localisation) or "model" (faithfulness)
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self, **params: Any) -> dict[str, Any]:
        """The `metrics.json` entry, with `params` overriding the defaults."""
        return {"direction": self.direction, "paper": self.paper,
                "params": {**self.params, **{k: v for k, v in params.items()
                                             if k in self.params}}}


_ZHANG = "Zhang et al. 2016, Top-down Neural Attention by Excitation Backprop, arXiv 1608.00507"
_PETSIUK = ("Petsiuk et al. 2018, RISE: Randomized Input Sampling for Explanation of "
            "Black-box Models, BMVC, arXiv 1806.07421")
_POPPI = ("Poppi et al. 2021, Revisiting The Evaluation of Class Activation Mapping for "
          "Explainability, CVPR workshops, arXiv 2104.10252")

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("pointing_game", "higher", _ZHANG, "boxes",
           {"tolerance_px": TOLERANCE, "reference_size": REFERENCE_SIZE}),
    Metric("mass_in_box", "higher", _ZHANG + " (the share of saliency mass in the boxes)",
           "boxes", {}),
    Metric("insertion_auc", "higher", _PETSIUK, "model",
           {"steps": STEPS, "start": "gaussian_blur", "blur_sigma": BLUR_SIGMA,
            "blur_radius": BLUR_RADIUS}),
    Metric("deletion_auc", "lower", _PETSIUK, "model",
           {"steps": STEPS, "baseline": "black_image"}),
    Metric("average_drop", "lower", _POPPI, "model", {"baseline": "black_image"}),
    Metric("coherency", "higher", _POPPI, "model", {}),
    Metric("complexity", "lower", _POPPI, "model", {}),
    Metric("adcc", "higher", _POPPI, "model", {}),
)}


# -- maps --------------------------------------------------------------------------------------

def resize_map(saliency: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`[h, w]` map resized to `size` = (height, width), float32: bilinear, map cells centred
    on their own grid, edges clamped (`render.resample`'s sampling, the one the maps are
    drawn with)."""
    m = np.asarray(saliency, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {m.shape}")
    height, width = size
    if m.shape == (height, width):
        return m.copy()
    whole = _Whole((0.0, 0.0, float(width), float(height)))
    values, _ = resample(m, whole, width, height, (height, width))
    return values.astype(np.float32)


@dataclass(frozen=True)
class _Whole:
    """A placement of the whole model input onto itself."""

    image_box: tuple[float, float, float, float]

    @property
    def input_box(self) -> tuple[float, float, float, float]:
        return self.image_box


# -- localisation ------------------------------------------------------------------------------

def _boxes(boxes: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return b


def box_mask(height: int, width: int, boxes: np.ndarray | Sequence[Sequence[float]]
             ) -> np.ndarray:
    """`[height, width]` bool: the pixels whose centre `(col + 0.5, row + 0.5)` lies in
    at least one box `x1, y1, x2, y2` (x1 <= centre < x2, same for y)."""
    mask = np.zeros((height, width), dtype=bool)
    cx = np.arange(width) + 0.5
    cy = np.arange(height) + 0.5
    for x1, y1, x2, y2 in _boxes(boxes):
        cols = (cx >= x1) & (cx < x2)
        rows = (cy >= y1) & (cy < y2)
        mask |= rows[:, None] & cols[None, :]
    return mask


def box_distance(point: tuple[float, float], boxes: np.ndarray | Sequence[Sequence[float]]
                 ) -> np.ndarray:
    """Euclidean distance from `point` = (x, y) to each box `[M]` (0 inside a box)."""
    b = _boxes(boxes)
    x, y = point
    dx = np.maximum(np.maximum(b[:, 0] - x, x - b[:, 2]), 0.0)
    dy = np.maximum(np.maximum(b[:, 1] - y, y - b[:, 3]), 0.0)
    return np.asarray(np.hypot(dx, dy))


def pointing_tolerance(seen_width: float, seen_height: float, tolerance: float = TOLERANCE,
                       reference: int = REFERENCE_SIZE) -> float:
    """The tolerance in original pixels: `tolerance * min(seen_width, seen_height) /
    reference`, where `seen_*` is the size of the part of the original the model sees
    (`Preprocess.placement(...).image_box`). 15 px at 224 px is 30 px on a 448-px crop."""
    return float(tolerance) * min(seen_width, seen_height) / reference


def pointing_game(saliency: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]],
                  tolerance: float) -> float:
    """1.0 when the maximum of `saliency` `[H, W]` (the map at the original's resolution;
    NaN where the model sees nothing) lies within `tolerance` pixels of a box, else 0.0.

    The maximum is the first in row-major order when several pixels share it; its position
    is the pixel's centre. NaN when there are no boxes or the map has no finite value.
    """
    m = np.asarray(saliency, dtype=np.float64)
    b = _boxes(boxes)
    finite = np.isfinite(m)
    if len(b) == 0 or not finite.any():
        return float("nan")
    flat = np.where(finite, m, -np.inf).ravel()
    row, col = divmod(int(np.argmax(flat)), m.shape[1])
    distance = box_distance((col + 0.5, row + 0.5), b)
    return 1.0 if float(distance.min()) <= tolerance else 0.0


def mass_in_box(saliency: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]]) -> float:
    """The map's mass inside the union of the boxes over its total mass (`box_mask` decides
    which pixels are inside). Non-finite values (outside the part the model sees) count as
    0. NaN when there are no boxes or the mass is 0. Maps must be non-negative."""
    m = np.nan_to_num(np.asarray(saliency, dtype=np.float64), nan=0.0, posinf=0.0,
                      neginf=0.0)
    if len(_boxes(boxes)) == 0:
        return float("nan")
    total = float(m.sum())
    if total <= 0.0:
        return float("nan")
    inside = float(m[box_mask(m.shape[0], m.shape[1], boxes)].sum())
    return inside / total


# -- model-based -------------------------------------------------------------------------------

def predict_batched(predict: Predict, images: np.ndarray, batch_size: int | None
                    ) -> np.ndarray:
    """`predict` over `images` in one batch (`batch_size` None) or in batches of
    `batch_size`; `[N, K]` float64."""
    if batch_size is None or batch_size >= len(images):
        return np.asarray(predict(images), dtype=np.float64)
    parts = [np.asarray(predict(images[i:i + batch_size]), dtype=np.float64)
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts)


def _check_input(x: np.ndarray, maps: np.ndarray, targets: Sequence[int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    maps = np.asarray(maps, dtype=np.float32)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"x must be one model input [1, C, H, W], got shape {x.shape}")
    if maps.ndim != 3 or maps.shape[1:] != x.shape[2:]:
        raise ValueError(f"maps must be [T, H, W] with H, W = {x.shape[2:]}, got {maps.shape}")
    if len(targets) != len(maps):
        raise ValueError(f"{len(maps)} maps but {len(targets)} targets")
    return x, maps


def blur(x: np.ndarray, sigma: float = BLUR_SIGMA, radius: int = BLUR_RADIUS) -> np.ndarray:
    """Gaussian blur of each channel of `x` `[1, C, H, W]` over H and W: standard deviation
    `sigma` pixels, kernel truncated at `radius` pixels, edges reflected (scipy's 'reflect')."""
    x = np.asarray(x)
    if sigma <= 0:
        return x.copy()
    out = ndimage.gaussian_filter(x.astype(np.float32), sigma=(0, 0, sigma, sigma),
                                  truncate=radius / sigma, mode="reflect")
    return out.astype(x.dtype, copy=False)


def saliency_ranks(saliency: np.ndarray) -> np.ndarray:
    """`[H, W]` int: each pixel's rank, 0 for the most salient (ties in row-major order)."""
    flat = np.asarray(saliency).ravel()
    order = np.argsort(-flat, kind="stable")
    ranks = np.empty(flat.size, dtype=np.int64)
    ranks[order] = np.arange(flat.size)
    return ranks.reshape(np.shape(saliency))


def pixel_counts(pixels: int, steps: int) -> np.ndarray:
    """`[steps + 1]`: how many pixels are removed (inserted) after step k, `round(k * pixels /
    steps)` (halves up), from 0 to all."""
    k = np.arange(steps + 1, dtype=np.int64)
    return (2 * k * pixels + steps) // (2 * steps)


def auc(curve: np.ndarray, fractions: np.ndarray) -> float:
    """Trapezoid-rule area under `curve` over `fractions` (0..1)."""
    y = np.asarray(curve, dtype=np.float64)
    f = np.asarray(fractions, dtype=np.float64)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(f)) / 2.0)


@dataclass(frozen=True)
class InsertionDeletion:
    """AUCs `[T]` and curves `[T, steps + 1]` (class probability after each step) over
    `fractions` `[steps + 1]` (the fraction of pixels removed / inserted)."""

    insertion: np.ndarray
    deletion: np.ndarray
    insertion_curves: np.ndarray
    deletion_curves: np.ndarray
    fractions: np.ndarray


def insertion_deletion(
    x: np.ndarray,
    maps: np.ndarray,
    targets: Sequence[int],
    predict: Predict,
    *,
    steps: int = STEPS,
    baseline: np.ndarray | float = 0.0,
    blur_sigma: float = BLUR_SIGMA,
    batch_size: int | None = None,
    baseline_scores: np.ndarray | None = None,
) -> InsertionDeletion:
    """Insertion and deletion curves and AUCs of each map (Petsiuk et al. 2018).

    Pixels are ordered by saliency (`saliency_ranks`); after step k = 0..steps the first
    `pixel_counts(H * W, steps)[k]` pixels are removed (deletion: set to `baseline`, from
    `x`) or inserted (insertion: taken from `x`, into `blur(x, blur_sigma)`). The curve is the
    probability of `targets[t]` on each image; the AUC its trapezoid-rule area over the
    fraction of pixels.

    The images shared by all maps (`x`, the blurred start and, unless `baseline_scores` `[K]`
    gives its probabilities, the all-baseline image) and the `steps - 1` inner images of each
    curve go through `predict` together: `3 + 2 * (steps - 1) * T` images, one batch unless
    `batch_size` is given.
    """
    x, maps = _check_input(x, maps, targets)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    _, _, height, width = x.shape
    counts = pixel_counts(height * width, steps)
    base = np.broadcast_to(np.asarray(baseline, dtype=x.dtype), x.shape)
    start = blur(x, blur_sigma)
    shared = [x, start] if baseline_scores is not None else [x, start, np.array(base)]
    curves = _Curves(x, base, start, shared, [saliency_ranks(m) for m in maps], counts[1:-1])
    size = curves.total if batch_size is None else max(1, batch_size)
    probs = np.concatenate([
        np.asarray(predict(curves.batch(i, min(i + size, curves.total))), dtype=np.float64)
        for i in range(0, curves.total, size)])
    full, blurred = probs[0], probs[1]
    black = np.asarray(baseline_scores, dtype=np.float64) if baseline_scores is not None \
        else probs[2]
    n = steps - 1
    ins = np.empty((len(maps), steps + 1))
    dele = np.empty((len(maps), steps + 1))
    for t, c in enumerate(targets):
        row = len(shared) + 2 * n * t
        dele[t] = np.concatenate([[full[c]], probs[row:row + n, c], [black[c]]])
        ins[t] = np.concatenate([[blurred[c]], probs[row + n:row + 2 * n, c], [full[c]]])
    fractions = counts / float(height * width)
    return InsertionDeletion(
        insertion=np.array([auc(c, fractions) for c in ins]),
        deletion=np.array([auc(c, fractions) for c in dele]),
        insertion_curves=ins, deletion_curves=dele, fractions=fractions)


class _Curves:
    """The one sequence of images `insertion_deletion` predicts: the shared ones, then per
    map its deletion and its insertion curve's inner images, each built when its batch is
    run (not all at once)."""

    def __init__(self, x: np.ndarray, base: np.ndarray, start: np.ndarray,
                 shared: list[np.ndarray], ranks: list[np.ndarray], inner: np.ndarray) -> None:
        self.x, self.base, self.start, self.shared = x, base, start, shared
        self.ranks, self.inner, self.n = ranks, inner, len(inner)
        self.total = len(shared) + 2 * self.n * len(ranks)

    def image(self, j: int) -> np.ndarray:
        if j < len(self.shared):
            return self.shared[j][0]
        t, within = divmod(j - len(self.shared), 2 * self.n)
        chosen = (self.ranks[t] < self.inner[within % self.n])[None]  # all channels
        if within < self.n:
            return np.where(chosen, self.base[0], self.x[0])  # deletion
        return np.where(chosen, self.x[0], self.start[0])  # insertion

    def batch(self, start: int, stop: int) -> np.ndarray:
        return np.stack([self.image(j) for j in range(start, stop)]).astype(self.x.dtype,
                                                                            copy=False)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denom == 0.0:
        return float("nan")
    return float((a * b).sum() / denom)


def adcc(
    x: np.ndarray,
    maps: np.ndarray,
    targets: Sequence[int],
    predict: Predict,
    explain_fn: ExplainFn | None,
    *,
    baseline: np.ndarray | float = 0.0,
    batch_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Average drop, coherency, complexity and ADCC of each map (Poppi et al. 2021), `[T]`
    each.

    - average drop: `max(0, Y - O) / Y`, `Y` the probability of `targets[t]` on `x`, `O` on
      `x` masked by the map (`baseline + map * (x - baseline)`).
    - coherency: `(1 + r) / 2`, `r` the Pearson correlation of the map with the map of the
      same class on the masked image (`explain_fn`, resized to H, W with `resize_map`);
      NaN when either map is constant, or without `explain_fn`.
    - complexity: the map's L1 norm over its pixel count, `sum |map| / (H * W)`.
    - adcc: `3 / (1 / coherency + 1 / (1 - complexity) + 1 / (1 - average drop))`, 0 when
      a term is 0 (the harmonic mean's limit), else NaN when coherency is.

    One `predict` call for `x` and the T masked images, one `explain_fn` call for the T masked
    images.
    """
    x, maps = _check_input(x, maps, targets)
    base = np.asarray(baseline, dtype=x.dtype)
    masked = (base + maps[:, None] * (x - base)).astype(x.dtype, copy=False)  # [T, C, H, W]
    probs = predict_batched(predict, np.concatenate([x, masked]), batch_size)
    index = np.asarray(targets, dtype=np.int64)
    full = probs[0, index]
    kept = probs[1 + np.arange(len(index)), index]
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = np.where(full > 0, np.maximum(full - kept, 0.0) / full, 0.0)
    complexity = np.abs(maps.astype(np.float64)).mean(axis=(1, 2))
    coherency = np.full(len(index), np.nan)
    if explain_fn is not None and len(index):
        again = np.asarray(explain_fn(masked, [int(c) for c in index]), dtype=np.float32)
        if again.ndim != 3 or len(again) != len(index):
            raise ValueError(f"explain_fn returned shape {again.shape}, expected [T, h, w]")
        for t in range(len(index)):
            r = _pearson(maps[t], resize_map(again[t], maps.shape[1:]))
            coherency[t] = (1.0 + r) / 2.0
    terms = np.stack([coherency, 1.0 - complexity, 1.0 - drop])
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 3.0 / (1.0 / terms).sum(axis=0)
    score = np.where((terms <= 0).any(axis=0), 0.0,
                     np.where(np.isnan(coherency), np.nan, score))
    return {"average_drop": drop, "coherency": coherency, "complexity": complexity,
            "adcc": score}

"""D-RISE: RISE for object detectors (Petsiuk et al., CVPR 2021, arXiv 2006.03204).

Each detection of the unmasked image is a target vector `d_t = (box, class vector, objectness
1)`; the class vector is the detector's class-probability vector when the reader gives one,
else one-hot of its label. For each random mask `M_i` (the RISE masks of `masks.py`) the
masked image is run through the detector, and the mask's weight for target `t` is

    w_ti = max_j IoU(box_t, box_j) * cos(P_t, P_j) * O_j

over the masked image's detections `j` (`detections.similarity`; `O_j` is the detection's
score, 0 when nothing is found). The map of target `t` is the weighted sum `sum_i w_ti M_i`:
one map per detected box.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from xaigraph.errors import BadInputError
from xaigraph.explain.detections import Detections, similarity
from xaigraph.explain.rise import HostRunner, MaskPlan, check_input, mask_sum

__all__ = ["DetPredict", "det_scores", "det_weights", "drise", "select_targets"]

DetPredict = Callable[[np.ndarray], list[Detections]]  # [B, C, H, W] -> one Detections each


def select_targets(found: Detections, *, score_threshold: float,
                   classes: Sequence[int] | None = None) -> Detections:
    """The detections of the unmasked image that get a map: score >= `score_threshold`, and
    of one of `classes` when given; best score first."""
    keep = found.scores >= score_threshold
    if classes is not None:
        keep &= np.isin(found.labels, np.asarray(list(classes), np.int64))
    chosen = found.keep(keep)
    return chosen.keep(np.argsort(-chosen.scores, kind="stable"))


def det_scores(targets: Detections) -> Callable[[list[Detections]], np.ndarray]:
    """The `[B, T]` D-RISE weights of the detections of a batch of masked inputs."""
    def weights(found: list[Detections]) -> np.ndarray:
        return np.stack([similarity(targets, f) for f in found])
    return weights


def det_weights(predict: DetPredict, targets: Detections) -> Callable[[np.ndarray], np.ndarray]:
    """The `[B, T]` D-RISE weights of a batch of masked inputs."""
    score = det_scores(targets)

    def weights(inputs: np.ndarray) -> np.ndarray:
        return score(_checked(predict, inputs))
    return weights


def _checked(predict: DetPredict, inputs: np.ndarray) -> list[Detections]:
    found = predict(inputs)
    if len(found) != len(inputs):
        raise BadInputError(f"the detector gave {len(found)} results for {len(inputs)} inputs")
    return found


def drise(x: np.ndarray, predict: DetPredict, *, targets: Detections, num_masks: int,
          cells: int, prob: float, seed: int, batch_size: int = 0,
          baseline: np.ndarray | float = 0.0,
          progress: Callable[[int], None] | None = None) -> np.ndarray:
    """D-RISE maps `[T, H, W]` float32 of the target detections (`select_targets` of
    `predict(x)`) for one input `x` `[1, C, H, W]`; `[0, H, W]` when there is no target."""
    check_input(x)
    if len(targets) == 0:
        return np.zeros((0, x.shape[2], x.shape[3]), np.float32)
    ones = Detections(targets.boxes, targets.labels, np.ones(len(targets), np.float32),
                      targets.probs)
    run = HostRunner(x, lambda inputs: _checked(predict, inputs), baseline=baseline,
                     batch_size=batch_size)
    total = mask_sum(x, det_scores(ones), run, MaskPlan(seed, num_masks, cells, prob),
                     progress)
    return total.astype(np.float32)

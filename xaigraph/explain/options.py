"""The black-box methods' options and presets (`BlackBoxOptions`, `PRESETS`): plain data,
checked when made (`BadInputError`, one line) and against the model input's size (`check`).

Presets for users who do not want to choose numbers; explicit options win:

| preset | masks (RISE, D-RISE) | cells | p | AISE widths (of the short side) | AISE evals |
|---|---|---|---|---|---|
| speed | 1000 | 7 | 0.5 | 0.15, 0.3 | 16 |
| balance | 2000 | 7 | 0.5 | 0.1, 0.2, 0.35 | 24 |
| quality | 5000 | 8 | 0.5 | 0.08, 0.15, 0.25, 0.4 | 40 |
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from xaigraph.errors import BadInputError
from xaigraph.explain import methods
from xaigraph.explain.detections import READERS
from xaigraph.explain.masks import check_grid

__all__ = ["PRESETS", "BlackBoxOptions", "Preset"]


@dataclass(frozen=True)
class Preset:
    num_masks: int
    cells: int
    prob: float
    widths: tuple[float, ...]
    evals: int


PRESETS = {
    "speed": Preset(1000, 7, 0.5, (0.15, 0.3), 16),
    "balance": Preset(2000, 7, 0.5, (0.1, 0.2, 0.35), 24),
    "quality": Preset(5000, 8, 0.5, (0.08, 0.15, 0.25, 0.4), 40),
}


@dataclass(frozen=True)
class BlackBoxOptions:
    """The black-box methods' options (docs/runtime.md); None takes the preset's value.
    Invalid values raise `BadInputError` (one line)."""

    num_masks: int | None = None
    cells: int | None = None
    prob: float | None = None
    seed: int = 0
    preset: str = "balance"
    batch_size: int = 0
    detector_output: str | None = None
    postprocess: str | None = None
    score_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise BadInputError(f"unknown --preset '{self.preset}'; use one of "
                                f"{', '.join(PRESETS)}")
        if self.num_masks is not None and self.num_masks < 1:
            raise BadInputError(f"--num-masks must be a positive integer, not {self.num_masks}")
        if self.cells is not None and self.cells < 1:
            raise BadInputError(f"--mask-cells must be a positive integer, not {self.cells}")
        if self.prob is not None and not 0.0 < self.prob <= 1.0:
            raise BadInputError(f"--mask-prob must be in (0, 1], not {self.prob}")
        if not 0 <= self.seed < 2**64:
            raise BadInputError(f"--seed must be in 0 .. 2**64 - 1, not {self.seed}")
        if self.batch_size < 0:
            raise BadInputError(f"the batch size must be >= 0, not {self.batch_size}")
        if self.detector_output is not None and self.detector_output not in READERS:
            raise BadInputError(f"unknown --detector-output '{self.detector_output}'; "
                                f"readers: {', '.join(READERS)}")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise BadInputError(f"the score threshold must be in [0, 1], not "
                                f"{self.score_threshold}")

    @classmethod
    def from_cli(cls, kwargs: dict[str, Any]) -> BlackBoxOptions:
        """The options `cli_options.blackbox_options` added, popped from a command's
        `kwargs`."""
        values = {name: kwargs.pop(key) for key, name in _CLI.items() if key in kwargs}
        return cls(**{k: v for k, v in values.items() if v is not None})

    @property
    def resolved(self) -> BlackBoxOptions:
        """These options with the preset's numbers filled in."""
        p = PRESETS[self.preset]
        return replace(self, num_masks=self.num_masks or p.num_masks,
                       cells=self.cells or p.cells,
                       prob=self.prob if self.prob is not None else p.prob)

    def check(self, masks: bool, size: tuple[int, int]) -> None:
        """What can only be checked against the model input's `size` (H, W), for a method
        that draws RISE's masks (`masks`): a `BadInputError` before any image runs."""
        if masks:
            r = self.resolved
            assert r.cells is not None and r.prob is not None
            check_grid(r.cells, r.prob, size)

    @property
    def kernel_widths(self) -> tuple[float, ...]:
        """AISE's kernel widths (fractions of the input's short side): the preset's."""
        return PRESETS[self.preset].widths

    @property
    def evaluations(self) -> int:
        """AISE's evaluations per kernel width: the preset's."""
        return PRESETS[self.preset].evals

    def settings(self, method: str) -> dict[str, Any]:
        """The effective numbers of black-box `method`, for run.json."""
        out: dict[str, Any] = {"preset": self.preset, "seed": self.seed}
        sampler = methods.black_box(method).sampler
        assert sampler is not None
        out.update(sampler.settings(self))
        if self.detector_output or self.postprocess:
            out.update(detector_output=self.detector_output, postprocess=self.postprocess)
        return out


# click parameter name -> BlackBoxOptions field
_CLI = {"num_masks": "num_masks", "mask_cells": "cells", "mask_prob": "prob", "seed": "seed",
        "preset": "preset", "detector_output": "detector_output",
        "postprocess": "postprocess", "score_threshold": "score_threshold"}
assert set(_CLI.values()) <= {f.name for f in fields(BlackBoxOptions)}

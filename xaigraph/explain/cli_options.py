"""Click options the runtime layer's commands share (`explain` and `eval`).

`blackbox_options` adds the black-box methods' options; `BlackBoxOptions.from_cli` reads
them back. A CLI module: the black-box samplers themselves never import click.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from xaigraph.cli_common import FiniteRange
from xaigraph.explain.blackbox import PRESETS
from xaigraph.explain.detections import READERS

__all__ = ["blackbox_options"]

F = TypeVar("F", bound=Callable[..., Any])


def blackbox_options(command: F) -> F:
    """Click decorator: the black-box methods' options (read back with
    `BlackBoxOptions.from_cli(kwargs)`)."""
    decorators = [
        click.option("--num-masks", type=click.IntRange(min=1), default=None,
                     help="RISE / D-RISE: number of random masks (default: the preset's)."),
        click.option("--mask-cells", type=click.IntRange(min=1), default=None,
                     help="RISE / D-RISE: grid size s, masks of s x s cells (preset's)."),
        click.option("--mask-prob", type=FiniteRange(0, 1, min_open=True), default=None,
                     help="RISE / D-RISE: probability that a cell is kept (preset's)."),
        click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True,
                     help="Black-box methods: same seed, same maps, any batch size."),
        click.option("--preset", type=click.Choice(list(PRESETS)), default="balance",
                     show_default=True,
                     help="Black-box budgets: speed, balance or quality."),
        click.option("--detector-output", type=click.Choice(list(READERS)), default=None,
                     help="Detectors: how to read the outputs (default: found from them)."),
        click.option("--postprocess", metavar="MODULE:FUNCTION", default=None,
                     help="Detectors: your function from the outputs of one image to "
                          "(boxes, labels, scores)."),
        click.option("--score-threshold", type=FiniteRange(0, 1), default=None,
                     help="Detectors: boxes scoring at least this get a map (default 0.5)."),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command

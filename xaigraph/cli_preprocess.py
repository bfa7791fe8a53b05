"""The preprocessing flags shared by `xaigraph insert` and `xaigraph explain`.

`@preprocess_options` adds `--size H,W`, `--resize`, `--crop-fraction`, `--interpolation`,
`--mean R,G,B`, `--std R,G,B` (alias `--scale-values`, the Model API's name), `--scale F`
(a pixel multiplier: `1/255` or `0.00392`), `--bgr/--rgb`, `--layout`, `--pad-value` and
`--labels FILE`, and hands the command one parameter `preprocess_flags`: a dict of what was
given (None for a flag not given). `from_flags_kwargs` turns it into the keyword arguments of
`xaigraph.model_info.from_flags`; `flag_labels` reads `--labels FILE`. Values are in the
model's channel order, as `Preprocess` and the Model API keys have them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from xaigraph.cli_common import FiniteRange
from xaigraph.errors import BadInputError
from xaigraph.labels import read_labels_file
from xaigraph.preprocess import INTERPOLATIONS, LAYOUTS, MAX_SIDE, RESIZE_MODES

__all__ = ["FLAG_NAMES", "any_given", "flag_labels", "from_flags_kwargs", "preprocess_options"]

F = TypeVar("F", bound=Callable[..., Any])

# click parameter name -> the flag as typed (for messages)
FLAG_NAMES = {
    "pre_size": "--size", "pre_resize": "--resize", "pre_crop_fraction": "--crop-fraction",
    "pre_interpolation": "--interpolation", "pre_mean": "--mean", "pre_std": "--std",
    "pre_scale": "--scale", "pre_bgr": "--bgr/--rgb", "pre_layout": "--layout",
    "pre_pad_value": "--pad-value", "pre_labels": "--labels",
}


def _numbers(text: str, flag: str, counts: tuple[int, ...]) -> list[float]:
    try:
        values = [_number(v) for v in text.replace(" ", "").split(",")]
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"expected numbers separated by commas, got '{text}'",
                                 param_hint=flag) from None
    if not all(math.isfinite(v) for v in values):
        raise click.BadParameter(f"expected finite numbers, got '{text}'", param_hint=flag)
    if len(values) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise click.BadParameter(f"expected {want} numbers, got '{text}'", param_hint=flag)
    return values


def _number(text: str) -> float:
    """A float, or a fraction `a/b` (`1/255`)."""
    if "/" in text:
        top, bottom = text.split("/", 1)
        return float(top) / float(bottom)
    return float(text)


def _size(ctx: click.Context, param: click.Parameter, value: str | None
          ) -> tuple[int, int] | None:
    if value is None:
        return None
    values = _numbers(value, "--size", (1, 2))
    if any(v < 1 or v != int(v) for v in values):
        raise click.BadParameter(f"expected positive integers H,W, got '{value}'",
                                 param_hint="--size")
    if max(values) > MAX_SIDE:
        raise click.BadParameter(f"height and width must be at most {MAX_SIDE}, got "
                                 f"'{value}'", param_hint="--size")
    h, w = (values * 2)[:2]
    return int(h), int(w)


def _three(flag: str, nonzero: bool) -> Callable[..., tuple[float, float, float] | None]:
    def convert(ctx: click.Context, param: click.Parameter, value: str | None
                ) -> tuple[float, float, float] | None:
        if value is None:
            return None
        values = _numbers(value, flag, (1, 3))
        if nonzero and 0.0 in values:
            raise click.BadParameter(f"a value of 0 divides by 0: '{value}'", param_hint=flag)
        a, b, c = (values * 3)[:3]
        return a, b, c
    return convert


def _scale(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    (scale,) = _numbers(value, "--scale", (1,))
    if scale <= 0:
        raise click.BadParameter(f"expected a positive number, got '{value}'",
                                 param_hint="--scale")
    return scale


def preprocess_options(command: F) -> F:
    """Add the preprocessing flags to a click command; it receives them as one dict,
    `preprocess_flags` (keys of `FLAG_NAMES`)."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name, None) for name in FLAG_NAMES}
        return command(*args, preprocess_flags=flags, **kwargs)

    options = [
        click.option("--size", "pre_size", metavar="H,W", callback=_size,
                     help="Model input height,width (one number: square), each at most "
                          f"{MAX_SIDE}; for a model whose input size is dynamic (default "
                          "224)."),
        click.option("--resize", "pre_resize", type=click.Choice(RESIZE_MODES),
                     help="How the photo fits the input: stretch; center_crop (with "
                          "--crop-fraction); crop (Model API: largest centred crop); letterbox "
                          "(keep aspect, pad, centred); fit_to_window (keep aspect, pad, "
                          "top-left)."),
        click.option("--crop-fraction", "pre_crop_fraction", metavar="F",
                     type=FiniteRange(min=0.0, max=1.0, min_open=True),
                     help="center_crop: the fraction of the largest centred crop kept "
                          "(e.g. 0.875 = 224/256)."),
        click.option("--interpolation", "pre_interpolation", type=click.Choice(INTERPOLATIONS),
                     help="Resampling filter."),
        click.option("--mean", "pre_mean", metavar="R,G,B", callback=_three("--mean", False),
                     help="Subtracted after --scale (one number: all channels)."),
        click.option("--std", "--scale-values", "pre_std", metavar="R,G,B",
                     callback=_three("--std", True),
                     help="Divides after the mean (the Model API's scale_values)."),
        click.option("--scale", "pre_scale", metavar="F", callback=_scale,
                     help="Pixel multiplier applied first, e.g. 1/255."),
        click.option("--bgr/--rgb", "pre_bgr", default=None,
                     help="Channel order the model wants."),
        click.option("--layout", "pre_layout", type=click.Choice(LAYOUTS),
                     help="Input layout (default: from the input's shape)."),
        click.option("--pad-value", "pre_pad_value", metavar="V", type=click.IntRange(0, 255),
                     help="Pixel value of the padding of letterbox / fit_to_window."),
        click.option("--labels", "pre_labels", metavar="FILE", type=click.Path(path_type=Path),
                     help="Class names, one a line, in index order."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def any_given(flags: dict[str, Any]) -> list[str]:
    """The flags given, as typed (`--mean`, ...)."""
    return [FLAG_NAMES[k] for k, v in flags.items() if v is not None]


def from_flags_kwargs(flags: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `model_info.from_flags` for `preprocess_flags`."""
    bgr = flags.get("pre_bgr")
    return {
        "size": flags.get("pre_size"),
        "resize": flags.get("pre_resize"),
        "crop_fraction": flags.get("pre_crop_fraction"),
        "interpolation": flags.get("pre_interpolation"),
        "mean": flags.get("pre_mean"),
        "std": flags.get("pre_std"),
        "scale": flags.get("pre_scale"),
        "channels": None if bgr is None else ("BGR" if bgr else "RGB"),
        "layout": flags.get("pre_layout"),
        "pad_value": flags.get("pre_pad_value"),
    }


def flag_labels(flags: dict[str, Any], classes: int | None) -> list[str] | None:
    """The names in `--labels FILE`, or None without it. `classes`, when known, must be
    their number; else `BadInputError` (one line)."""
    path = flags.get("pre_labels")
    if path is None:
        return None
    labels = read_labels_file(path)
    if classes is not None and len(labels) != classes:
        raise BadInputError(f"--labels {path} names {len(labels)} classes but the model has "
                            f"{classes}")
    return labels

"""The report's colour scales (docs/runtime.md, "Colour scales"): each map shown in every
`scales.MODES` mode, switched in the browser without re-running explain.

The map files are the data (each map on its own min-max); a view in another mode is the map
file's colour indices put through the mode's table (`scales.index_table`), the rule explain
draws its overlays with, so a report view and an overlay of the same mode have the same
colours. The views are PNGs made when the report is built (`scales/`): a page opened from
the file system may not read an image's pixels in a script. `run` uses the extremes of the
run's recorded raw ranges (`run_range`); `image` and `run` need every map's raw range: a
record without one (a model whose maps came scaled to u8, a run older than the ranges) has
no such view, and the report says so and shows the map's own scale.

    ranges = run_range(records)                       # once per method
    views = Views(stage, colormap, ranges)            # per method
    target["v"] = views.of(map_path, record, t, rel)  # per target: mode -> [url, low, high]
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from xaigraph.explain import scales
from xaigraph.explain.render import encode_png, lookup

__all__ = ["Views", "gradient", "record_ranges", "run_range", "scale_data"]


def _range(target: dict[str, Any]) -> tuple[float, float] | None:
    r = target.get("range")
    if (isinstance(r, list) and len(r) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in r)):
        return float(r[0]), float(r[1])
    return None


def record_ranges(record: dict[str, Any]) -> list[tuple[float, float] | None]:
    """The raw range of each target of a results.jsonl line (None where not recorded)."""
    return [_range(t) for t in record.get("targets") or [] if isinstance(t, dict)]


def run_range(records: list[dict[str, Any]]) -> tuple[float, float] | None:
    """The extremes of every map's raw range in a run's ok lines; None when one is
    missing (or there is no map)."""
    spans = [r for rec in records if rec.get("status") == "ok" for r in record_ranges(rec)]
    return scales.extremes(spans)


def _score(target: dict[str, Any]) -> float:
    s = target.get("score")
    return float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else math.nan


def gradient(colormap: str, stops: int = 17) -> str:
    """A CSS linear-gradient of the colour map (`stops` colours evenly spaced)."""
    table = lookup(colormap)
    parts = []
    for k in range(stops):
        r, g, b = (int(v) for v in table[round(255 * k / (stops - 1))])
        parts.append(f"rgb({r},{g},{b}) {100 * k / (stops - 1):.4g}%")
    return f"linear-gradient(to right, {', '.join(parts)})"


def _read_indices(path: Path, colormap: str) -> tuple[np.ndarray, np.ndarray | None,
                                                      np.ndarray | None]:
    """(indices, alpha or None, palette or None) of a map file: a palette PNG's own indices;
    an RGBA PNG's colours looked up in the colour table (exact: its colours are distinct)."""
    with Image.open(path) as im:
        if im.mode == "P":
            palette = np.asarray(im.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
            return np.asarray(im), None, palette
        rgba = np.asarray(im.convert("RGBA"))
    table = lookup(colormap).astype(np.int64)
    codes = (table[:, 0] << 16) | (table[:, 1] << 8) | table[:, 2]
    order = np.argsort(codes)
    pixels = rgba[..., :3].astype(np.int64)
    found = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    pos = np.clip(np.searchsorted(codes[order], found), 0, 255)
    index = order[pos].astype(np.uint8)
    return index, rgba[..., 3], None


class Views:
    """One method's views: written under `stage/scales/<method index>/`."""

    def __init__(self, stage: Path, m_index: int, colormap: str,
                 run: tuple[float, float] | None) -> None:
        self.folder = stage / "scales" / str(m_index)
        self.rel = f"scales/{m_index}"
        self.colormap = colormap
        self.run = run

    def of(self, path: Path | None, record: dict[str, Any], t_index: int, map_url: str | None,
           name: str) -> dict[str, Any]:
        """The views of target `t_index` of `record` (map file `path`, shown at `map_url`):
        mode -> `[url, low, high]` (the ends of its colour bar; `url` None: no such view),
        and the mode's marker `mark` (`score`: where the score lies on the bar)."""
        target = record["targets"][t_index]
        spans = record_ranges(record)
        own = spans[t_index] if t_index < len(spans) else None
        score = _score(target)
        commons = {"image": scales.extremes(spans), "run": self.run}
        out: dict[str, Any] = {}
        index = alpha = palette = None
        for mode in scales.MODES:
            common = commons.get(mode)
            if mode in scales.NEEDS_RANGE and (own is None or common is None):
                out[mode] = [None, None, None]
                continue
            scale = scales.scale_of(mode, score, own, common)
            if mode == "map" or path is None or map_url is None:
                out[mode] = [map_url, scale.low, scale.high]
                continue
            if index is None:
                index, alpha, palette = _read_indices(path, self.colormap)
            out[mode] = [self._write(scale.apply(index), alpha, palette, f"{name}_{mode}"),
                         scale.low, scale.high]
        a, _ = scales.affine("score", score)
        out["mark"] = a
        return out

    def _write(self, index: np.ndarray, alpha: np.ndarray | None, palette: np.ndarray | None,
               name: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        if alpha is None:
            data = encode_png(index, palette=palette if palette is not None
                              else lookup(self.colormap))
        else:
            rgba = np.empty((*index.shape, 4), dtype=np.uint8)
            rgba[..., :3] = lookup(self.colormap)[index]
            rgba[..., 3] = alpha
            rgba[alpha == 0, :3] = 0
            data = encode_png(rgba)
        (self.folder / f"{name}.png").write_bytes(data)
        return f"{self.rel}/{name}.png"


def scale_data(methods: list[Any], colormaps: list[str]) -> dict[str, Any]:
    """data.js's `scale` block: the mode shown first (the first run's `map_scale`, `map` for
    a run older than the option), each method's colour bar gradient."""
    first = methods[0].card.get("options") if methods else None
    mode = first.get("map_scale") if isinstance(first, dict) else None
    return {"mode": mode if mode in scales.MODES else "map",
            "gradient": [gradient(c) for c in colormaps],
            "modes": list(scales.MODES)}

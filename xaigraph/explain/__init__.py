"""The runtime layer: from images to saliency maps, overlays, metrics and a report.

It imports the compiler (`xaigraph`), which never imports it. The contracts between its
modules are in docs/runtime.md. The Python API, also `xaigraph.explain`:

    import xaigraph
    for ex in xaigraph.explain("model.onnx", ["cat.jpg", "dog.jpg"], targets="topk:3"):
        print(ex.key, ex.predictions[0])
        ex.overlay().save(f"{ex.key}.png")      # the top target's map over the photo
        ex.save("out")                          # maps/, overlays/ as `xaigraph explain` writes
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from xaigraph.explain.io.decode import Decoded
    from xaigraph.explain.plan import ExplainSpec
    from xaigraph.explain.targets import Boxes, Target
    from xaigraph.preprocess import Preprocess

__all__ = ["Explanation", "explain"]


@dataclass(frozen=True)
class _Given:
    """An image given to the API directly (a PIL image), as an item."""

    index: int
    path: Path
    key: str
    image: Any = None
    boxes: tuple[Any, ...] = ()
    labels: tuple[str, ...] = ()
    source: str = "api"


@dataclass
class Explanation:
    """One image's explanation.

    `maps` maps each target class to its map `[h, w]` float32 in 0..1 at the model's map
    resolution (the model input's area; `overlay` and `colour` bring it onto the photo);
    `raw` the maps as the model gave them (with `raw=True`). `predictions`: the top classes
    with `class`, `label`, `score` (probability). `error` is set (and the rest empty) for an
    image that could not be read. A black-box detector: `detections`, one dict per box with
    a map (`class`, `label`, `score`, `box` x1 y1 x2 y2 in the photo's pixels, `map`), best
    first; `maps` then holds each class's first (best) box's map.
    """

    index: int
    path: Path
    key: str
    width: int = 0
    height: int = 0
    predictions: list[dict[str, Any]] = field(default_factory=list)
    scores: np.ndarray | None = None
    maps: dict[int, np.ndarray] = field(default_factory=dict)
    raw: dict[int, np.ndarray] = field(default_factory=dict)
    error: str | None = None
    detections: list[dict[str, Any]] = field(default_factory=list)
    _decoded: Decoded | None = None
    _row: dict[str, Any] | None = None
    _spec: ExplainSpec | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def targets(self) -> list[int]:
        return list(self.maps)

    @property
    def image(self) -> Image.Image:
        """The original photo (RGB)."""
        self._check()
        assert self._decoded is not None
        return self._decoded.image

    def label(self, cls: int) -> str:
        self._check()
        assert self._spec is not None
        return self._spec.label(cls)

    def _check(self) -> None:
        if self.error is not None:
            raise ValueError(f"{self.path}: no explanation ({self.error})")

    def _class(self, cls: int | str | None) -> int:
        self._check()
        if cls is None:
            if not self.maps:
                raise ValueError(f"{self.path}: no target has a map")
            return next(iter(self.maps))
        if isinstance(cls, str):
            assert self._spec is not None and self._spec.labels is not None
            from xaigraph.labels import class_index

            cls = class_index(cls, list(self._spec.labels), "overlay")
        if cls not in self.maps:
            raise ValueError(f"class {cls} has no map here; the targets: {self.targets}")
        return cls

    def colour(self, cls: int | str | None = None, colormap: str | None = None
               ) -> Image.Image:
        """The map of `cls` (default: the first target) coloured at the photo's size, RGBA
        (transparent where the model does not see)."""
        from PIL import Image

        from xaigraph.explain import render

        c = self._class(cls)
        assert self._decoded is not None and self._spec is not None
        rgba = render.colour_map(self.maps[c], self._decoded.placement, self.width,
                                 self.height, self._spec.preprocess.size,
                                 colormap or self._spec.colormap)
        return Image.fromarray(rgba)

    def overlay(self, cls: int | str | None = None, opacity: float | None = None,
                colormap: str | None = None, map_scale: str | None = None,
                legend: bool | None = None) -> Image.Image:
        """The map of `cls` (default: the first target) blended over the photo (RGB), in
        colour scale `map_scale` ("score", "map", "image"; default: the run's), with its
        colour scale in a margin below when `legend` (default: the run's), as `save`
        writes it."""
        from dataclasses import replace

        from xaigraph.explain import render, scales
        from xaigraph.explain.io.write import overlay_picture

        c = self._class(cls)
        assert self._decoded is not None and self._spec is not None and self._row is not None
        spec = replace(self._spec, colormap=colormap or self._spec.colormap,
                       opacity=self._spec.opacity if opacity is None else opacity,
                       legend=self._spec.legend if legend is None else legend)
        mode = map_scale or spec.map_scale
        coloured = render.colour(self.maps[c], self._decoded.placement, self.width,
                                 self.height, spec.preprocess.size, spec.colormap)
        classes = [int(k) for k in self._row["targets"] if k >= 0]
        t = classes.index(c)
        ranges = [_range(self._row, k) for k in range(len(classes))]
        score = (float(self._row["boxes"][t][4]) if "boxes" in self._row
                 else float(self._row["scores"][c]))
        scale = scales.scale_of(mode, score, ranges[t], scales.extremes(ranges))
        return overlay_picture(self._decoded, coloured, spec, c, score, None,
                               not score >= spec.low_confidence, scale)

    def save(self, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
        """Write this image's maps/ and overlays/ (and raw/) files under `out_dir`, named
        as `xaigraph explain` names them; their record (a results.jsonl line)."""
        from xaigraph.explain.io.write import write

        self._check()
        assert self._decoded is not None and self._row is not None and self._spec is not None
        return write(self._decoded, self._row, self._spec, out_dir).to_json()

    def plot(self, **figure: Any) -> Any:
        """A matplotlib figure of the targets' overlays, each titled with its class and
        score (needs matplotlib). `figure`: `plt.figure`'s keywords (`figsize`, `dpi`)."""
        from xaigraph.explain import notebook

        return notebook.plot(self, **figure)

    def _repr_png_(self) -> bytes:
        """Jupyter's picture of it: the overlays of its targets side by side, captioned."""
        from xaigraph.explain import notebook

        return notebook.png_of(self)

    def _repr_html_(self) -> str:
        from xaigraph.explain import notebook

        return notebook.html_of(self)


def _items(images: Any) -> Iterable[Any]:
    """Items from paths (files, folders, list files: `inputs.collect`), PIL images, or
    items already made."""
    from PIL import Image

    if isinstance(images, str | os.PathLike | Image.Image):
        images = [images]
    paths: list[str] = []
    out: list[Any] = []
    for i, thing in enumerate(images):
        if isinstance(thing, Image.Image):
            out.append(_Given(i, Path(f"<image {i}>"), f"image_{i}", thing))
        elif isinstance(thing, str | os.PathLike):
            paths.append(os.fspath(thing))
        else:
            out.append(thing)
    if paths and out:
        raise TypeError("give paths, or images, not both")
    if paths:
        from xaigraph.explain.inputs import collect

        return collect(paths).items
    return out


def explain(
    model: str | os.PathLike[str] | ExplainSpec | Any,
    images: Any,
    *,
    method: str = "auto",
    targets: str | Target | Boxes = "predicted",
    runtime: str | None = None,
    preprocess: Preprocess | None = None,
    labels: str | os.PathLike[str] | None = None,
    batch_size: int = 8,
    raw: bool = False,
    colormap: str = "jet",
    opacity: float = 0.5,
    class_output: str | None = None,
    target_layer: str | None = None,
    blackbox: Any = None,
    precision: str = "f32",
    map_scale: str = "score",
    legend: bool = True,
    low_confidence: float = 0.1,
    example_input: Any = None,
) -> Iterator[Explanation]:
    """Explain `images` with `model`: one `Explanation` per image, in order, as each is done.

    `model`: an augmented model (its maps are used as they are) or a plain one (augmented in
    memory with `method`; "auto" picks the white-box method that applies, black-box RISE when
    none does), `.xml` or `.onnx`. `images`: a path (file, folder, list file, COCO / VOC),
    a list of paths, a PIL image or a list of them. `targets`: "predicted", "topk:K", "all",
    or classes "3,17" / "tiger cat,tabby", or a target object of `xaigraph.explain.targets`
    (`TopK(3)`, `Classes((3, 17))`, ...). `runtime`: "openvino" or "onnxruntime".
    `preprocess`: overrides what the model records. `precision`: OpenVINO's inference
    precision ("f32", "bf16", "f16", "auto": the device's default). `map_scale` ("score",
    "map", "image"), `legend`, `low_confidence`: the overlays' colour scale (docs/runtime.md).
    A PyTorch model (a module, a `.pt` / `.pth` / `.pt2` file) is traced on `example_input`
    (`(1, 3, 224, 224)`; needs torch) and given `preprocess` (`Preprocess.imagenet()` for
    torchvision's). The other options are `xaigraph explain`'s. Images are streamed.
    """
    from xaigraph import torch_models
    from xaigraph.explain.explainer import Explainer
    from xaigraph.explain.plan import ExplainSpec, prepare

    def made(path: Any) -> Iterator[Explanation]:
        spec = path if isinstance(path, ExplainSpec) else prepare(
            path, method=method, targets=targets, runtime=runtime, preprocess=preprocess,
            labels=labels, batch_size=batch_size, raw=raw, colormap=colormap,
            opacity=opacity, class_output=class_output, target_layer=target_layer,
            blackbox=blackbox, precision=precision, map_scale=map_scale, legend=legend,
            low_confidence=low_confidence)
        items = _items(images)
        return _stream(spec, Explainer(spec), items)  # errors above come at the call

    if torch_models.is_torch(model) or torch_models.is_torch_file(model):
        return _converted(model, example_input, made)
    if example_input is not None:
        from xaigraph.errors import BadInputError

        raise BadInputError("example_input is for a PyTorch model (a module, or a .pt, .pth "
                            "or .pt2 file)")
    return made(model)


def _converted(model: Any, example_input: Any,
               made: Callable[[Path], Iterator[Explanation]]) -> Iterator[Explanation]:
    """`explain` of a PyTorch model: converted to IR in a temporary folder, removed when the
    explanations are done (or the iterator let go), or at once when preparing fails."""
    import shutil
    import tempfile

    import openvino as ov

    from xaigraph import torch_models

    loaded = torch_models.load(model, example_input, "ir")
    folder = Path(tempfile.mkdtemp(prefix="xaigraph-torch-"))
    try:
        ov.save_model(loaded.model, str(folder / "model.xml"), compress_to_fp16=False)
        stream = made(folder / "model.xml")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    def removing() -> Iterator[Explanation]:
        try:
            yield from stream
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return removing()


def _stream(spec: ExplainSpec, explainer: Any, items: Iterable[Any]) -> Iterator[Explanation]:
    from xaigraph.explain import engine

    def finish(decoded: Decoded, row: dict[str, Any]) -> Explanation:
        return _explanation(spec, decoded, row)

    def fail(item: Any, message: str) -> Explanation:
        return Explanation(int(item.index), Path(item.path), item.key, error=message)

    yield from engine.run(explainer, items, finish=finish, fail=fail)


class _CallableModule(types.ModuleType):
    """`xaigraph.explain` is this package once it is imported; calling it calls `explain`,
    so `xaigraph.explain(model, images)` works either way."""

    def __call__(self, *args: Any, **kwargs: Any) -> Iterator[Explanation]:
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule


def _explanation(spec: ExplainSpec, decoded: Decoded, row: dict[str, Any]) -> Explanation:
    from xaigraph.explain.io.write import predictions

    item = decoded.item
    scores = np.asarray(row["scores"])
    classes = [int(c) for c in row["targets"] if c >= 0]
    maps: dict[int, np.ndarray] = {}
    raw: dict[int, np.ndarray] = {}
    for t, c in enumerate(classes):  # a class's first map (a detector's best box) wins
        maps.setdefault(c, np.asarray(row["maps"][t]))
        if "raw" in row:
            raw.setdefault(c, np.asarray(row["raw"][t]))
    return Explanation(int(item.index), Path(item.path), item.key, decoded.width,
                       decoded.height, predictions(spec, scores), scores, maps, raw, None,
                       _detections(spec, decoded, row, classes), decoded, row, spec)


def _detections(spec: ExplainSpec, decoded: Decoded, row: dict[str, Any],
                classes: list[int]) -> list[dict[str, Any]]:
    """A black-box detector's boxes with their maps (`Explanation.detections`)."""
    from xaigraph.explain import render

    if "boxes" not in row:
        return []
    out = []
    for t, c in enumerate(classes):
        box = render.box_to_original(row["boxes"][t][:4], decoded.placement, decoded.width,
                                     decoded.height)
        out.append({"class": c, "label": spec.label(c), "score": float(row["boxes"][t][4]),
                    "box": box, "map": np.asarray(row["maps"][t])})
    return out


def _range(row: dict[str, Any], t: int) -> tuple[float, float] | None:
    """Map `t`'s raw range in an image's row, None when unknown."""
    if "ranges" not in row:
        return None
    lo, hi = (float(v) for v in row["ranges"][t])
    return (lo, hi) if np.isfinite(lo) and np.isfinite(hi) else None

"""The bundled demo: explain EfficientNet-Lite0's prediction on a photo of a cat.

`run_demo` inserts a saliency map into the bundled ONNX model (`xaigraph.data`), saves the
augmented IR, runs it once with OpenVINO on `chelsea.png` and writes a picture of the map and
a JSON summary. Runtime code: no torch.

The preprocessing is the one the weights were trained with (TensorFlow's EfficientNet-Lite
evaluation pipeline, from which the PyTorch weights were converted): a centre crop of
224/(224+32) of the short side, resized to 224x224 (bicubic), then `(rgb - 127) / 128`
("inception-style", used by the Lite models for better post-training quantization). Note that
the README of `efficientnet-lite-pytorch` shows the torchvision mean/std instead; that text was
inherited from `efficientnet_pytorch` and does not fit the Lite checkpoints (the first batch
norm's running statistics match `(rgb - 127) / 128`, and predictions are more confident).
`tools/export_demo_model.py` uses this same function when it checks the exported model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from xaigraph import api, jsontext
from xaigraph.errors import BadInputError, OutputExistsError
from xaigraph.files import atomic_write
from xaigraph.overlay import panel
from xaigraph.preprocess import Preprocess
from xaigraph.session import Session

__all__ = [
    "CLASS_FREE_MAPS",
    "CROP_PADDING",
    "EFFICIENTNET_LITE",
    "IMAGE_SIZE",
    "MODEL_FILE",
    "PHOTO_FILE",
    "caption",
    "crop_box",
    "load_labels",
    "preprocess",
    "run_demo",
]

IMAGE_SIZE = 224
CROP_PADDING = 32
MEAN_RGB = 127.0
STDDEV_RGB = 128.0

EFFICIENTNET_LITE = Preprocess(
    size=(IMAGE_SIZE, IMAGE_SIZE),
    resize="center_crop",
    crop_fraction=IMAGE_SIZE / (IMAGE_SIZE + CROP_PADDING),
    interpolation="bicubic",
    mean=(MEAN_RGB, MEAN_RGB, MEAN_RGB),
    std=(STDDEV_RGB, STDDEV_RGB, STDDEV_RGB),
    channels="RGB",
    layout="NCHW",
    dtype="float32",
)

DATA_PACKAGE = "xaigraph.data"
MODEL_FILE = "efficientnet_lite0.onnx"
PHOTO_FILE = "chelsea.png"
LABELS_FILE = "imagenet_labels.txt"

OUTPUT_XML = "efficientnet_lite0_xai.xml"
OUTPUT_PNG = "chelsea_saliency.png"
OUTPUT_JSON = "summary.json"
TOP_K = 5
# How a caption names the one class-free map of a method (per-class maps name their class).
CLASS_FREE_MAPS = {"activationmap": "activation map", "eigencam": "Eigen-CAM map"}


def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred square the model sees in a `width`x`height`
    photo: `IMAGE_SIZE / (IMAGE_SIZE + CROP_PADDING)` of the short side."""
    return EFFICIENTNET_LITE.crop_box(width, height)


def preprocess(image: Image.Image) -> np.ndarray:
    """The model input for one photo: `[1, 3, 224, 224]` float32, NCHW, RGB, `(x - 127) / 128`.

    Centre crop (`crop_box`) resized to 224x224 with bicubic interpolation
    (`EFFICIENTNET_LITE`).
    """
    return EFFICIENTNET_LITE.apply(image)


def load_labels(text: str) -> list[str]:
    """Class names, one a line, in index order."""
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if len(labels) != 1000:
        raise BadInputError(f"{LABELS_FILE}: expected 1000 ImageNet labels, got {len(labels)}")
    return labels


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - np.max(logits)
    e = np.exp(z)
    return e / e.sum()


def _class_map(saliency: np.ndarray, class_index: int) -> np.ndarray:
    """The `[h, w]` map of the first image: per-class `[N, K, h, w]` or class-free `[N, h, w]`."""
    if saliency.ndim == 4:
        return saliency[0, class_index]
    if saliency.ndim == 3:
        return saliency[0]
    raise ValueError(f"unexpected saliency_map shape {saliency.shape}")


def _check_outputs(paths: list[Path], force: bool) -> None:
    if force:
        return
    for p in paths:
        if p.exists():
            raise OutputExistsError(f"output exists: {p}; pass --force to overwrite it")


def _insert(method: str, progress: Callable[[str], None] | None
            ) -> tuple[api.InsertResult, Image.Image, list[str]]:
    """Insert `method` into the bundled model; also return the bundled photo and labels."""
    data = resources.files(DATA_PACKAGE)
    labels = load_labels(data.joinpath(LABELS_FILE).read_text(encoding="utf-8"))
    with ExitStack() as stack:
        model_path = stack.enter_context(resources.as_file(data.joinpath(MODEL_FILE)))
        photo_path = stack.enter_context(resources.as_file(data.joinpath(PHOTO_FILE)))
        with Image.open(photo_path) as img:
            photo = img.convert("RGB")
        result = api.insert(model_path, method=method, progress=progress)
    return result, photo, labels


def _infer(model_xml: Path, photo: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(logits, saliency_map) of the saved model on the photo, on OpenVINO CPU (f32)."""
    session = Session.open(model_xml, "openvino")
    logits, saliency = session.run([preprocess(photo)], outputs=[0, "saliency_map"])
    return logits, saliency


def _preprocessing_summary(box: tuple[int, int, int, int]) -> dict[str, Any]:
    p = EFFICIENTNET_LITE
    return {
        "crop_box": list(box),
        "resize": list(p.size),
        "mean": p.mean[0],
        "std": p.std[0],
        "layout": f"{p.layout} {p.channels} {p.dtype}",
    }


def _summary(result: api.InsertResult, method: str, probs: np.ndarray, labels: list[str],
             saliency: np.ndarray, box: tuple[int, int, int, int], files: dict[str, Path]
             ) -> dict[str, Any]:
    report = result.report
    top = np.argsort(-probs)[:TOP_K]
    top1 = int(top[0])
    per_class = saliency.ndim == 4
    class_map = _class_map(saliency, top1)
    peak = np.unravel_index(int(np.argmax(class_map)), class_map.shape)
    return {
        "xaigraph_version": report.get("version"),
        "model": MODEL_FILE,
        "image": PHOTO_FILE,
        "method": method,
        "form": report.get("form"),
        "preprocessing": _preprocessing_summary(box),
        "top5": [
            {"index": int(i), "label": labels[int(i)], "probability": round(float(probs[i]), 6)}
            for i in top
        ],
        "target_layer": report.get("target", {}).get("name"),
        "target_shape": report.get("target", {}).get("shape"),
        "saliency_map": {
            "shape": list(saliency.shape),
            "dtype": str(saliency.dtype),
            "class_index": top1 if per_class else None,
            "class_label": labels[top1] if per_class else None,
            "min": int(class_map.min()),
            "max": int(class_map.max()),
            "peak": [int(peak[0]), int(peak[1])],
        },
        "validation": report.get("validation", {}),
        "files": {key: str(path) for key, path in files.items()},
    }


def caption(method: str, label: str, probability: float, per_class: bool) -> str:
    """The picture's one-line caption: the model, the method, the top-1 class, and which
    map is drawn (the class's, or the method's one class-free map, named by the method)."""
    free = CLASS_FREE_MAPS.get(method, f"{method} map")
    what = f"map for '{label}'" if per_class else f"{free} (class-free)"
    return f"EfficientNet-Lite0 + xaigraph {method}: {label} ({100 * probability:.1f}%), {what}"


def _picture(photo: Image.Image, saliency: np.ndarray, title: str, top1: int) -> Image.Image:
    """The photo beside it with the top-1 class map over it, and the caption `title`."""
    return panel(photo, _class_map(saliency, top1), title, box=crop_box(*photo.size))


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    method: str = "reciprocam",
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Augment the bundled EfficientNet-Lite0 with `method`, run it on the bundled photo.

    Writes into `out_dir` (created if missing): `efficientnet_lite0_xai.xml` + `.bin`,
    `chelsea_saliency.png` (the photo and the top-1 class map over it) and `summary.json`.
    Existing outputs are refused unless `force`. Returns the summary.
    """
    out = Path(out_dir)
    out_xml = out / OUTPUT_XML
    files = {"model_xml": out_xml, "model_bin": out_xml.with_suffix(".bin"),
             "panel_png": out / OUTPUT_PNG, "summary_json": out / OUTPUT_JSON}
    if out.exists() and not out.is_dir():
        raise BadInputError(f"output folder is a file: {out}")
    _check_outputs(list(files.values()), force)

    result, photo, labels = _insert(method, progress)
    out.mkdir(parents=True, exist_ok=True)
    api.save(result, out_xml, force=force)

    if progress is not None:
        progress(f"run {out_xml.name} on {PHOTO_FILE} (OpenVINO CPU)")
    logits, saliency = _infer(out_xml, photo)
    probs = _softmax(logits.reshape(-1))
    top1 = int(np.argmax(probs))
    title = caption(method, labels[top1], float(probs[top1]), saliency.ndim == 4)
    picture = _picture(photo, saliency, title, top1)
    atomic_write(files["panel_png"], lambda p: picture.save(p, format="PNG"))

    box = crop_box(*photo.size)
    summary = _summary(result, method, probs, labels, saliency, box, files)
    summary["caption"] = title
    text = jsontext.dumps(summary, indent=2, default=_json_default) + "\n"
    atomic_write(files["summary_json"], lambda p: p.write_text(text, encoding="utf-8"))
    return summary


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

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

import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from PIL import Image

from xaigraph import api
from xaigraph.errors import BadInputError
from xaigraph.overlay import panel

__all__ = [
    "CROP_PADDING",
    "IMAGE_SIZE",
    "MODEL_FILE",
    "PHOTO_FILE",
    "crop_box",
    "load_labels",
    "preprocess",
    "run_demo",
]

IMAGE_SIZE = 224
CROP_PADDING = 32
MEAN_RGB = 127.0
STDDEV_RGB = 128.0

DATA_PACKAGE = "xaigraph.data"
MODEL_FILE = "efficientnet_lite0.onnx"
PHOTO_FILE = "chelsea.png"
LABELS_FILE = "imagenet_labels.txt"

OUTPUT_XML = "efficientnet_lite0_xai.xml"
OUTPUT_PNG = "chelsea_saliency.png"
OUTPUT_JSON = "summary.json"
TOP_K = 5


def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred square the model sees in a `width`x`height`
    photo: `IMAGE_SIZE / (IMAGE_SIZE + CROP_PADDING)` of the short side."""
    side = int(IMAGE_SIZE / (IMAGE_SIZE + CROP_PADDING) * min(width, height))
    side = max(side, 1)
    left = (width - side + 1) // 2
    top = (height - side + 1) // 2
    return left, top, left + side, top + side


def preprocess(image: Image.Image) -> np.ndarray:
    """The model input for one photo: `[1, 3, 224, 224]` float32, NCHW, RGB, `(x - 127) / 128`.

    Centre crop (`crop_box`) resized to 224x224 with bicubic interpolation.
    """
    rgb = image.convert("RGB")
    box = crop_box(*rgb.size)
    resized = rgb.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC, box=box)
    x = (np.asarray(resized, dtype=np.float32) - MEAN_RGB) / STDDEV_RGB
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


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
            raise BadInputError(f"output exists: {p}; pass --force to overwrite it")


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
    out_png = out / OUTPUT_PNG
    out_json = out / OUTPUT_JSON
    if out.exists() and not out.is_dir():
        raise BadInputError(f"output folder is a file: {out}")
    _check_outputs([out_xml, out_xml.with_suffix(".bin"), out_png, out_json], force)

    data = resources.files(DATA_PACKAGE)
    labels = load_labels(data.joinpath(LABELS_FILE).read_text(encoding="utf-8"))
    with ExitStack() as stack:
        model_path = stack.enter_context(resources.as_file(data.joinpath(MODEL_FILE)))
        photo_path = stack.enter_context(resources.as_file(data.joinpath(PHOTO_FILE)))
        with Image.open(photo_path) as img:
            photo = img.convert("RGB")
        result = api.insert(model_path, method=method, progress=progress)

    out.mkdir(parents=True, exist_ok=True)
    api.save(result, out_xml, force=force)

    if progress is not None:
        progress(f"run {out_xml.name} on {PHOTO_FILE} (OpenVINO CPU)")
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(out_xml)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    x = preprocess(photo)
    outputs = compiled([x])
    logits = np.asarray(outputs[compiled.outputs[0]])
    saliency = np.asarray(outputs[compiled.output("saliency_map")])

    probs = _softmax(logits.reshape(-1))
    top = np.argsort(-probs)[:TOP_K]
    top1 = int(top[0])
    class_map = _class_map(saliency, top1)

    box = crop_box(*photo.size)
    per_class = saliency.ndim == 4
    what = f"map for '{labels[top1]}'" if per_class else "activation map (class-free)"
    title = (
        f"EfficientNet-Lite0 + xaigraph {method}: {labels[top1]} "
        f"({100 * probs[top1]:.1f}%), {what}"
    )
    picture = panel(photo, class_map, title, box=box)
    _write_atomic(out_png, lambda p: picture.save(p, format="PNG"))

    report = result.report
    validation = report.get("validation", {})
    peak = np.unravel_index(int(np.argmax(class_map)), class_map.shape)
    summary: dict[str, Any] = {
        "xaigraph_version": report.get("version"),
        "model": MODEL_FILE,
        "image": PHOTO_FILE,
        "method": method,
        "form": report.get("form"),
        "preprocessing": {
            "crop_box": list(box),
            "resize": [IMAGE_SIZE, IMAGE_SIZE],
            "mean": MEAN_RGB,
            "std": STDDEV_RGB,
            "layout": "NCHW RGB float32",
        },
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
        "validation": validation,
        "files": {
            "model_xml": str(out_xml),
            "model_bin": str(out_xml.with_suffix(".bin")),
            "panel_png": str(out_png),
            "summary_json": str(out_json),
        },
    }
    text = json.dumps(summary, indent=2, default=_json_default) + "\n"
    _write_atomic(out_json, lambda p: p.write_text(text, encoding="utf-8"))
    return summary


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

"""Explain OUT_DIRs and eval DIRs written in code exactly as docs/runtime.md describes them,
for the report's tests and tools/bench_report.py: originals and colour maps made with numpy
and Pillow, results.jsonl lines with predictions, targets, ground truth and error lines."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from xaigraph.explain.io.rundir import input_folders
from xaigraph.overlay import colorize

__all__ = ["CATS", "Img", "float_map", "many", "write_eval", "write_explain"]

CATS = [(282, "tiger cat"), (281, "tabby, tabby cat"), (285, "Egyptian cat"),
        (207, "golden retriever")]


@dataclass
class Img:
    """One image of a fixture run. `peak` is where its maps peak (x, y as fractions of the
    image); `seen` the part the model sees (fractions l, t, r, b), alpha 0 outside."""

    key: str
    w: int = 64
    h: int = 48
    preds: list[tuple[int, str, float]] = field(default_factory=lambda: [
        (282, "tiger cat", 0.6), (281, "tabby, tabby cat", 0.3), (285, "Egyptian cat", 0.1)])
    truth: list[str] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float, str]] = field(default_factory=list)
    peak: tuple[float, float] = (0.5, 0.5)
    targets: int = 2
    error: str | None = None
    seen: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    colour: tuple[int, int, int] = (90, 140, 60)
    extra: list[tuple[int, str, float]] = field(default_factory=list)
    """Targets after the top predictions' (a wrong image's true class, explained too)."""
    roles: list[str | None] | None = None
    """Each target's record `role` (None: the record has none, as an older xaigraph's)."""


def float_map(img: Img, target: int, peak: tuple[float, float] | None = None) -> np.ndarray:
    """The map [7, 7] in 0..1 (min-max scaled) of one target: a Gaussian at the peak, moved
    a little per target so that classes differ."""
    px, py = peak or img.peak
    px = (px + 0.3 * target) % 1.0
    ys, xs = np.mgrid[0:7, 0:7] / 6.0
    m = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / 0.08)
    return ((m - m.min()) / (m.max() - m.min())).astype(np.float32)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def _colour_map(img: Img, values: np.ndarray) -> Image.Image:
    """The RGBA colour map at the original's size, alpha 0 outside `seen`."""
    left, t, r, b = (round(img.seen[0] * img.w), round(img.seen[1] * img.h),
                     round(img.seen[2] * img.w), round(img.seen[3] * img.h))
    u8 = np.round(values * 255).astype(np.uint8)
    part = np.asarray(Image.fromarray(u8).resize((r - left, b - t), Image.Resampling.BILINEAR))
    rgba = np.zeros((img.h, img.w, 4), np.uint8)
    rgba[t:b, left:r, :3] = colorize(part)
    rgba[t:b, left:r, 3] = 255
    return Image.fromarray(rgba, "RGBA")


def _photo(img: Img) -> Image.Image:
    ys, xs = np.mgrid[0:img.h, 0:img.w]
    base = np.array(img.colour, np.float32)
    shade = (0.6 + 0.4 * xs / max(1, img.w - 1))[..., None]
    arr = np.clip(base * shade + (ys % 8 == 0)[..., None] * 40, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def write_explain(out_dir: Path, images: list[Img], *, method: str = "reciprocam",
                  photos: Path | None = None, raw: bool = False,
                  peak_shift: tuple[float, float] = (0.0, 0.0)) -> Path:
    """Write an explain OUT_DIR; originals go to `photos` (default `out_dir.parent/photos`)
    and results.jsonl names them by their path relative to `out_dir.parent`."""
    photos = photos or out_dir.parent / "photos"
    encoded: dict[tuple, bytes] = {}  # the same picture is encoded once (10 000-image runs)

    def save(image: Callable[[], Image.Image], path: Path, *key: object) -> None:
        if key not in encoded:
            buffer = io.BytesIO()
            image().save(buffer, format="PNG")
            encoded[key] = buffer.getvalue()
        path.write_bytes(encoded[key])

    for sub in ("maps", "overlays") + (("raw",) if raw else ()):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    photos.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, img in enumerate(images):
        photo_path = photos / f"{img.key}.png"
        photo_path.parent.mkdir(parents=True, exist_ok=True)
        if not photo_path.exists():
            save(lambda img=img: _photo(img), photo_path, "photo", img.w, img.h, img.colour)
        rel = str(photo_path.relative_to(out_dir.parent)) if photo_path.is_relative_to(
            out_dir.parent) else str(photo_path)
        if img.error:
            lines.append({"index": index, "path": rel, "key": img.key, "status": "error",
                          "error": img.error, "run": "digest0"})
            continue
        targets = []
        for t, (cls, label, score) in enumerate(img.preds[:img.targets] + img.extra):
            peak = (img.peak[0] + peak_shift[0], img.peak[1] + peak_shift[1])
            values = float_map(img, t, peak)
            stem = f"{img.key}_{_safe(label)}_{score:.2f}"
            for sub in ("maps", "overlays", "raw"):
                (out_dir / sub / stem).parent.mkdir(parents=True, exist_ok=True)
            look = (img.w, img.h, img.seen, t, peak)
            save(lambda img=img, values=values: _colour_map(img, values),
                 out_dir / "maps" / f"{stem}.png", "map", *look)
            save(lambda img=img, values=values: Image.alpha_composite(
                _photo(img).convert("RGBA"), _colour_map(img, values)).convert("RGB"),
                out_dir / "overlays" / f"{stem}.png", "overlay", img.colour, *look)
            raw_rel = None
            if raw:
                raw_rel = f"raw/{img.key}_{_safe(label)}.npy"
                np.save(out_dir / raw_rel, values)
            targets.append({"class": cls, "label": label, "score": score,
                            "map": f"maps/{stem}.png", "overlay": f"overlays/{stem}.png",
                            "raw": raw_rel, "box": None})
            if img.roles is not None and img.roles[t] is not None:
                targets[-1]["role"] = img.roles[t]
        lines.append({
            "index": index, "path": rel, "key": img.key, "status": "ok",
            "width": img.w, "height": img.h,
            "predictions": [{"class": c, "label": lab, "score": s} for c, lab, s in img.preds],
            "targets": targets,
            "ground_truth": {"boxes": [{"box": list(b[:4]), "label": None, "name": b[4]}
                                       for b in img.boxes],
                             "labels": list(img.truth)},
            "method": method, "run": "digest0",
            "timings": {"decode": 0.001, "infer": 0.002, "write": 0.003}})
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    # as the real `xaigraph explain` writes it
    card = {"model": {"path": "models/tiny.onnx", "sha256": "ab" * 32, "augmented": False},
            "method": {"name": method, "why": "given by --method"},
            "target_layer": "/features/conv_last",
            "pipeline": f"detect-target,insert-saliency{{method={method}}},embed-scaling,validate",
            "xaigraph_version": "0.1.0", "runtime": "onnxruntime",
            "preprocessing": {"resize": "stretch", "size": [224, 224]},
            "labels": [f"class {i}" for i in range(20)], "num_classes": 20,
            "options": {"targets": "topk:2", "colormap": "jet", "opacity": 0.5},
            "digest": "digest0",
            "inputs": input_folders({(photos / f"{img.key}.png").parent for img in images},
                                    out_dir)}
    (out_dir / "run.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return out_dir


METRICS = {
    "pointing_game": {"direction": "higher", "paper": "Zhang et al. 2016, arXiv 1608.00507",
                      "params": {"tolerance_px": 15}},
    "deletion_auc": {"direction": "lower", "paper": "Petsiuk et al. 2018", "params": {"steps": 30}},
}


def write_eval(folder: Path, images: list[Img], methods: dict[str, tuple[float, float]],
               *, raw: bool = False) -> Path:
    """An eval DIR: one explain OUT_DIR per method (maps peaking at the image's peak moved by
    the method's shift), metrics.json whose per-image values are made from the image index
    (pointing_game = index % 2, deletion_auc = index / 100 + method position), metrics.md."""
    rows = []
    for m_index, (method, shift) in enumerate(methods.items()):
        write_explain(folder / method, images, method=method, photos=folder.parent / "photos",
                      peak_shift=shift, raw=raw)
        for index, img in enumerate(images):
            if img.error:
                continue
            for cls, label, _ in img.preds[:img.targets]:
                rows.append({"key": img.key, "method": method, "class": cls, "label": label,
                             "pointing_game": float(index % 2),
                             "deletion_auc": round(index / 100 + m_index, 4)})
    summary = {m: {"pointing_game": {"mean": 0.5 + 0.1 * k, "ci95": [0.3 + 0.1 * k, 0.7 + 0.1 * k],
                                     "n": len(images)},
                   "deletion_auc": {"mean": 0.2 + 0.05 * k, "ci95": [0.1, 0.3 + 0.05 * k],
                                    "n": len(images)}}
               for k, m in enumerate(methods)}
    per_class = {m: {"tiger cat": {"pointing_game": {"mean": 1.0 - 0.25 * k,
                                                     "ci95": [0.5, 1.0], "n": 3}},
                     "Egyptian cat": {"pointing_game": {"mean": 0.25, "ci95": [0.0, 0.5],
                                                        "n": 2}}}
                 for k, m in enumerate(methods)}
    metrics = {"methods": list(methods), "metrics": METRICS, "summary": summary,
               "per_class": per_class, "images": rows}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    (folder / "metrics.md").write_text("| metric | ... |\n", encoding="utf-8")
    return folder


def many(n: int, *, w: int = 32, h: int = 24, targets: int = 1) -> list[Img]:
    """`n` small images with varied scores, truths and a failed one every 97 (16 distinct
    pictures and maps, so that writing 10 000 is quick)."""
    rng = np.random.default_rng(0)
    looks = [((float(rng.uniform()), float(rng.uniform())),
              (int(rng.integers(256)), int(rng.integers(256)), 80)) for _ in range(16)]
    out = []
    for i in range(n):
        top = float(np.round(rng.uniform(0.2, 0.99), 3))
        cls, label = CATS[i % len(CATS)]
        other = CATS[(i + 1) % len(CATS)]
        preds = [(cls, label, top), (other[0], other[1], round((1 - top) / 2, 3))]
        truth = [CATS[(i // 2) % len(CATS)][1]] if i % 3 else []
        out.append(Img(f"img{i:05d}", w, h, preds, truth, targets=targets,
                       peak=looks[i % 16][0], colour=looks[i % 16][1],
                       error="not an image" if i % 97 == 96 else None))
    return out

"""explain's maps are the model's own: compared with the augmented model's `saliency_map` run
directly on the same preprocessed input, on IR and ONNX, both runtimes, static and dynamic
batch; scores are the class probabilities; overlays are the colour map of that map."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import xaigraph
from tests import tiny_onnx
from xaigraph.explain import render
from xaigraph.explain.model import probabilities
from xaigraph.explain.plan import prepare
from xaigraph.explain.targets import All, Classes, Predicted, TopK, parse
from xaigraph.session import Session


def photos(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (20 + 3 * i, 26, 3), dtype=np.uint8))
            for i in range(n)]


def augmented(path: Path, folder: Path, suffix: str, method: str = "reciprocam",
              **kwargs: object) -> Path:
    out = folder / f"{path.stem}_{method}{suffix}"
    if not out.exists():
        xaigraph.save(xaigraph.insert(path, method, output_format=suffix[1:].replace(
            "xml", "ir"), **kwargs), out)  # type: ignore[arg-type]
    return out


def direct(model: Path, runtime: str, preprocess: object, image: Image.Image
           ) -> tuple[np.ndarray, np.ndarray]:
    """(logits [K], saliency_map [K, h, w]) of `model` on one image, run directly."""
    x = preprocess.apply(image)  # type: ignore[attr-defined]
    logits, maps = Session.open(model, runtime).run([x], outputs=[0, "saliency_map"])
    return logits[0], maps[0]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z.astype(np.float64) - z.max())
    return e / e.sum()


CASES = [("onnx17", ".onnx", "onnxruntime"), ("onnx17", ".onnx", "openvino"),
         ("onnx17", ".xml", "openvino"), ("ov_dynbatch", ".xml", "openvino")]


@pytest.mark.parametrize(("route", "suffix", "runtime"), CASES)
def test_maps_equal_the_augmented_models_own(cnn_file: Callable[..., Path], tmp_path: Path,
                                             route: str, suffix: str, runtime: str) -> None:
    aug = augmented(cnn_file("gap_fc", False, route), tmp_path, suffix)
    images = photos(3)
    found = list(xaigraph.explain(aug, images, targets="all", runtime=runtime, batch_size=2))
    assert [e.index for e in found] == [0, 1, 2]
    spec = prepare(aug, runtime=runtime)
    assert spec.augmented and spec.method == "reciprocam"
    for ex, image in zip(found, images, strict=True):
        logits, maps = direct(aug, runtime, spec.preprocess, image)
        assert ex.targets == list(range(tiny_onnx.CLASSES))
        for c in range(tiny_onnx.CLASSES):
            np.testing.assert_array_equal(ex.maps[c], maps[c].astype(np.float32) / 255)
        np.testing.assert_allclose(ex.scores, softmax(logits), rtol=1e-5, atol=1e-7)
        assert ex.predictions[0]["class"] == int(np.argmax(logits))


@pytest.mark.parametrize(("route", "runtime"), [("onnx17", "onnxruntime"),
                                                ("onnx17", "openvino"),
                                                ("ov_dynbatch", "openvino")])
def test_plain_model_augmented_in_memory(cnn_file: Callable[..., Path], tmp_path: Path,
                                         route: str, runtime: str) -> None:
    plain = cnn_file("gap_mlp", False, route)
    suffix = ".onnx" if runtime == "onnxruntime" else ".xml"
    aug = augmented(plain, tmp_path, suffix)
    before = sorted(p.name for p in plain.parent.iterdir())
    images = photos(3, seed=5)
    found = list(xaigraph.explain(plain, images, targets="all", runtime=runtime))
    assert sorted(p.name for p in plain.parent.iterdir()) == before  # nothing written there
    spec = prepare(plain, runtime=runtime)
    assert not spec.augmented and spec.method == "reciprocam" and "auto" in spec.method_reason
    # in memory the model is augmented without the in-graph u8 scaling (the raw range is
    # kept for the colour scales): its maps are the float maps min-max scaled on the host
    (tmp_path / "floats").mkdir()
    floats = augmented(plain, tmp_path / "floats", suffix, scaling=False)
    for ex, image in zip(found, images, strict=True):
        _, maps = direct(aug, runtime, spec.preprocess, image)
        _, raw = direct(floats, runtime, spec.preprocess, image)
        for c in range(tiny_onnx.CLASSES):
            m = raw[c].astype(np.float64)
            unit = (m - m.min()) / max(m.max() - m.min(), 1e-12)
            np.testing.assert_allclose(ex.maps[c], unit, rtol=0, atol=1e-6)
            # within half a level of the u8 maps the in-graph scaling gives
            np.testing.assert_allclose(ex.maps[c], maps[c] / 255, rtol=0, atol=0.5 / 255 + 1e-5)


def test_in_graph_targets_give_the_same_maps(cnn_file: Callable[..., Path],
                                             tmp_path: Path) -> None:
    plain = cnn_file("gap_fc", False, "onnx17")
    aug = augmented(plain, tmp_path, ".onnx")
    images = photos(4, seed=3)
    spec = prepare(plain, targets="topk:2")
    assert spec.classes_output  # the in-graph top-k: 2 maps computed, not 5
    for ex, image in zip(xaigraph.explain(spec, images), images, strict=True):
        logits, maps = direct(aug, "onnxruntime", spec.preprocess, image)
        order = list(np.argsort(-logits, kind="stable")[:2])
        assert ex.targets == order
        for c in order:
            np.testing.assert_allclose(ex.maps[c], maps[c] / 255, atol=1.01 / 255)
    listed = list(xaigraph.explain(plain, images[:2], targets="3,1"))
    assert [e.targets for e in listed] == [[3, 1], [3, 1]]


def test_selecting_from_an_augmented_models_maps(cnn_file: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    aug = augmented(cnn_file("gap_fc", False, "onnx17"), tmp_path, ".onnx")
    image = photos(1, seed=9)[0]
    spec = prepare(aug)
    logits, maps = direct(aug, "onnxruntime", spec.preprocess, image)
    (top,) = xaigraph.explain(aug, [image], targets="topk:3")
    assert top.targets == list(np.argsort(-logits, kind="stable")[:3])
    (pred,) = xaigraph.explain(aug, [image])  # predicted, the default
    assert pred.targets == [int(np.argmax(logits))]
    np.testing.assert_array_equal(pred.maps[pred.targets[0]],
                                  maps[pred.targets[0]].astype(np.float32) / 255)


def test_static_and_dynamic_batch_give_the_same_maps(cnn_file: Callable[..., Path]) -> None:
    images = photos(5, seed=4)
    static = prepare(cnn_file("gap_fc", False, "ov_static"), targets="all")
    dynamic = prepare(cnn_file("gap_fc", False, "ov_dynbatch"), targets="all", batch_size=2)
    assert static.static_batch == 1 and dynamic.static_batch is None
    a = list(xaigraph.explain(static, images))
    b = list(xaigraph.explain(dynamic, images))
    for x, y in zip(a, b, strict=True):
        assert x.targets == y.targets
        for c in x.targets:
            np.testing.assert_array_equal(x.maps[c], y.maps[c])
        np.testing.assert_allclose(x.scores, y.scores, rtol=1e-5)


def test_softmax_output_is_taken_as_probabilities(cnn_file: Callable[..., Path]) -> None:
    plain = cnn_file("gap_fc", True, "onnx17")  # ends in a Softmax
    spec = prepare(plain)
    assert spec.activation == "softmax"
    image = photos(1)[0]
    (ex,) = xaigraph.explain(spec, [image])
    probs = Session.open(plain).run([spec.preprocess.apply(image)])[0][0]
    np.testing.assert_allclose(ex.scores, probs, rtol=1e-6)
    assert probabilities(np.log(probs)[None], "log_softmax", False) == pytest.approx(
        probs[None], rel=1e-5)


def test_overlay_is_the_colour_map_blended(cnn_file: Callable[..., Path],
                                           tmp_path: Path) -> None:
    aug = augmented(cnn_file("gap_fc", False, "onnx17"), tmp_path, ".onnx")
    image = photos(1, seed=7)[0]
    (ex,) = xaigraph.explain(aug, [image], opacity=0.4, colormap="cubehelix")
    c = ex.targets[0]
    spec = prepare(aug)
    _, maps = direct(aug, "onnxruntime", spec.preprocess, image)
    placement = spec.preprocess.placement(*image.size)
    values, seen = render.resample(maps[c].astype(np.float64) / 255, placement, *image.size,
                                   spec.preprocess.size)
    table = render.lookup("cubehelix")
    v = values * 255  # an exact tie (half-way between two u8 levels) may go either way
    tie = np.abs(v % 1 - 0.5) < 1e-6
    photo = np.asarray(image, dtype=np.float64)
    got = np.asarray(ex.overlay(map_scale="map", legend=False), dtype=np.float64)
    assert got.shape == photo.shape
    ok = np.zeros(seen.shape, dtype=bool)
    for index in (np.where(tie, np.floor(v), np.floor(v + 0.5)),
                  np.where(tie, np.ceil(v), np.floor(v + 0.5))):
        colour = table[np.clip(index, 0, 255).astype(int)]
        # Pillow's blend floors where the model sees (float32: an exact integer may come out
        # one below); round(DIM * photo) elsewhere
        mixed = photo + 0.4 * (colour - photo)
        blend_ok = (got == np.floor(mixed)) | ((np.abs(mixed - np.round(mixed)) < 1e-4)
                                               & (got == np.round(mixed) - 1))
        dim_ok = got == np.floor(render.DIM * photo + 0.5)
        ok |= np.where(seen[..., None], blend_ok, dim_ok).all(axis=2)
    assert ok.all(), np.argwhere(~ok)[:5]
    rgba = np.asarray(ex.colour())
    assert (rgba[..., 3] == np.where(seen, 255, 0)).all()


def test_targets_text() -> None:
    labels = ["cat", "tiger cat", "dog"]
    assert parse("predicted", labels) == Predicted()
    assert parse("topk:3", labels) == TopK(3)
    assert parse("all", None) == All()
    assert parse("2,tiger_cat", labels) == Classes((2, 1))
    for bad in ("topk:0", "3,3", "", "tigr cat"):
        with pytest.raises(xaigraph.BadInputError):
            parse(bad, labels)

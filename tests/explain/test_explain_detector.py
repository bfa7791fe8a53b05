"""Black-box detectors through `xaigraph explain`: a tiny ONNX detector whose box is the
bright square of its input; boxes back in original pixels (stretch, letterbox, crop), the
map's peak inside the box, the box drawn on the overlay, D-RISE numbers against `drise` over a
numpy twin of the model, targets, unique file names, bad detector outputs (exit 2, one line,
nothing written) and `--method auto`'s reason on every results.jsonl line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from PIL import Image

from tests.explain import detector_models as dm
from tests.explain.test_explain_cli import invoke, lines
from xaigraph.explain import legend, render
from xaigraph.explain.blackbox import BlackBoxOptions
from xaigraph.explain.detections import READERS, Detections
from xaigraph.explain.drise import drise, select_targets
from xaigraph.explain.explainer import Explainer, batch, unbatch
from xaigraph.explain.io.decode import decode
from xaigraph.explain.plan import prepare
from xaigraph.explain.targets import Boxes
from xaigraph.preprocess import Preprocess

WIDTH, HEIGHT = 96, 64
SQUARES = {"a": (20, 14, 44, 34), "b": (60, 30, 84, 52)}  # x1 y1 x2 y2, original pixels


@pytest.fixture()
def photos(tmp_path: Path) -> list[Path]:
    return [dm.square_image(tmp_path / f"{k}.png", WIDTH, HEIGHT, box)
            for k, box in SQUARES.items()]


def numpy_detector(inputs: np.ndarray) -> list[Detections]:
    """The tiny ONNX detector's twin in numpy: the box of the pixels whose channel mean is
    above `dm.BRIGHT`, label 1, score the brightest channel mean / 255."""
    out = []
    for image in inputs.astype(np.float64):
        grey = image.mean(axis=0)
        ys, xs = np.nonzero(grey > dm.BRIGHT)
        box = ([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs)
               else [dm.SIZE, dm.SIZE, 0, 0])
        out.append(Detections.make([box], [1], [grey.max() / 255.0]))
    return out


# -- geometry and drawing ---------------------------------------------------------------------

def test_box_to_original_against_hand_computed_numbers() -> None:
    box = (10.0, 15.0, 22.0, 25.0)  # input pixels of a 48 x 48 input; the photo is 96 x 64
    letterbox = Preprocess(size=(48, 48), resize="letterbox").placement(WIDTH, HEIGHT)
    assert letterbox.input_box == (0.0, 8.0, 48.0, 40.0)  # scale 1/2, 8 rows of padding
    assert render.box_to_original(box, letterbox, WIDTH, HEIGHT) == (20.0, 14.0, 44.0, 34.0)
    stretch = Preprocess(size=(48, 48), resize="stretch").placement(WIDTH, HEIGHT)
    got = render.box_to_original(box, stretch, WIDTH, HEIGHT)  # x * 2, y * 4 / 3
    np.testing.assert_allclose(got, (20.0, 20.0, 44.0, 100.0 / 3.0), atol=1e-9)
    crop = Preprocess(size=(48, 48), resize="center_crop", crop_fraction=1.0).placement(
        WIDTH, HEIGHT)
    assert crop.image_box == (16.0, 0.0, 80.0, 64.0)  # the centred 64 x 64, scale 3/4
    got = render.box_to_original((12.0, 6.0, 24.0, 30.0), crop, WIDTH, HEIGHT)
    np.testing.assert_allclose(got, (32.0, 8.0, 48.0, 40.0), atol=1e-9)
    # a box in the letterbox padding is clipped to the photo
    assert render.box_to_original((-4, 0, 60, 6), letterbox, WIDTH, HEIGHT) == (
        0.0, 0.0, 96.0, 0.0)


@pytest.mark.parametrize("resize", ["letterbox", "stretch", "center_crop"])
def test_box_to_original_agrees_with_where_colour_puts_a_map(resize: str) -> None:
    """A map that is 1 on an input box and 0 elsewhere, resampled onto the photo as the map
    files are: the pixels over one half lie in the box `box_to_original` gives (to a pixel)."""
    pre = Preprocess(size=(48, 48), resize=resize, crop_fraction=1.0)
    placement = pre.placement(WIDTH, HEIGHT)
    m = np.zeros((48, 48), np.float32)
    m[15:25, 10:22] = 1.0  # the input box (10, 15, 22, 25)
    values, _ = render.resample(m, placement, WIDTH, HEIGHT, (48, 48))
    ys, xs = np.nonzero(values > 0.5)
    seen = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    got = render.box_to_original((10, 15, 22, 25), placement, WIDTH, HEIGHT)
    np.testing.assert_allclose(seen, got, atol=1.0)


def test_draw_box_colours_the_edges_not_the_inside() -> None:
    image = Image.new("RGB", (80, 60), (90, 90, 90))
    render.draw_box(image, (10, 20, 50, 45), "square 0.90")
    a = np.asarray(image)
    colour = np.asarray(render.BOX_COLOUR, np.uint8)
    for edge in (a[20:45, 10], a[20:45, 49], a[20, 10:50], a[44, 10:50]):
        assert (edge == colour).all()
    inside = a[23:42, 13:47]
    assert (inside == 90).all() and not (inside == colour).all(axis=-1).any()
    assert (a[20:45, 51] == 90).all() and (a[46:, :] == 90).all()  # nothing outside
    tag = a[:20, 10:60]  # the label's tag above the box: its colour and dark text
    assert (tag == colour).all(axis=-1).any() and (tag.sum(axis=-1) < 100).any()


# -- the runner -------------------------------------------------------------------------------

def test_spec_names_the_reader_and_maps_equal_drise_over_the_numpy_twin(
        tmp_path: Path, photos: list[Path]) -> None:
    model = dm.save(dm.bright_box_detector(), tmp_path / "det.onnx")
    options = BlackBoxOptions(num_masks=120, cells=5, seed=3)
    spec = prepare(model, method="rise", blackbox=options, raw=True,
                   preprocess_flags={"resize": "letterbox"})
    assert spec.detector_reader == "boxes_labels_scores" and spec.detector
    assert spec.card()["detector_output"] == "boxes_labels_scores"
    assert spec.card()["num_classes"] is None and spec.targets == Boxes(0.5)
    from xaigraph.explain.inputs import collect

    decoded = [decode(item, spec.preprocess) for item in collect([str(p) for p in photos]).items]
    out = Explainer(spec)(batch(decoded))
    assert out["boxes"].shape == (2, 1, 5) and out["targets"].tolist() == [[1], [1]]
    for b, d in enumerate(decoded):
        x = d.input[None]
        targets = select_targets(numpy_detector(x)[0], score_threshold=0.5)
        ref = drise(x, numpy_detector, targets=targets, num_masks=120, cells=5, prob=0.5,
                    seed=3, baseline=0.0)[0]
        got = out["raw"][b, 0]
        assert np.abs(got - ref).max() <= 1e-5 * (ref.max() - ref.min())
        np.testing.assert_allclose(out["boxes"][b, 0], [*targets.boxes[0], 1.0], atol=1e-6)
        lo, hi = ref.min(), ref.max()
        np.testing.assert_allclose(out["maps"][b, 0], (ref - lo) / (hi - lo), atol=1e-5)


def two_box_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A --postprocess function: the model's box, plus a fixed box of the same class (0.9)
    when the square is in the left half of the input."""
    (tmp_path / "twobox.py").write_text(
        "import numpy as np\n"
        "def read(outputs):\n"
        "    box = outputs['boxes'][0, 0]\n"
        "    boxes, scores = [box], [float(outputs['scores'][0, 0])]\n"
        "    if box[0] < 24:\n"
        "        boxes.append([30.0, 12.0, 46.0, 20.0])\n"
        "        scores.append(0.9)\n"
        "    return np.array(boxes), np.ones(len(boxes), np.int64), np.array(scores)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "twobox", raising=False)
    return "twobox:read"


@pytest.mark.parametrize(("targets", "counts"), [("predicted", [2, 1]), ("topk:1", [1, 1]),
                                                 ("0", [0, 0]), ("1", [2, 1])])
def test_detector_targets_and_padding(tmp_path: Path, photos: list[Path],
                                      monkeypatch: pytest.MonkeyPatch, targets: str,
                                      counts: list[int]) -> None:
    model = dm.save(dm.bright_box_detector(), tmp_path / "det.onnx")
    options = BlackBoxOptions(num_masks=16, postprocess=two_box_module(tmp_path, monkeypatch))
    spec = prepare(model, method="rise", targets=targets, blackbox=options,
                   preprocess_flags={"resize": "letterbox"})
    assert spec.detector_reader == "postprocess"
    from xaigraph.explain.inputs import collect

    decoded = [decode(item, spec.preprocess) for item in collect([str(p) for p in photos]).items]
    out = Explainer(spec)(batch(decoded))
    assert [(row >= 0).sum() for row in out["targets"]] == counts
    t = max(counts)
    assert out["boxes"].shape == (2, t, 5) and out["maps"].shape[:2] == (2, t)
    for row, n in zip(out["boxes"], counts, strict=True):
        assert np.isfinite(row[:n]).all() and np.isnan(row[n:]).all()
        assert (np.diff(row[:n, 4]) <= 0).all()  # best box first
    rows = unbatch(out)
    assert rows[1]["scores"][1] == pytest.approx(1.0)  # label 1's best box score


def test_two_boxes_of_a_class_get_their_own_files(tmp_path: Path, photos: list[Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    model = dm.save(dm.bright_box_detector(), tmp_path / "det.onnx")
    out = tmp_path / "out"
    code, _, stderr = invoke("explain", model, photos[0], "-o", out, "--method", "rise",
                             "--num-masks", "16", "--resize", "letterbox", "--raw",
                             "--postprocess", two_box_module(tmp_path, monkeypatch))
    assert code == 0, stderr
    (record,) = lines(out)
    assert record["detector_output"] == "postprocess"
    entries = record["targets"]
    assert [t["score"] for t in entries] == [1.0, 0.9] and [t["class"] for t in entries] == [1, 1]
    # (30, 12, 46, 20) in input pixels: x * 2, (y - 8) * 2
    np.testing.assert_allclose(entries[1]["box"], [60, 8, 92, 24])
    for key in ("map", "overlay", "raw"):
        assert len({t[key] for t in entries}) == 2
        assert all((out / t[key]).is_file() for t in entries)
    assert json.loads((out / "run.json").read_text())["options"]["blackbox"][
        "score_threshold"] == 0.5
    strict = tmp_path / "strict"
    code, _, stderr = invoke("explain", model, photos[0], "-o", strict, "--method", "rise",
                             "--num-masks", "16", "--resize", "letterbox",
                             "--postprocess", "twobox:read", "--score-threshold", "0.95")
    assert code == 0, stderr
    assert [t["score"] for t in lines(strict)[0]["targets"]] == [1.0]  # 0.9 < 0.95


def test_python_api_gives_each_box_and_its_map(tmp_path: Path, photos: list[Path]) -> None:
    import xaigraph.explain

    model = dm.save(dm.bright_box_detector(), tmp_path / "det.onnx")
    spec = prepare(model, method="rise", blackbox=BlackBoxOptions(num_masks=40),
                   preprocess_flags={"resize": "letterbox"})
    found = list(xaigraph.explain(spec, [str(p) for p in photos]))
    assert [e.key for e in found] == ["a", "b"]
    for e in found:
        (det,) = e.detections
        assert det["class"] == 1 and det["score"] == pytest.approx(1.0)
        np.testing.assert_allclose(det["box"], SQUARES[e.key], atol=1e-6)
        assert det["map"].shape == (dm.SIZE, dm.SIZE) and e.targets == [1]
        np.testing.assert_array_equal(e.maps[1], det["map"])


# -- the command, end to end ------------------------------------------------------------------

def map_peak(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The original pixels (ys, xs) where a jet palette map file has its highest colour."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int32)
    lut = render.lookup("jet").astype(np.int32)
    index = np.argmin(((rgb[..., None, :] - lut[None, None]) ** 2).sum(-1), axis=-1)
    return np.nonzero(index == index.max())


@pytest.mark.parametrize(("style", "args", "resize"), [
    ("boxes_labels_scores", ["--method", "rise", "--num-masks", "200"], "letterbox"),
    ("modelapi", ["--method", "aise"], "stretch"),
])
def test_explain_a_detector_end_to_end(tmp_path: Path, photos: list[Path], style: str,
                                       args: list[str], resize: str) -> None:
    model = dm.save(dm.bright_box_detector(style), tmp_path / f"{style}.onnx")
    out = tmp_path / "out"
    code, stdout, stderr = invoke("explain", model, *photos, "-o", out, *args, "--resize",
                                  resize, "--raw")
    assert code == 0, stderr
    assert "a detector" in stdout
    run = json.loads((out / "run.json").read_text())
    assert run["detector_output"] == style
    for record in lines(out):
        assert record["detector_output"] == style and record["method"] == args[1]
        assert record["method_reason"] == run["method"]["why"]
        (target,) = record["targets"]
        square = SQUARES[record["key"]]
        np.testing.assert_allclose(target["box"], square, atol=1.5)
        assert target["class"] == 1 and target["score"] == pytest.approx(1.0)
        ys, xs = map_peak(out / target["map"])
        x1, y1, x2, y2 = target["box"]
        assert ((xs >= x1 - 1) & (xs < x2 + 1) & (ys >= y1 - 1) & (ys < y2 + 1)).all()
        raw = np.load(out / target["raw"])
        assert raw.shape == (dm.SIZE, dm.SIZE)
        overlay = np.asarray(Image.open(out / target["overlay"]).convert("RGB"))
        assert overlay.shape == (HEIGHT + legend.margin_height(WIDTH), WIDTH, 3)
        left = round(x1)
        edge = overlay[int(y1) + 2:int(y2) - 2, left]
        assert (edge == np.asarray(render.BOX_COLOUR)).all()


def identity_model(tmp_path: Path) -> Path:
    """Neither a classifier nor a detector: the input comes back out."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 48, 48])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 48, 48])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return dm.save(model, tmp_path / "identity.onnx")


@pytest.mark.parametrize("case", ["forced_yolo", "unrecognised", "forced_on_classifier"])
def test_bad_detector_outputs_are_one_line_and_write_nothing(
        tmp_path: Path, photos: list[Path], cnn_file: Callable[..., Path], case: str) -> None:
    if case == "forced_yolo":
        model, extra = dm.save(dm.bright_box_detector(), tmp_path / "d.onnx"), [
            "--detector-output", "yolo"]
    elif case == "unrecognised":
        model, extra = identity_model(tmp_path), []
    else:
        model, extra = cnn_file("gap_fc", False, "onnx17"), ["--detector-output", "modelapi"]
    out = tmp_path / "out"
    code, _, stderr = invoke("explain", model, photos[0], "-o", out, "--method", "rise",
                             "--num-masks", "8", *extra)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert "readers: " + ", ".join(READERS) in stderr
    assert not out.exists()


def test_auto_says_which_method_and_why_on_every_line(
        tmp_path: Path, photos: list[Path], cnn_file: Callable[..., Path]) -> None:
    classifier = cnn_file("gap_fc", False, "onnx17")
    detector = dm.save(dm.bright_box_detector(), tmp_path / "det.onnx")
    for model, method, words in ((classifier, "reciprocam", "auto: a CNN"),
                                 (detector, "rise", "auto: no white-box method applies")):
        out = tmp_path / f"out_{method}"
        code, stdout, stderr = invoke("explain", model, *photos, "-o", out, "--num-masks",
                                      "20")
        assert code == 0, stderr
        why = json.loads((out / "run.json").read_text())["method"]["why"]
        assert why.startswith(words) and why in stdout
        records = lines(out)
        assert len(records) == 2
        assert all(r["method"] == method and r["method_reason"] == why for r in records)
    assert "D-RISE" in why and "boxes_labels_scores" in why

"""The Python API `xaigraph.explain(model, images, ...)` (maps as arrays, predictions,
`save()`, `overlay()`, errors), detectors' per-class maps (`detclassprobabilitymap`) through
explain, class names (`--labels FILE`, ImageNet's for K = 1000) and `--runtime` for .onnx."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from PIL import Image

import xaigraph
from tests import tiny_onnx
from xaigraph.cli import cli
from xaigraph.explain import legend
from xaigraph.explain.plan import prepare
from xaigraph.session import Session


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def write_photos(folder: Path, n: int = 3, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"p{i}.png"
        Image.fromarray(rng.integers(0, 256, (20 + 2 * i, 28, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture()
def model(cnn_file: Callable[..., Path]) -> Path:
    return cnn_file("gap_fc", False, "onnx17")


# -- the Python API -------------------------------------------------------------------------------

def test_api_yields_maps_predictions_save_and_overlay(model: Path, tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "photos")
    (paths[0].parent / "broken.png").write_text("not an image")
    found = list(xaigraph.explain(model, [paths[0].parent], targets="topk:2"))
    assert [e.key for e in found] == ["broken", "p0", "p1", "p2"]  # sorted, in order
    bad, *good = found
    assert not bad.ok and "broken.png" in bad.error and not bad.maps
    with pytest.raises(ValueError, match="no explanation"):
        bad.overlay()
    for ex, path in zip(good, paths, strict=True):
        assert ex.ok and ex.path == path
        with Image.open(path) as im:
            assert (ex.width, ex.height) == im.size
        assert len(ex.targets) == 2
        for cls, m in ex.maps.items():
            assert isinstance(m, np.ndarray) and m.dtype == np.float32 and m.ndim == 2
            assert m.min() >= 0.0 and m.max() <= 1.0
            assert 0 <= cls < tiny_onnx.CLASSES
        assert isinstance(ex.scores, np.ndarray) and ex.scores.shape == (tiny_onnx.CLASSES,)
        top = [p["class"] for p in ex.predictions]
        assert top[:2] == ex.targets  # the targets are the top 2 predictions
        assert [p["score"] for p in ex.predictions] == sorted(
            (p["score"] for p in ex.predictions), reverse=True)
        assert ex.predictions[0]["label"] == f"class {top[0]}"
        over = ex.overlay()
        assert over.mode == "RGB" and over.size == (
            ex.width, ex.height + legend.margin_height(ex.width))  # the colour scale below
        bare = ex.overlay(legend=False)
        assert bare.size == (ex.width, ex.height)
        assert np.array_equal(np.asarray(over)[:ex.height], np.asarray(bare))
        second = ex.overlay(ex.targets[1], opacity=1.0)
        assert np.asarray(second).tolist() != np.asarray(over).tolist()
        colour = ex.colour()
        assert colour.mode == "RGBA" and colour.size == (ex.width, ex.height)
        with pytest.raises(ValueError, match="no map"):
            ex.overlay(next(c for c in range(tiny_onnx.CLASSES) if c not in ex.maps))

    # save() writes the files `xaigraph explain` writes, with the same names and pixels
    api_out, cli_out = tmp_path / "api", tmp_path / "cli"
    records = [ex.save(api_out) for ex in good]
    code, _, stderr = invoke("explain", model, *paths, "-o", cli_out, "--targets", "topk:2")
    assert code == 0, stderr
    for record, line in zip(records, lines(cli_out), strict=True):
        assert record["targets"] == line["targets"] and record["predictions"] == line[
            "predictions"]
        for t in record["targets"]:
            for kind in ("map", "overlay"):
                with Image.open(api_out / t[kind]) as a, Image.open(cli_out / t[kind]) as b:
                    assert np.array_equal(np.asarray(a), np.asarray(b))
    with Image.open(api_out / records[0]["targets"][0]["overlay"]) as saved:
        assert np.array_equal(np.asarray(saved), np.asarray(good[0].overlay()))


def test_api_takes_a_target_object_as_it_takes_its_text(model: Path) -> None:
    from xaigraph.explain.targets import Classes, TopK

    image = Image.fromarray(np.random.default_rng(5).integers(0, 256, (30, 40, 3), np.uint8))
    for text, target in (("topk:2", TopK(2)), ("3,1", Classes((3, 1)))):
        (by_text,) = xaigraph.explain(model, image, targets=text)
        (by_object,) = xaigraph.explain(model, image, targets=target)
        assert by_object.targets == by_text.targets and len(by_text.targets) == 2
        for c in by_text.targets:
            np.testing.assert_array_equal(by_object.maps[c], by_text.maps[c])
    (top,) = xaigraph.explain(model, image, targets=TopK(2))
    assert top.targets == [int(c) for c in np.argsort(-top.scores, kind="stable")[:2]]


def test_api_takes_pil_images_and_raw_maps(model: Path) -> None:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3),
                                                              dtype=np.uint8))
    (ex,) = xaigraph.explain(model, image, raw=True)  # one image, not a list
    assert ex.key == "image_0" and ex.image.size == image.size
    (cls,) = ex.targets
    assert ex.raw[cls].dtype == np.float32 and ex.raw[cls].shape == ex.maps[cls].shape
    r = ex.raw[cls]
    np.testing.assert_allclose(ex.maps[cls], (r - r.min()) / (r.max() - r.min()), atol=1e-6)
    with pytest.raises(TypeError):
        list(xaigraph.explain(model, [image, "x.png"]))


# -- detectors -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detector(detector_file: Callable[..., Path]) -> Callable[[str], Path]:
    def get(route: str) -> Path:
        return detector_file(3, route)

    return get


@pytest.mark.parametrize(("route", "runtime"), [("onnx17", "onnxruntime"),
                                                ("ov_dynbatch", "openvino")])
def test_detector_gives_per_class_maps(detector: Callable[[str], Path], tmp_path: Path,
                                       route: str, runtime: str) -> None:
    plain = detector(route)
    spec = prepare(plain, targets="all")
    assert spec.detector and spec.method == "detclassprobabilitymap"
    assert "detector" in spec.method_reason and spec.num_classes == tiny_onnx.DET_CLASSES
    aug = tmp_path / ("det_aug.onnx" if runtime == "onnxruntime" else "det_aug.xml")
    xaigraph.save(xaigraph.insert(plain, "detclassprobabilitymap",
                                  output_format="onnx" if aug.suffix == ".onnx" else "ir"),
                  aug)
    rng = np.random.default_rng(2)
    images = [Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
              for _ in range(3)]
    for model in (plain, aug):  # in memory, and augmented on disk
        found = list(xaigraph.explain(model, images, targets="all", runtime=runtime))
        for ex, image in zip(found, images, strict=True):
            x = spec.preprocess.apply(image)
            maps = Session.open(aug, runtime).run([x], outputs=["saliency_map"])[0][0]
            assert maps.shape == (tiny_onnx.DET_CLASSES, 8, 8)
            assert ex.targets == list(range(tiny_onnx.DET_CLASSES))
            for c in ex.targets:  # in memory: float maps scaled on the host (half a level)
                np.testing.assert_allclose(ex.maps[c], maps[c].astype(np.float32) / 255,
                                           rtol=0, atol=0 if model == aug else 0.5 / 255 + 1e-5)
    # the CLI writes one map and overlay per class
    photo = tmp_path / "street.png"
    images[0].save(photo)
    out = tmp_path / "out"
    code, _, stderr = invoke("explain", plain, photo, "-o", out, "--targets", "topk:3")
    assert code == 0, stderr
    (r,) = lines(out)
    assert r["method"] == "detclassprobabilitymap" and len(r["targets"]) == 3
    assert len({t["class"] for t in r["targets"]}) == 3
    for t in r["targets"]:
        with Image.open(out / t["map"]) as m:
            assert m.size == (30, 20)
        assert (out / t["overlay"]).is_file()


# -- class names and --runtime ---------------------------------------------------------------------

def test_labels_file_names_classes(model: Path, tmp_path: Path) -> None:
    (photo,) = write_photos(tmp_path / "photos", 1)
    names = ["cat", "tiger cat", "dog", "red fox", "owl"]
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(names) + "\n")
    out = tmp_path / "out"
    code, _, stderr = invoke("explain", model, photo, "-o", out, "--labels", labels,
                             "--targets", "tiger cat,3")
    assert code == 0, stderr
    (r,) = lines(out)
    assert [t["label"] for t in r["targets"]] == ["tiger cat", "red fox"]
    assert [t["class"] for t in r["targets"]] == [1, 3]
    assert r["targets"][0]["map"].startswith("maps/p0_tiger_cat_")
    assert all(p["label"] == names[p["class"]] for p in r["predictions"])
    assert json.loads((out / "run.json").read_text())["labels"] == names
    labels.write_text("cat\ndog\n")  # 2 names for 5 classes
    code, _, stderr = invoke("explain", model, photo, "-o", tmp_path / "out2", "--labels",
                             labels)
    assert code == 2 and "2 names" in stderr and not (tmp_path / "out2").exists()


def test_imagenet_names_when_k_is_1000_and_nothing_else_says(tmp_path: Path) -> None:
    data = resources.files("xaigraph.data")
    with resources.as_file(data / "efficientnet_lite0.onnx") as bundled, \
            resources.as_file(data / "chelsea.png") as chelsea:
        proto = onnx.load(bundled)
        photo = Image.open(chelsea).convert("RGB")
    kept = [p for p in proto.metadata_props if "labels" not in p.key]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)  # preprocessing kept, labels gone
    plain = tmp_path / "nolabels.onnx"
    onnx.save(proto, plain)
    from xaigraph import model_info

    assert model_info.read(onnx.load(plain)).labels is None
    (ex,) = xaigraph.explain(plain, [photo])
    assert ex.predictions[0]["label"] == "tiger cat"


def test_runtime_choice_for_onnx(model: Path, tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "photos", 2)
    got = {}
    for runtime in ("onnxruntime", "openvino"):
        out = tmp_path / runtime
        code, _, stderr = invoke("explain", model, *paths, "-o", out, "--runtime", runtime,
                                 "--raw", "--targets", "all")
        assert code == 0, stderr
        assert json.loads((out / "run.json").read_text())["runtime"] == runtime
        got[runtime] = [[np.load(out / t["raw"]) for t in r["targets"]] for r in lines(out)]
    for a, b in zip(got["onnxruntime"], got["openvino"], strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    ir = tmp_path / "m.xml"
    xaigraph.save(xaigraph.insert(model, "reciprocam", output_format="ir"), ir)
    code, _, stderr = invoke("explain", ir, *paths, "-o", tmp_path / "bad", "--runtime",
                             "onnxruntime")
    assert code == 2 and "ONNX Runtime runs .onnx" in stderr
    assert not (tmp_path / "bad").exists()


def test_readme_explain_example_prints_what_it_says(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import io
    import re

    readme = Path(__file__).resolve().parents[2] / "README.md"
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", readme.read_text(), re.S | re.M)
    index = next(i for i, (info, body) in enumerate(blocks)
                 if info == "python" and "xaigraph.explain(" in body
                 and "example_input" not in body)  # the PyTorch lines: test_torch_in.py
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(blocks[index][1], "README explain example", "exec"), {})
    assert printed.getvalue() == blocks[index + 1][1]
    for name in ("chelsea_overlay.png", "chelsea_egyptian.png",
                 "out_api/overlays/chelsea_tiger_cat_0.41.png"):
        assert (tmp_path / name).is_file()


def test_rise_same_seed_same_maps_on_either_engine(model: Path, tmp_path: Path) -> None:
    """Black-box RISE on an .onnx model runs on OpenVINO by default (masks made inside the
    model); ONNX Runtime (masks made on the host) gives the same raw maps."""
    paths = write_photos(tmp_path / "photos", 2)
    got = {}
    for runtime in (None, "onnxruntime"):
        out = tmp_path / str(runtime)
        extra = ["--runtime", runtime] if runtime else []
        code, _, stderr = invoke("explain", model, *paths, "-o", out, "--method", "rise",
                                 "--num-masks", "64", "--mask-cells", "4", "--seed", "11",
                                 "--raw", *extra)
        assert code == 0, stderr
        assert json.loads((out / "run.json").read_text())["runtime"] == (runtime or "openvino")
        got[runtime] = [[np.load(out / t["raw"]) for t in r["targets"]] for r in lines(out)]
    for a, b in zip(got[None], got["onnxruntime"], strict=True):
        assert len(a) == len(b) == 1
        span = float(b[0].max() - b[0].min())
        assert span > 0
        assert np.abs(a[0] - b[0]).max() <= 1e-5 * span + 1e-7


def test_precision_reaches_both_sessions_and_run_json(model: Path, tmp_path: Path) -> None:
    """--precision bf16 compiles the class session and RISE's masked model in bf16 (where the
    CPU has it), is part of run.json's options, and keeps the maps near f32's; f32 runs
    keep their run.json (no precision key) and so their digest."""
    import openvino as ov

    from xaigraph.explain.explainer import Explainer

    photo = write_photos(tmp_path / "photos", 1)[0]
    has_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    raws, runs = {}, {}
    for precision in ("f32", "bf16"):
        out = tmp_path / precision
        code, _, stderr = invoke("explain", model, photo, "-o", out, "--method", "rise",
                                 "--num-masks", "96", "--mask-cells", "4", "--raw",
                                 "--precision", precision)
        assert code == 0, stderr
        runs[precision] = json.loads((out / "run.json").read_text())
        raws[precision] = np.load(out / lines(out)[0]["targets"][0]["raw"])
    assert "precision" not in runs["f32"]["options"]
    assert runs["bf16"]["options"]["precision"] == "bf16"
    assert runs["bf16"]["digest"] != runs["f32"]["digest"]
    a, b = raws["f32"], raws["bf16"]
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9

    explainer = Explainer(prepare(model, method="rise", precision="bf16"))
    assert explainer.session.precision == ("bf16" if has_bf16 else "f32")
    x = np.zeros((1, 3, tiny_onnx.SIZE, tiny_onnx.SIZE), np.float32)
    assert explainer._mask_runner(x) is not None
    masked, _ = explainer._masked.session(4, (tiny_onnx.SIZE, tiny_onnx.SIZE))
    assert masked.precision == explainer.session.precision


def test_precision_other_than_f32_is_openvinos(model: Path, tmp_path: Path) -> None:
    photo = write_photos(tmp_path / "photos", 1)[0]
    out = tmp_path / "out"
    code, _, stderr = invoke("explain", model, photo, "-o", out, "--runtime", "onnxruntime",
                             "--precision", "bf16")
    assert code == 2 and "ONNX Runtime runs f32" in stderr
    assert len(stderr.strip().splitlines()) == 1 and not out.exists()
    spec = prepare(model, precision="auto")  # an .onnx white-box run moves to OpenVINO
    assert spec.runtime == "openvino" and spec.hint is None
    assert prepare(model).runtime == "onnxruntime" and prepare(model).hint == "f32"


def test_a_model_without_a_feature_map_is_explained_by_rise(tmp_path: Path) -> None:
    """Flatten > MatMul > Softmax: no 4-D map for any white-box method, but its [N, K]
    output holds the class scores. auto takes RISE, the scores are the model's own (its
    Softmax not applied twice) and the raw map is the paper's sum one mask at a time."""
    from onnx import TensorProto, helper, numpy_helper

    from tests.explain.test_rise import close, reference_rise
    from xaigraph.explain.blackbox import BlackBoxOptions

    weights = np.random.default_rng(4).normal(0, 0.02, (3 * 16 * 16, 5)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["z"]),
         helper.make_node("Softmax", ["z"], ["p"], axis=1)], "flat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 5])],
        [numpy_helper.from_array(weights, "w")])
    flat = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    flat.ir_version = 8
    path = tmp_path / "flat.onnx"
    onnx.save(flat, str(path))
    image = Image.fromarray(np.random.default_rng(5).integers(0, 256, (16, 16, 3), np.uint8))

    spec = prepare(path)
    assert spec.method == "rise" and "no white-box method applies" in spec.method_reason
    assert spec.num_classes == 5 and spec.activation == "softmax"
    options = BlackBoxOptions(num_masks=64, cells=4, prob=0.5, seed=3)
    (ex,) = xaigraph.explain(path, image, raw=True, blackbox=options)
    session = Session.open(path, "onnxruntime")
    x = spec.preprocess.apply(image)
    np.testing.assert_allclose(ex.scores, session.run([x])[0][0], rtol=1e-5, atol=1e-6)
    (target,) = ex.targets
    black = spec.preprocess.apply(Image.new("RGB", (16, 16)))
    want = reference_rise(x, lambda b: session.run([b])[0], [target], 64, 4, 0.5, 3, black)
    close(ex.raw[target], want[0])

"""`xaigraph explain`: files and results.jsonl per docs/runtime.md, resume and --force, bad
images (exit 3), bad usage (exit 2, nothing written), --json, and the bundled model with no
flags."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from xaigraph.cli import cli
from xaigraph.explain import legend, render
from xaigraph.session import Session


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate(["a.png", "b.jpg", "sub/c.png"]):
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(
            folder / name)
    return folder


@pytest.fixture()
def model(cnn_file: Callable[..., Path]) -> Path:
    return cnn_file("gap_fc", False, "onnx17")


def test_files_and_results(model: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = invoke("explain", model, photos, "-o", out, "--targets", "topk:2",
                                  "--raw")
    assert code == 0, stderr
    records = lines(out)
    assert [r["key"] for r in records] == ["a", "b", "sub/c"]  # input order: sorted
    run = json.loads((out / "run.json").read_text())
    assert run["method"]["name"] == "reciprocam" and run["model"]["sha256"]
    assert run["pipeline"].startswith("detect-target")
    for i, r in enumerate(records):
        assert r["index"] == i and r["status"] == "ok" and r["run"] == run["digest"]
        with Image.open(photos / r["path"].split("photos/")[1]) as im:
            assert (r["width"], r["height"]) == im.size
        assert r["method"] == "reciprocam" and set(r["timings"]) == {"decode", "infer",
                                                                     "write"}
        assert len(r["predictions"]) == 5 and len(r["targets"]) == 2
        scores = [p["score"] for p in r["predictions"]]
        assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-3
        for t in r["targets"]:
            assert t["map"] == f"maps/{r['key']}_{t['class']}_{t['score']:.2f}.png"
            assert t["overlay"] == f"overlays/{r['key']}_{t['class']}_{t['score']:.2f}.png"
            assert t["raw"] == f"raw/{r['key']}_{t['class']}.npy"
            with Image.open(out / t["map"]) as m:
                assert m.mode in ("P", "RGBA") and m.size == (r["width"], r["height"])
            with Image.open(out / t["overlay"]) as o:
                # the colour scale in a margin below the photo (--no-legend: none)
                assert o.mode == "RGB" and o.size == (
                    r["width"], r["height"] + legend.margin_height(r["width"]))
            assert np.load(out / t["raw"]).dtype == np.float32
    assert not list(out.rglob("*.xaigraph-tmp")) and not (out / ".results.jsonl.partial"
                                                          ).exists()
    assert "3 explained" in stdout


def test_map_png_is_the_models_map_coloured(model: Path, tmp_path: Path) -> None:
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (16, 16, 3),
                                                              dtype=np.uint8))
    image.save(tmp_path / "x.png")
    out = tmp_path / "out"
    assert invoke("explain", model, tmp_path / "x.png", "-o", out, "--raw", "--no-overlay",
                  "--colormap", "gray")[0] == 0
    (r,) = lines(out)
    (t,) = r["targets"]
    assert t["overlay"] is None and not (out / "overlays").exists()
    raw = np.load(out / t["raw"])  # the model's float scores (--raw: no in-graph scaling)
    x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[None]  # 16x16: no resize
    from xaigraph import model_info

    pre = model_info.read(__import__("onnx").load(model)).input
    assert pre is not None
    x = pre.apply(image)
    logits = Session.open(model).run([x])[0][0]
    assert t["class"] == int(np.argmax(logits))
    with Image.open(out / t["map"]) as m:
        assert m.mode == "P"  # the model sees the whole image: a palette PNG
        rgba = np.asarray(m.convert("RGBA"))
    unit = (raw - raw.min()) / (raw.max() - raw.min())
    values, seen = render.resample(unit, pre.placement(16, 16), 16, 16, pre.size)
    assert seen.all()
    grey = np.floor(values * 255 + 0.5)
    assert np.abs(rgba[..., 0].astype(float) - grey).max() <= 1
    assert (rgba[..., 3] == 255).all()


def test_resume_skips_and_force_redoes(model: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert invoke("explain", model, photos, "-o", out)[0] == 0
    first = lines(out)
    stamp = {f: (out / f).stat().st_mtime_ns for r in first for t in r["targets"]
             for f in (t["map"], t["overlay"])}
    os.remove(out / first[1]["targets"][0]["map"])  # b's map lost: b is redone
    code, stdout, _ = invoke("explain", model, photos, "-o", out, "--json")
    report = json.loads(stdout)
    assert code == 0 and report["skipped"] == 2 and report["explained"] == 1
    assert lines(out)[0] == first[0] and lines(out)[2] == first[2]
    assert (out / first[1]["targets"][0]["map"]).exists()
    for f in (first[0]["targets"][0]["map"], first[2]["targets"][0]["overlay"]):
        assert (out / f).stat().st_mtime_ns == stamp[f]  # untouched
    code, stdout, _ = invoke("explain", model, photos, "-o", out, "--json", "--force")
    report = json.loads(stdout)
    assert code == 0 and report["skipped"] == 0 and report["explained"] == 3


def test_other_options_are_refused_without_force(model: Path, photos: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert invoke("explain", model, photos, "-o", out)[0] == 0
    before = (out / "results.jsonl").read_text()
    code, _, stderr = invoke("explain", model, photos, "-o", out, "--targets", "all")
    assert code == 2 and "--force" in stderr and len(stderr.strip().splitlines()) == 1
    assert (out / "results.jsonl").read_text() == before
    code, _, _ = invoke("explain", model, photos, "-o", out, "--targets", "all", "--force")
    assert code == 0 and all(len(r["targets"]) == 5 for r in lines(out))


def test_bad_image_is_an_error_line_and_status_3(model: Path, photos: Path,
                                                 tmp_path: Path) -> None:
    (photos / "broken.png").write_bytes((photos / "a.png").read_bytes()[:60])  # truncated
    (photos / "text.jpg").write_text("not an image")
    out = tmp_path / "out"
    code, stdout, stderr = invoke("explain", model, photos, "-o", out, "--json")
    assert code == 3
    report = json.loads(stdout)
    assert report["ok"] is False and report["exit_code"] == 3 and report["errors"] == 2
    records = {r["key"]: r for r in lines(out)}
    assert set(records) == {"a", "b", "broken", "sub/c", "text"}
    for key in ("broken", "text"):
        r = records[key]
        assert r["status"] == "error" and set(r) == {"index", "path", "key", "status",
                                                     "error", "run"}
        assert "\n" not in r["error"]
        assert sum(key in line for line in stderr.splitlines()) == 1
    assert all(records[k]["status"] == "ok" for k in ("a", "b", "sub/c"))
    assert all((out / t["map"]).exists() for k in ("a", "b", "sub/c")
               for t in records[k]["targets"])
    code, stdout, _ = invoke("explain", model, photos, "-o", out, "--json")  # errors retried
    assert code == 3 and json.loads(stdout)["skipped"] == 3


def test_usage_errors_write_nothing(model: Path, photos: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    bad_coco = tmp_path / "instances_val.json"
    bad_coco.write_text("{not json")
    cases = [
        ("explain", tmp_path / "missing.onnx", photos, "-o", out),
        ("explain", model, tmp_path / "missing.png", "-o", out),
        ("explain", model, bad_coco, "-o", out),
        ("explain", model, photos, "-o", out, "--targets", "topk:0"),
    ]
    for args in cases:
        code, stdout, stderr = invoke(*args, "--json")
        assert code == 2, (args, stderr)
        assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
        assert json.loads(stdout)["ok"] is False
        assert not out.exists(), args
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:  # root may write anywhere:
        return False if Path(path) == locked else real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)  # the permission as a user would have it
    code, _, stderr = invoke("explain", model, photos, "-o", locked / "out")
    assert code == 2 and "permission denied" in stderr
    assert not (locked / "out").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    for target in (afile, afile / "out"):
        code, _, stderr = invoke("explain", model, photos, "-o", target)
        assert code == 2 and afile.read_text() == "x", stderr


def test_ir_and_static_batch_on_openvino(cnn_file: Callable[..., Path], photos: Path,
                                         tmp_path: Path) -> None:
    results = {}
    for route in ("ov_static", "ov_dynbatch"):
        out = tmp_path / route
        code, _, stderr = invoke("explain", cnn_file("gap_fc", False, route), photos, "-o",
                                 out, "--targets", "all", "--raw", "--batch-size", "2")
        assert code == 0, stderr
        results[route] = lines(out)
        for r in results[route]:
            for t in r["targets"]:
                t["raw"] = np.load(out / t["raw"]).tolist()
    for a, b in zip(results["ov_static"], results["ov_dynbatch"], strict=True):
        assert [t["class"] for t in a["targets"]] == [t["class"] for t in b["targets"]]
        for ta, tb in zip(a["targets"], b["targets"], strict=True):
            np.testing.assert_allclose(ta["raw"], tb["raw"], rtol=1e-5, atol=1e-6)


def test_bundled_model_needs_no_flags(tmp_path: Path) -> None:
    data = resources.files("xaigraph.data")
    with resources.as_file(data / "efficientnet_lite0.onnx") as model, \
            resources.as_file(data / "chelsea.png") as photo:
        shutil.copy(photo, tmp_path / "chelsea.png")
        out = tmp_path / "out"
        code, _stdout, stderr = invoke("explain", model, tmp_path / "chelsea.png", "-o", out)
    assert code == 0, stderr
    (r,) = lines(out)
    assert (r["width"], r["height"]) == (451, 300)
    top = r["predictions"][0]
    assert top["label"] == "tiger cat" and top["score"] == pytest.approx(0.409, abs=0.002)
    (t,) = r["targets"]
    assert t["map"] == "maps/chelsea_tiger_cat_0.41.png"
    with Image.open(out / t["map"]) as m:
        alpha = np.asarray(m)[..., 3]
    # the centre crop: 224/256 of the short side, 262 px square in the middle
    cols = np.flatnonzero(alpha[150] == 255)
    assert alpha[:, :90].max() == 0 and alpha[:, 360:].max() == 0
    assert 255 <= len(cols) <= 265

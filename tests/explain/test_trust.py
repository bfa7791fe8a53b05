"""eval's sanity checks (`--metrics sanity`, `xaigraph.explain.trust`) on a tiny CNN: each
image's cascading MPRT figures against a re-run one image at a time (the randomised copy
made with the same seed, run by ONNX Runtime directly, scipy's Spearman), class sensitivity
against scipy, a class-free method without a classifier step, a black-box method skipped,
and the tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy.stats import spearmanr

from xaigraph import api, randomise
from xaigraph.cli import cli
from xaigraph.explain import trust
from xaigraph.explain.evaluate import parse_metrics
from xaigraph.explain.inputs import collect
from xaigraph.explain.io.decode import decode
from xaigraph.explain.plan import prepare


@pytest.fixture(scope="module")
def model(cnn_file: Callable[..., Path]) -> Path:
    return cnn_file("gap_fc", False, "onnx17")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(4)
    for name in ("class 1", "class 3"):
        (root / name).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(
                root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def evaluated(model: Path, data: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("eval") / "out"
    done = CliRunner().invoke(cli, ["eval", str(model), f"classes:{data}", "-o", str(out),
                                    "--methods", "reciprocam,activationmap,rise",
                                    "--num-masks", "40", "--metrics", "sanity,pointing_game",
                                    "--resamples", "100"])
    assert done.exit_code == 0, done.output
    doc = json.loads((out / "metrics.json").read_text())
    doc["_md"] = (out / "metrics.md").read_text()
    doc["_out"] = done.stdout
    return doc


def _maps(session: ort.InferenceSession, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, {session.get_inputs()[0].name: x}), strict=True))
    maps = got["saliency_map"]
    return (maps[:, None] if maps.ndim == 3 else maps), got[names[0]]


def test_mprt_and_class_sensitivity_one_image_at_a_time(evaluated: dict[str, Any],
                                                        model: Path, data: Path) -> None:
    spec = prepare(model, method="reciprocam")
    analysed = api.analyse(model, output_format="onnx")
    view, target = analysed.view, analysed.ctx.target
    augmented = api.insert(analysed, "reciprocam", scaling=False, validate=False,
                           sanity="off").model
    original = ort.InferenceSession(augmented.SerializeToString())
    copies = [ort.InferenceSession(c.SerializeToString()) for _, c in
              randomise.cascade_models(analysed.ctx.backend, augmented, view, target, seed=0)]
    rows = {r["key"]: r for r in evaluated["sanity"]["images"] if r["method"] == "reciprocam"}
    assert len(rows) == 6
    for item in collect([f"classes:{data}"]).items:
        x = np.asarray(decode(item, spec.preprocess).input)[None]
        before, scores = _maps(original, x)
        top, least = int(scores[0].argmax()), int(scores[0].argmin())
        row = rows[item.key]
        assert row["class"] == top
        expected = spearmanr(before[0, top].ravel(), before[0, least].ravel()).statistic
        assert row["class_sensitivity"] == pytest.approx(expected, abs=1e-9)
        assert len(row["mprt"]) == len(copies)
        for step, copy in zip(row["mprt"], copies, strict=True):
            after, _ = _maps(copy, x)
            rho = spearmanr(np.abs(before[0, top]).ravel(), np.abs(after[0, top]).ravel())
            assert step["spearman"] == pytest.approx(rho.statistic, abs=1e-9)


def test_summary_class_free_and_black_box(evaluated: dict[str, Any]) -> None:
    block = evaluated["sanity"]
    recip = block["summary"]["reciprocam"]
    first = recip["cascade"][0]
    assert first["step"] == "1. classifier"
    values = [r["mprt"][0]["spearman"] for r in block["images"]
              if r["method"] == "reciprocam"]
    assert first["spearman"]["mean"] == pytest.approx(np.mean(values))
    assert first["passed"] == (first["spearman"]["mean"] <= trust.THRESHOLD)
    low, high = first["spearman"]["ci95"]
    assert low <= first["spearman"]["mean"] <= high
    act = block["summary"]["activationmap"]
    assert all("classifier" not in c["step"] for c in act["cascade"])  # never read
    assert act["class_sensitivity"]["n"] == 0 and act["class_sensitivity_passed"] is None
    assert "black-box" in block["summary"]["rise"]["skipped"]
    assert "Can these maps be trusted?" in evaluated["_md"]
    assert "Can these maps be trusted?" in evaluated["_out"]
    assert "- rise: not measured (a black-box method" in evaluated["_md"]


def test_all_asks_for_sanity() -> None:
    assert parse_metrics("all")[-1] == "sanity"
    assert parse_metrics("sanity") == ("sanity",)

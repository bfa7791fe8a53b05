"""Issue 22 in the report's data: a wrong image's `wr`, each target's `role` and flag, the
methods' rank correlations (against scipy) and the pair that disagrees most (against numpy's
Pearson), computed on the same grid as the disagreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from tests.explain.report_fixtures import Img, write_eval
from xaigraph.explain.report import (
    DIS_SIZE,
    build_report,
    disagreeing_pair,
    roles_of,
    spearman,
    wrong,
)


def grid_maps() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    smooth = rng.random((DIS_SIZE, DIS_SIZE))
    ties = np.round(rng.random((DIS_SIZE, DIS_SIZE)) * 4) / 4  # many ties
    holes = rng.random((DIS_SIZE, DIS_SIZE))
    holes[:5] = np.nan  # outside the part the model sees
    return [smooth, ties, holes, smooth ** 3, -smooth]


@pytest.mark.parametrize("i, j", [(0, 1), (0, 2), (1, 2), (0, 3), (0, 4), (2, 4)])
def test_spearman_is_scipys(i: int, j: int) -> None:
    a, b = grid_maps()[i], grid_maps()[j]
    both = ~(np.isnan(a) | np.isnan(b))
    want = spearmanr(a[both], b[both]).statistic
    assert spearman(a, b) == pytest.approx(want, abs=1e-12)


def test_spearman_undefined_cases() -> None:
    a = grid_maps()[0]
    assert spearman(a, np.full_like(a, 0.5)) is None  # scipy: nan
    assert spearman(a, np.full_like(a, np.nan)) is None
    assert spearman(a, a ** 3) == pytest.approx(1.0)  # same order, other values


def test_the_disagreeing_pair_is_the_least_correlated() -> None:
    maps = grid_maps()[:4]
    names = ["a", "b", "c", "d"]
    worst = None
    for i in range(4):
        for j in range(i + 1, 4):
            x, y = maps[i].ravel(), maps[j].ravel()
            ok = ~(np.isnan(x) | np.isnan(y))
            value = 1 - np.corrcoef(x[ok], y[ok])[0, 1]
            if worst is None or value > worst[2]:
                worst = (names[i], names[j], value)
    got = disagreeing_pair(maps, names)
    assert got is not None and worst is not None
    assert got[:2] == worst[:2] and got[2] == pytest.approx(worst[2], abs=1e-12)
    assert disagreeing_pair(maps[:1], names[:1]) is None


def test_wrong_and_roles_by_the_flags_rule() -> None:
    assert wrong([("tiger cat", 0.45), ("golden retriever", 0.4)], ["golden retriever"]) == [
        "tiger cat", 0.45]
    assert wrong([("tabby, tabby cat", 0.5)], ["tabby cat"]) is None  # one of its names
    assert wrong([("tiger cat", 0.45)], []) is None  # no ground truth: never wrong
    record = {"predictions": [{"class": 2, "label": "b", "score": 0.3},
                              {"class": 1, "label": "a", "score": 0.6}],
              "targets": [{"class": 1, "label": "a"}, {"class": 2, "label": "b"},
                          {"class": 3, "label": "c"}]}
    assert roles_of(record, ["B"]) == ["predicted", "truth", None]
    assert roles_of(record, ["a"]) == ["both", None, None]
    assert roles_of(record, []) == [None, None, None]
    record["targets"][0]["role"] = "truth"  # the record's own roles win
    assert roles_of(record, ["a"]) == ["truth", None, None]


def test_data_js_has_the_roles_the_errors_and_the_rank_correlations(tmp_path: Path) -> None:
    images = [
        Img("hairless", truth=["sorrel"], targets=1, roles=["predicted", "truth"],
            preds=[(268, "Mexican hairless", 0.87)], extra=[(339, "sorrel", 0.0)]),
        Img("fine", truth=["tiger cat"], targets=1, roles=["both"],
            preds=[(282, "tiger cat", 0.7)], peak=(0.2, 0.7)),
        Img("plain", targets=2),
    ]
    methods = {"reciprocam": (0.0, 0.0), "rise": (0.3, 0.1), "aise": (0.1, 0.4)}
    root = write_eval(tmp_path / "ev", images, methods, raw=True)
    for method in methods:  # as eval writes a wrong image: the truth first, the prediction extra
        results = root / method / "results.jsonl"
        lines = [json.loads(x) for x in results.read_text().splitlines()]
        lines[0]["targets"] = lines[0]["targets"][::-1]
        lines[0]["targets"][1]["extra"] = True
        results.write_text("".join(json.dumps(x) + "\n" for x in lines))
    index = build_report(root)
    text = (index.parent / "data.js").read_text(encoding="utf-8")
    d = json.loads(text[text.index("=") + 1:].rstrip().rstrip(";"))
    hairless, fine, plain = d["images"]
    for m in hairless["m"]:
        assert m["wr"] == ["Mexican hairless", 0.87]
        assert [(t["label"], t["role"], t["f"]) for t in m["t"]] == [
            ("sorrel", "truth", "FN"), ("Mexican hairless", "predicted", "FP")]
    assert [(t["role"], t["f"]) for t in fine["m"][0]["t"]] == [("both", "TP")]
    assert fine["m"][0]["wr"] is None and plain["m"][0]["wr"] is None
    assert [t["role"] for t in plain["m"][0]["t"]] == [None, None]
    # each class's Spearman, from the raw maps on the report's grid, by scipy
    def grids(key: str, label: str) -> list[np.ndarray]:
        out = []
        for method in methods:
            lines = (root / method / "results.jsonl").read_text().splitlines()
            record = next(r for r in map(json.loads, lines) if r["key"] == key)
            target = next(t for t in record["targets"] if t["label"] == label)
            raw = np.load(root / method / target["raw"]).astype(np.float32)
            out.append(np.asarray(Image.fromarray(raw).resize(
                (DIS_SIZE, DIS_SIZE), Image.Resampling.BILINEAR), np.float64))
        return out

    names = list(methods)
    for im in d["images"]:
        assert {(r["cls"], r["label"]) for r in im["rk"]} == {
            (t["cls"], t["label"]) for t in im["m"][0]["t"]}
        for r in im["rk"]:
            assert [(i, j) for i, j, _ in r["r"]] == [(0, 1), (0, 2), (1, 2)]
            g = grids(im["key"], r["label"])
            for i, j, value in r["r"]:
                want = spearmanr(g[i].ravel(), g[j].ravel()).statistic
                assert value == pytest.approx(round(want, 4), abs=1e-9)
        # the pair that disagrees most on the first class, by numpy's Pearson
        g = grids(im["key"], im["m"][0]["t"][0]["label"])
        apart = {(names[i], names[j]): 1 - np.corrcoef(g[i].ravel(), g[j].ravel())[0, 1]
                 for i, j in [(0, 1), (0, 2), (1, 2)]}
        worst = max(apart, key=lambda k: apart[k])
        assert tuple(im["dpair"][:2]) == worst
        assert im["dpair"][2] == pytest.approx(round(apart[worst], 4), abs=1e-9)

    # the wrong image's thumbnail is its predicted class's overlay (not the truth's, first)
    for k, method in enumerate(methods):
        record = json.loads((root / method / "results.jsonl").read_text().splitlines()[0])
        with Image.open(index.parent / hairless["m"][k]["thumb"]) as im:
            thumb = np.asarray(im.convert("RGB"), np.float64)
        apart = {}
        for t in record["targets"]:
            with Image.open(root / method / t["overlay"]) as im:
                small = im.convert("RGB").resize(thumb.shape[1::-1], Image.Resampling.BILINEAR)
            apart[t["label"]] = np.abs(np.asarray(small, np.float64) - thumb).mean()
        mine = apart["Mexican hairless"]
        assert mine < 6 and apart["sorrel"] > 3 * mine, apart

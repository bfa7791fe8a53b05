"""The sanity checks' figures (`xaigraph.sanity`) against independent computations: SSIM one
window at a time, Spearman by scipy's `spearmanr`, the border ring cell by cell; and the
degenerate-map findings on hand-made maps whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from xaigraph import sanity

C1, C2 = 0.01 ** 2, 0.03 ** 2


def ssim_by_windows(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """SSIM (Wang et al. 2004) with a uniform window, one window at a time."""
    h, w = a.shape
    size = min(window, h, w)
    if size % 2 == 0:
        size -= 1
    values = []
    for i in range(h - size + 1):
        for j in range(w - size + 1):
            x = a[i:i + size, j:j + size].ravel()
            y = b[i:i + size, j:j + size].ravel()
            mx, my = x.mean(), y.mean()
            vx, vy = ((x - mx) ** 2).mean(), ((y - my) ** 2).mean()
            cov = ((x - mx) * (y - my)).mean()
            values.append(((2 * mx * my + C1) * (2 * cov + C2))
                          / ((mx * mx + my * my + C1) * (vx + vy + C2)))
    return float(np.mean(values))


def border_by_cells(m: np.ndarray) -> float:
    n = (m - m.min()) / (m.max() - m.min())
    h, w = m.shape
    ring = sum(n[i, j] for i in range(h) for j in range(w) if i in (0, h - 1) or j in (0, w - 1))
    return float(ring / n.sum())


@pytest.mark.parametrize("shape", [(7, 7), (8, 8), (3, 5), (14, 14), (1, 6)])
def test_ssim_equals_the_window_by_window_reference(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    a, b = rng.random(shape), rng.random(shape)
    assert sanity.ssim(a, b) == pytest.approx(ssim_by_windows(a, b), abs=1e-12)
    assert sanity.ssim(a, a) == pytest.approx(1.0)
    if min(shape) >= 3:  # windows with structure: the inverted map is anti-correlated
        assert sanity.ssim(a, 1 - a) < 0


@pytest.mark.parametrize("seed", range(4))
def test_spearman_equals_scipy_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, (7, 7)).astype(float)  # many ties
    b = a + rng.normal(0, 1.5, (7, 7))
    assert sanity.spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel())[0])
    assert sanity.spearman(a, -a) == pytest.approx(-1.0)


def test_spearman_of_constant_maps() -> None:
    flat, varied = np.full((4, 4), 3.0), np.arange(16.0).reshape(4, 4)
    assert sanity.spearman(flat, varied) == 0.0  # nothing in common
    assert sanity.spearman(flat, flat * 2) == 1.0  # both without information


def test_border_share_equals_the_cell_by_cell_reference() -> None:
    m = np.random.default_rng(5).random((7, 9))
    assert sanity.border_share(m) == pytest.approx(border_by_cells(m))
    assert sanity.ring_cells(7, 7) == pytest.approx(24 / 49)
    assert sanity.border_share(np.ones((2, 5))) is None  # no interior


def test_normalise_scales_each_map_and_zeroes_constant_ones() -> None:
    maps = np.stack([np.arange(4.0).reshape(2, 2) * 3 + 1, np.full((2, 2), 7.0)])
    got = sanity.normalise(maps)
    assert np.allclose(got[0], [[0, 1 / 3], [2 / 3, 1]]) and np.all(got[1] == 0)


def _pattern(seed: int, shape: tuple[int, int] = (6, 6)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape)


def test_maps_the_same_for_every_input_are_no_information() -> None:
    base = _pattern(0)
    maps = np.stack([base * s + o for s, o in ((1, 0), (3, 2), (0.5, -1), (2, 7))])[:, None]
    found = sanity.degeneracy(maps, None, None)
    assert found.same_for_inputs < 1e-12
    assert found.input_rank_corr == pytest.approx(1.0)
    assert any("the same for every probe input" in f for f in found.no_information())


def test_maps_the_same_for_every_class_are_no_information() -> None:
    probes = [_pattern(p) for p in range(3)]
    maps = np.stack([[img * a + b for a, b in ((1, 0), (4, 1), (0.2, -3))] for img in probes])
    found = sanity.degeneracy(maps, [0, 0, 0], [2, 2, 2])
    assert found.same_for_classes is not None and found.same_for_classes < 1e-12
    assert found.class_rank_corr == pytest.approx(1.0)
    assert [f for f in found.no_information() if "every class" in f]
    assert not [f for f in found.no_information() if "every probe input" in f]


def test_constant_maps_are_no_information() -> None:
    maps = np.full((4, 3, 5, 5), 0.25)
    found = sanity.degeneracy(maps, [0] * 4, [1] * 4)
    assert found.constant == 4
    assert found.no_information() == ["is constant on every probe (4 probes)"]


def test_maps_that_vary_are_accepted_and_match_a_per_pair_reference() -> None:
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(4, 5, 7, 7))
    top, least = [int(rng.integers(5)) for _ in range(4)], [int(rng.integers(5)) for _ in range(4)]
    found = sanity.degeneracy(maps, top, least)
    assert found.no_information() == []
    pairs = [spearmanr(maps[p, top[p]].ravel(), maps[q, top[p]].ravel())[0]
             for p in range(4) for q in range(4) if p != q]
    assert found.input_rank_corr == pytest.approx(np.mean(pairs))
    signed = [spearmanr(maps[p, top[p]].ravel(), maps[p, least[p]].ravel())[0]
              for p in range(4)]
    assert found.class_rank_corr == pytest.approx(np.mean(signed))
    n = (maps - maps.min(axis=(2, 3), keepdims=True)) / np.ptp(maps, axis=(2, 3), keepdims=True)
    worst = max(np.abs(n[p] - n[q]).max() for p in range(4) for q in range(4))
    assert found.same_for_inputs == pytest.approx(worst)


def test_a_map_on_the_border_is_a_warning_not_a_refusal() -> None:
    maps = np.zeros((3, 1, 7, 7))
    rng = np.random.default_rng(0)
    for p in range(3):
        maps[p, 0, 0, :] = rng.random(7) + 1  # mass on the top row only
        maps[p, 0, 3, 3] = 0.05  # and a little inside
    found = sanity.degeneracy(maps, None, None)
    assert found.no_information() == []
    assert any("mass on the border" in w for w in found.warnings())


def test_similarity_per_probe_uses_the_named_class() -> None:
    rng = np.random.default_rng(1)
    before = rng.normal(size=(3, 4, 7, 7))
    after = rng.normal(size=(3, 4, 7, 7))
    top = [2, 0, 3]
    sim = sanity.similarity(before, after, top)
    for p, k in enumerate(top):
        s, q = sim.per_probe[p]
        assert s == pytest.approx(spearmanr(np.abs(before[p, k]).ravel(),
                                            np.abs(after[p, k]).ravel())[0])
        n = sanity.normalise(np.stack([before[p, k], after[p, k]]))
        assert q == pytest.approx(ssim_by_windows(n[0], n[1]))
    same = sanity.similarity(before, before * 3, top)
    assert same.spearman == pytest.approx(1.0) and same.ssim == pytest.approx(1.0)


def test_probe_images_are_what_the_docstring_says() -> None:
    probes = dict(sanity.probe_images(100, 100))
    assert list(probes) == list(sanity.PROBE_NAMES)
    assert all(p.shape == (100, 100, 3) and p.dtype == np.uint8 for p in probes.values())
    assert tuple(probes["disc"][30, 30]) == (230, 30, 30)  # the disc's centre
    assert tuple(probes["disc"][80, 80]) == (40, 40, 40)
    assert tuple(probes["square"][75, 75]) == (20, 20, 140)
    assert tuple(probes["square"][20, 20]) == (210, 210, 210)
    assert len({p.tobytes() for p in probes.values()}) == len(probes)


def test_describe_reads_the_stamped_json() -> None:
    record = {"level": "on", "probes": 6, "probe_source": "generated photos",
              "input_rank_corr": 0.1, "class_rank_corr": 0.2, "border_share": 0.3,
              "border_cells": 0.49, "mprt": {"step": "classifier", "spearman": 0.4,
                                             "ssim": 0.1}, "warnings": [], "refused": []}
    import json

    text = sanity.describe(json.dumps(record))
    assert text == sanity.describe(record)
    assert "MPRT classifier Spearman 0.40, SSIM 0.10" in text
    assert sanity.describe("{not json") == "(unreadable)"

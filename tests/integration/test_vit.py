"""ViT-ReciproCAM on tiny transformers built in code, against a brute-force reference."""

from __future__ import annotations

from pathlib import Path

import pytest

import xaigraph
from tests.conftest import image, run
from tests.integration import tiny_models
from tests.integration.test_onnx import ort_run
from tests.integration.test_reciprocam import assert_close_to_reference

ROUTES = ["ov_static", "ov_dynbatch", "onnx14", "onnx17"]
VARIANTS = [(1, True), (1, False), (2, True), (0, False)]  # (prefix tokens, fused attention)


@pytest.fixture(scope="module")
def vit_file(exported):  # type: ignore[no-untyped-def]
    def get(prefix: int, fused: bool, route: str) -> Path:
        return exported(f"vit{prefix}{int(fused)}", lambda: tiny_models.TinyViT(prefix, fused),
                        route)

    return get


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("prefix", "fused"), VARIANTS)
def test_vitreciprocam_matches_brute_force(vit_file, route: str, prefix: int,  # type: ignore[no-untyped-def]
                                           fused: bool) -> None:
    path = vit_file(prefix, fused, route)
    info = xaigraph.inspect(path)
    assert info["target"]["shape"] == f"[1,{prefix + 16},{tiny_models.VIT_DIM}]"
    assert info["methods"]["vitreciprocam"]["applies"]
    assert "use --method vitreciprocam" in info["methods"]["reciprocam"]["reason"]
    batch = 1 if route == "ov_static" else 2
    x = image(batch, seed=21)
    ref = tiny_models.brute_force_vitreciprocam(tiny_models.TinyViT(prefix, fused), x)
    for fmt in (["ir", "onnx"] if route.startswith("onnx") else ["ir"]):
        result = xaigraph.insert(path, "vitreciprocam", scaling=False, output_format=fmt)
        if prefix:  # CLS-like tokens: the fast form, checked against the plain one
            assert result.report["form"].startswith("fast exact form")
            assert "only the prefix tokens" in result.report["form"]
            assert result.report["self_check"]["passed"] is True
        else:  # the head averages all tokens: the plain form
            assert result.report["form"].startswith("plain form")
        maps = run(result.model, x)[-1] if fmt == "ir" else ort_run(result.model, x)[-1]
        assert_close_to_reference(maps, ref)


@pytest.mark.parametrize("fmt", ["ir", "onnx"])
def test_fast_form_falls_back_when_its_self_check_fails(vit_file, fmt: str) -> None:  # type: ignore[no-untyped-def]
    """Forced onto a mean-pooled ViT (where it is not exact), the fast form fails the self-check
    and the plain form is kept: the maps are still right."""
    from xaigraph.methods import METHODS
    from xaigraph.methods.vitreciprocam import ViTReciproCAM

    path = vit_file(0, False, "onnx17")
    saved = METHODS["vitreciprocam"]
    METHODS["vitreciprocam"] = ViTReciproCAM(form="fast")
    try:
        result = xaigraph.insert(path, "vitreciprocam", scaling=False, output_format=fmt)
    finally:
        METHODS["vitreciprocam"] = saved
    check = result.report["self_check"]
    assert check["passed"] is False and check["max_abs"] > 1e-3
    assert result.report["form"].startswith("plain form")
    x = image(2, seed=5)
    maps = run(result.model, x)[-1] if fmt == "ir" else ort_run(result.model, x)[-1]
    ref = tiny_models.brute_force_vitreciprocam(tiny_models.TinyViT(0, False), x)
    assert_close_to_reference(maps, ref)
    outputs = result.backend.outputs(result.model)
    assert [o.name for o in outputs][-1] == "saliency_map" and len(outputs) == 2


@pytest.mark.parametrize(("prefix", "route", "fmt"), [
    (1, "onnx17", "ir"), (1, "onnx17", "onnx"), (1, "ov_dynbatch", "ir"), (0, "onnx14", "onnx"),
])
def test_topk_uses_the_chosen_rows_of_the_classifier(vit_file, prefix: int, route: str,  # type: ignore[no-untyped-def]
                                                     fmt: str) -> None:
    import numpy as np

    path = vit_file(prefix, True, route)
    result = xaigraph.insert(path, "vitreciprocam", scaling=False, output_format=fmt,
                             targets="topk:3")
    assert "then the chosen classes' rows of the classifier" in result.report["form"]
    if prefix:
        assert result.report["self_check"]["passed"] is True
    x = image(2, seed=9)
    outs = run(result.model, x) if fmt == "ir" else ort_run(result.model, x)
    classes, maps = outs[-2], outs[-1]
    np.testing.assert_array_equal(classes, np.argsort(-outs[0], axis=1)[:, :3])
    ref = tiny_models.brute_force_vitreciprocam(tiny_models.TinyViT(prefix, True), x)
    assert_close_to_reference(maps, np.take_along_axis(ref, classes[:, :, None, None], 1))

"""The model zoo: models_zoo.yaml is complete, and its torch-free entries (the onnx package's
light models and the bundled model) pass by both routes through the zoo's own runner."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from xaigraph.methods import METHODS

ROOT = Path(__file__).resolve().parents[2]


def _load_zoo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zoo_tool", ROOT / "tools" / "zoo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["zoo_tool"] = module
    spec.loader.exec_module(module)
    return module


zoo = _load_zoo()
ENTRIES = zoo.load_entries()
TORCH_FREE = [e for e in ENTRIES if e.source != "timm"]


def test_the_zoo_covers_what_it_promises() -> None:
    sources = [e.source for e in ENTRIES]
    assert len(ENTRIES) >= 80
    assert sources.count("onnx-light") == 9 and sources.count("bundled") == 1
    assert sources.count("timm") >= 70
    assert len({e.name for e in ENTRIES}) == len(ENTRIES)
    for e in ENTRIES:
        assert e.kind in ("cnn", "transformer", "hybrid"), e.name
        assert e.methods and set(e.methods) <= set(METHODS), e.name
        assert e.routes and e.input > 0 and e.family and e.status, e.name
    families = {e.family for e in ENTRIES}
    for wanted in ("ResNet", "ResNeXt", "RegNet", "DenseNet", "MobileNet", "EfficientNet",
                   "GhostNet", "MNASNet", "ConvNeXt", "Inception", "Xception", "DLA", "DPN",
                   "HRNet", "VGG", "RepVGG", "ReXNet", "Res2Net", "ResNeSt", "CSP/DarkNet",
                   "LCNet", "MixNet", "TinyNet", "FBNet", "HardCoReNAS", "RegNetZ", "NFNet",
                   "TResNet", "ViT", "DeiT", "BEiT", "CaiT", "Swin", "LeViT", "MobileViT",
                   "EdgeNeXt", "CoaT", "PVTv2", "Twins", "XCiT", "MaxViT", "FastViT",
                   "EfficientFormer", "PoolFormer", "ConvMixer"):
        assert wanted in families, wanted


def test_every_light_model_file_exists() -> None:
    for e in TORCH_FREE:
        assert zoo.model_file(e, e.routes[0]).exists(), e.name


@pytest.mark.parametrize("entry", TORCH_FREE, ids=lambda e: e.name)
def test_torch_free_entry_passes_by_both_routes(entry: zoo.Entry) -> None:
    results = {f"{entry.name}/{r}": zoo.run_route(entry, r, only_expected=True)
               for r in entry.routes}
    assert zoo.entry_status(entry, results) == "ok"
    for r in entry.routes:
        for m in entry.methods:
            assert results[f"{entry.name}/{r}"]["methods"][m]["result"] == "ok"


def _fake_results() -> dict[str, object]:
    ok = {"result": "ok", "form": "", "saliency_map": "[?,5,7,7]", "seconds": 1.0}
    return {
        "resnet18/ov": {"target": "t", "methods": {"reciprocam": ok, "activationmap": ok}},
        "resnet18/onnx": {"target": "t", "methods": {
            "reciprocam": {"result": "failed", "reason": "boom happened"},
            "activationmap": ok}},
        "deit_tiny_patch16_224/ov": {"build_error": "timed out after 1800 s", "methods": {}},
    }


def test_report_lists_each_failure_with_its_reason() -> None:
    entries = [e for e in ENTRIES if e.name in ("resnet18", "deit_tiny_patch16_224")]
    results = _fake_results()
    text = zoo.write_report(entries, results, None)
    assert "- resnet18 / onnx / reciprocam: boom happened" in text
    assert "- deit_tiny_patch16_224 / ov: timed out after 1800 s" in text
    assert "| cnn | 1 | 0 | 0 % |" in text
    assert zoo.entry_status(entries[0], results) == "onnx: reciprocam: boom happened"


def test_statuses_are_rewritten_in_place(tmp_path: Path) -> None:
    copy = tmp_path / "models_zoo.yaml"
    shutil.copy(zoo.ZOO_FILE, copy)
    zoo.update_statuses(ENTRIES, _fake_results(), copy)
    text = copy.read_text()
    line = next(ln for ln in text.splitlines() if "{name: resnet18," in ln)
    assert line.endswith('status: "onnx: reciprocam: boom happened"}')
    assert text.count("\n") == zoo.ZOO_FILE.read_text().count("\n")  # comments kept
    again = {e.name: e.status for e in zoo.load_entries(copy)}
    assert again["resnet18"] == "onnx: reciprocam: boom happened"
    assert again["resnet50"] == {e.name: e.status for e in ENTRIES}["resnet50"]

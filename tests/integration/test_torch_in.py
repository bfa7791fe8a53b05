"""PyTorch models in: a module, a TorchScript `.pt` and a `torch.export` `.pt2`, converted in
memory by `xaigraph.insert`, `xaigraph.explain` and `xaigraph insert --example-input`.
References: the module's own outputs on the same input, and the maps of the same network
exported by the test itself (`openvino.convert_model` to a file, then inserted)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest
import torch
import torchvision
from click.testing import CliRunner
from PIL import Image

import xaigraph
from tests.conftest import run
from xaigraph.cli import cli
from xaigraph.preprocess import Preprocess

SHAPE = (1, 3, 224, 224)


@pytest.fixture(scope="module")
def resnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


@pytest.fixture(scope="module")
def scripted(resnet: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pt") / "resnet18.pt"
    torch.jit.save(torch.jit.trace(resnet, torch.rand(SHAPE)), str(path))
    return path


def _x(seed: int = 1, batch: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *SHAPE[1:])).astype(np.float32)


def test_a_module_in_three_lines(resnet: torch.nn.Module, tmp_path: Path) -> None:
    result = xaigraph.insert(resnet, example_input=SHAPE)
    assert result.report["validation"]["passed"]
    logits, saliency = run(result.model, _x())[:2]
    with torch.no_grad():
        expected = resnet(torch.from_numpy(_x())).numpy()
    np.testing.assert_allclose(logits, expected, atol=2e-4, rtol=1e-4)  # a batch of 2 works
    reference = tmp_path / "by_hand.xml"  # the route a user took before: convert, save, insert
    ov.save_model(ov.convert_model(resnet, example_input=torch.rand(SHAPE),
                                   input=[[-1, *SHAPE[1:]]]), str(reference),
                  compress_to_fp16=False)
    by_hand = run(xaigraph.insert(reference).model, _x())[1]
    assert saliency.shape == (2, 1000, 7, 7) and saliency.dtype == np.uint8
    assert np.abs(saliency.astype(int) - by_hand.astype(int)).max() <= 1


def test_the_cli_converts_torchscript(scripted: Path, tmp_path: Path,
                                      resnet: torch.nn.Module) -> None:
    out = tmp_path / "m.onnx"
    done = CliRunner().invoke(cli, ["insert", str(scripted), "-o", str(out),
                                    "--example-input", "1,3,224,224"])
    assert done.exit_code == 0, done.output
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits, saliency = session.run(None, {session.get_inputs()[0].name: _x(batch=1)})[:2]
    with torch.no_grad():
        expected = resnet(torch.from_numpy(_x(batch=1))).numpy()
    np.testing.assert_allclose(logits, expected, atol=2e-4, rtol=1e-4)
    assert saliency.shape == (1, 1000, 7, 7)
    done = CliRunner().invoke(cli, ["insert", str(scripted), "-o", str(tmp_path / "m.xml"),
                                    "--example-input", "1,3,224,224"])
    assert done.exit_code == 0 and (tmp_path / "m.bin").is_file(), done.output


@pytest.mark.parametrize(("args", "says"), [
    ([], "give its input's shape (--example-input 1,3,224,224"),
    (["--example-input", "1,3,x"], "--example-input '1,3,x': give the input's shape"),
])
def test_cli_refusals(scripted: Path, tmp_path: Path, args: list[str], says: str) -> None:
    done = CliRunner().invoke(cli, ["insert", str(scripted), "-o", str(tmp_path / "m.xml"),
                                    *args])
    assert done.exit_code == 2
    assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_state_dict_is_refused_with_what_to_do(resnet: torch.nn.Module,
                                                 tmp_path: Path) -> None:
    weights = tmp_path / "weights.pth"
    torch.save(resnet.state_dict(), weights)
    done = CliRunner().invoke(cli, ["insert", str(weights), "-o", str(tmp_path / "m.xml"),
                                    "--example-input", "1,3,224,224"])
    assert done.exit_code == 2 and done.stderr.count("\n") == 1
    assert "a file of weights (a state dict) has no network" in done.stderr


def test_an_exported_program(tmp_path: Path) -> None:
    torch.manual_seed(0)
    small = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    path = tmp_path / "small.pt2"
    torch.export.save(torch.export.export(small, (torch.rand(SHAPE),)), str(path))
    result = xaigraph.insert(path, example_input=SHAPE)
    logits, saliency = run(result.model, _x(batch=1))[:2]
    with torch.no_grad():
        np.testing.assert_allclose(logits, small(torch.from_numpy(_x(batch=1))).numpy(),
                                   atol=2e-4, rtol=1e-4)
    assert saliency.shape == (1, 10, 7, 7)


def test_explain_a_module(resnet: torch.nn.Module) -> None:
    photo = Image.fromarray(np.random.default_rng(3).integers(0, 256, (240, 320, 3),
                                                               dtype=np.uint8))
    before = set(os.listdir(tempfile.gettempdir()))
    pre = Preprocess.imagenet()
    found = list(xaigraph.explain(resnet, [photo], example_input=SHAPE, preprocess=pre))
    assert len(found) == 1 and found[0].ok
    with torch.no_grad():
        expected = resnet(torch.from_numpy(pre.apply(photo))).numpy()[0]
    assert found[0].predictions[0]["class"] == int(expected.argmax())
    assert found[0].maps[found[0].targets[0]].shape == (7, 7)
    left = {n for n in set(os.listdir(tempfile.gettempdir())) - before
            if n.startswith("xaigraph-torch-")}
    assert left == set()  # the converted model's folder is removed


@pytest.mark.slow
def test_a_timm_vit(tmp_path: Path) -> None:
    import timm

    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10).eval()
    result = xaigraph.insert(vit, method="vitreciprocam", example_input=SHAPE)
    assert result.report["validation"]["passed"]
    logits, saliency = run(result.model, _x(batch=1))[:2]
    with torch.no_grad():
        np.testing.assert_allclose(logits, vit(torch.from_numpy(_x(batch=1))).numpy(),
                                   atol=1e-3, rtol=1e-3)
    assert saliency.shape == (1, 10, 14, 14)


def test_the_readme_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's PyTorch lines as written, but for the download of trained weights."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = next(b for b in re.findall(r"^```python\n(.*?)^```$", readme, re.S | re.M)
                 if "example_input" in b and "torchvision" in b)
    assert 'weights="DEFAULT"' in block
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (200, 300, 3), np.uint8)).save(
        "cat.jpg")
    exec(block.replace('weights="DEFAULT"', "weights=None"), {})
    width, height = Image.open("cat_map.png").size  # the photo, its colour scale below
    assert width == 300 and height > 200

"""Small deployment fixes: the demo's caption names the method, the Python API's messages
speak Python, `make demo` installs only what the demo needs (and `make test-fast` no torch)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

import xaigraph
from tests.unit.deploy_graphs import Net, rand
from xaigraph.demo import caption, run_demo
from xaigraph.errors import BadInputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("method", "per_class", "named"), [
    ("eigencam", False, "Eigen-CAM map (class-free)"),
    ("activationmap", False, "activation map (class-free)"),
    ("reciprocam", True, "map for 'tabby'"),
])
def test_caption_names_the_map(method: str, per_class: bool, named: str) -> None:
    text = caption(method, "tabby", 0.5, per_class)
    assert text == f"EfficientNet-Lite0 + xaigraph {method}: tabby (50.0%), {named}"


def test_eigencam_demo_caption(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, method="eigencam")
    assert summary["caption"].endswith("Eigen-CAM map (class-free)")
    assert "activation" not in summary["caption"]
    with Image.open(tmp_path / "chelsea_saliency.png") as img:
        assert img.size[0] > 2 * 451  # the photo and its overlay, side by side


def _tiny() -> xaigraph.InsertResult:
    net = Net()
    pool = net.op("ReduceMean", [net.conv_relu("image", rand(4, 3, 3, 3), rand(4))], "pool",
                  axes=[2, 3], keepdims=0)
    net.op("MatMul", [pool, net.const("fc.w", rand(4, 3))], "logits")
    return xaigraph.insert(net.model({"logits": 3}), "activationmap", validate=False)


def test_save_says_force_true(tmp_path: Path) -> None:
    result = _tiny()
    out = xaigraph.save(result, tmp_path / "m.onnx")
    with pytest.raises(BadInputError) as info:
        xaigraph.save(result, out)
    assert "pass force=True to overwrite it" in str(info.value)
    assert "--force" not in str(info.value)
    assert xaigraph.save(result, out, force=True) == out


def _recipe(target: str, tmp_path: Path) -> list[str]:
    """The commands `make TARGET` runs in a fresh clone (no venv yet), in order."""
    done = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def test_make_demo_installs_only_the_runtime(tmp_path: Path) -> None:
    demo = _recipe("demo", tmp_path)
    installs = [line for line in demo if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all(line.endswith("-e .") for line in installs), installs
    assert any("xaigraph demo" in line for line in demo)
    test = _recipe("test", tmp_path)
    extras = [i for i, line in enumerate(test) if "-e '.[dev,ray]'" in line]
    runtime = [i for i, line in enumerate(test) if line.endswith("-e .")]
    pytest_at = next(i for i, line in enumerate(test) if "-m pytest" in line)
    assert runtime and extras and runtime[0] < extras[0] < pytest_at


def test_make_test_fast_installs_no_torch(tmp_path: Path) -> None:
    fast = _recipe("test-fast", tmp_path)
    installs = [line for line in fast if "pip install" in line and "--upgrade pip" not in line]
    assert installs[0].endswith("-e .") and len(installs) == 2, installs
    tools = installs[1]
    assert "pytest" in tools and "import-linter" in tools, tools
    assert not any(name in tools for name in ("[dev", "torch", "timm", "ray", "playwright"))
    (run,) = [line for line in fast if "-m pytest" in line]
    assert '-m "not slow"' in run and run.endswith("tests/unit tests/explain"), run

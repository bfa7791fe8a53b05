"""Without torch, a PyTorch model is one line saying what to install (never an ImportError
traceback); `--example-input` on a model that is not PyTorch is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import tiny_onnx

# torch made unimportable, as in an environment without it (a `sys.modules` entry of None
# would also break scipy, which looks torch up there)
BLOCK_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
sys.meta_path.insert(0, NoTorch())
from xaigraph.__main__ import main
main()
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH, *args], capture_output=True,
                          text=True, timeout=120)


def test_a_pt_file_without_torch(tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(b"PK\x03\x04 not really")
    done = _cli("insert", str(model), "-o", str(tmp_path / "m.xml"), "--example-input",
                "1,3,224,224")
    assert done.returncode == 2
    assert done.stderr == ("xaigraph: error: a PyTorch model needs PyTorch: pip install torch "
                           "(or give the model as OpenVINO IR or ONNX)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_example_input_is_for_pytorch(tmp_path: Path) -> None:
    import onnx

    model = tmp_path / "m.onnx"
    onnx.save(tiny_onnx.cnn("gap_fc"), model)
    done = _cli("insert", str(model), "-o", str(tmp_path / "m.xml"), "--example-input",
                "1,3,5,7")
    assert done.returncode == 2
    assert done.stderr == ("xaigraph: error: --example-input is for a PyTorch MODEL (.pt, "
                           ".pth or .pt2)\n")

"""PyTorch models in: a `torch.nn.Module`, a TorchScript file (`.pt`, `.pth`) or a
`torch.export` archive (`.pt2`) converted in memory, to an OpenVINO model
(`openvino.convert_model`) or an ONNX one (`torch.onnx.export`), with a dynamic batch.

torch stays optional: nothing here imports it before a PyTorch model is given, and a `.pt`
file without torch installed is one line saying so. The conversion traces the model on an
example input (`--example-input 1,3,224,224`): its shape fixes every dimension but the batch.
"""

from __future__ import annotations

import io
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from xaigraph.errors import BadInputError, NotFoundError

__all__ = ["SUFFIXES", "is_torch", "is_torch_file", "load", "parse_shape"]

SUFFIXES = (".pt", ".pth", ".pt2")
ONNX_OPSET = 17


def is_torch(model: Any) -> bool:
    """Whether `model` is a PyTorch module or exported program (torch already imported: an
    object of its types cannot exist otherwise)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    export = getattr(torch, "export", None)
    program = getattr(export, "ExportedProgram", ()) if export is not None else ()
    return isinstance(model, (torch.nn.Module, *([program] if program else [])))


def is_torch_file(model: Any) -> bool:
    """Whether `model` is the path of a PyTorch file (by its suffix)."""
    return isinstance(model, (str, os.PathLike)) and Path(model).suffix.lower() in SUFFIXES


def parse_shape(text: str) -> tuple[int, ...]:
    """`--example-input 1,3,224,224` as a shape; one line for anything else."""
    if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", text or ""):
        raise BadInputError(f"--example-input '{text}': give the input's shape, such as "
                            "1,3,224,224")
    shape = tuple(int(d) for d in text.split(","))
    if any(d < 1 or d > 8192 for d in shape) or len(shape) > 6:
        raise BadInputError(f"--example-input '{text}': each dimension 1..8192, at most six")
    return shape


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise BadInputError("a PyTorch model needs PyTorch: pip install torch (or give the "
                            "model as OpenVINO IR or ONNX)") from None
    return torch


def _example(torch: Any, example_input: Any) -> Any:
    """The tracing input: a tensor as given, or a seeded random one of a given shape."""
    if example_input is None:
        raise BadInputError("a PyTorch model is converted by tracing it: give its input's "
                            "shape (--example-input 1,3,224,224, or example_input=(1, 3, "
                            "224, 224))")
    if isinstance(example_input, torch.Tensor):
        return example_input
    if isinstance(example_input, str):
        example_input = parse_shape(example_input)
    shape = tuple(int(d) for d in example_input)
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


def _read_file(torch: Any, path: Path) -> Any:
    """A TorchScript module or a `torch.export` program from `path`; a state dict (weights
    without the network) is refused with what to do instead."""
    if path.suffix.lower() == ".pt2":
        try:
            return torch.export.load(str(path))
        except Exception as exc:
            raise BadInputError(f"{path.name}: not a torch.export archive ("
                                f"{type(exc).__name__}: {_first_line(exc)})") from exc
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise BadInputError(
            f"{path.name}: not a TorchScript module ({_first_line(exc)}); a file of weights "
            "(a state dict) has no network: load it into its module and pass the module to "
            "xaigraph.insert(module, example_input=...), or save it with torch.jit.save"
        ) from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def load(model: Any, example_input: Any, output_format: str | None) -> Any:
    """`model` (a module, an exported program, or the path of a `.pt` / `.pth` / `.pt2`
    file) as a `model_io.LoadedModel`: an `ov.Model` for IR output (the default), an
    `onnx.ModelProto` for "onnx"."""
    from xaigraph import model_io

    torch = _torch()
    path = None
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.exists():
            raise NotFoundError(f"model file not found: {path}")
        if not path.is_file():
            raise BadInputError(f"{path} is not a regular file; give the PyTorch model's file")
        model = _read_file(torch, path)
    x = _example(torch, example_input)
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if output_format == "onnx":
                converted = model_io.LoadedModel(model=_to_onnx(torch, model, x), path=path,
                                                 backend="onnx")
            else:
                converted = model_io.LoadedModel(model=_to_openvino(model, x), path=path)
    except BadInputError:
        raise
    except Exception as exc:
        raise BadInputError(f"cannot convert the PyTorch model with an input of shape "
                            f"{list(x.shape)}: {type(exc).__name__}: {_first_line(exc)}"
                            ) from exc
    return converted


def _to_openvino(model: Any, x: Any) -> Any:
    import openvino as ov

    shape = [-1, *x.shape[1:]]  # a dynamic batch, the rest as traced
    if hasattr(model, "module") and not hasattr(model, "forward"):  # an ExportedProgram
        return ov.convert_model(model)
    return ov.convert_model(model, example_input=x, input=[shape])


def _to_onnx(torch: Any, model: Any, x: Any) -> Any:
    import onnx

    if not hasattr(model, "forward") and hasattr(model, "module"):  # an ExportedProgram
        model = model.module()
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=ONNX_OPSET,
                      input_names=["input"], dynamic_axes={"input": {0: "N"}})
    return onnx.load_from_string(buffer.getvalue())

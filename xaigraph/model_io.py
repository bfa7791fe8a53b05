"""Reading models (OpenVINO IR or ONNX), checking output paths, and writing models atomically.

Files are checked before OpenVINO sees them, so that a malformed or truncated file gives one
clear sentence instead of a frontend's stack of messages.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openvino as ov

from xaigraph.errors import BadInputError, NotFoundError, OutputExistsError
from xaigraph.files import recover, staged

__all__ = [
    "LoadedModel",
    "backend_for_path",
    "check_output_path",
    "core",
    "load_model",
    "output_files",
    "ov_from_onnx",
    "ov_message",
    "save_ir",
    "save_onnx",
]

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".xml", ".onnx")
_SUFFIXES = {".xml": "ir", ".onnx": "onnx"}  # an output's suffix -> the backend writing it

_core: ov.Core | None = None


def core() -> ov.Core:
    """One OpenVINO runtime core per process (creating one costs tens of milliseconds)."""
    global _core
    if _core is None:
        _core = ov.Core()
    return _core


@dataclass
class LoadedModel:
    model: Any  # ov.Model (backend "ir") or onnx.ModelProto (backend "onnx")
    path: Path | None  # None for a model given in memory
    backend: str = "ir"
    data_files: list[Path] = field(default_factory=list)  # an ONNX model's external data

    @property
    def external_data(self) -> bool:
        return bool(self.data_files)

    @property
    def files(self) -> list[Path]:
        """The files the model was read from (never to be overwritten)."""
        if self.path is None:
            return []
        if self.path.suffix.lower() == ".xml":
            return [self.path, self.path.with_suffix(".bin")]
        return [self.path, *self.data_files]


def ov_message(exc: BaseException) -> str:
    """Reduce an OpenVINO exception to its informative sentence, on one line."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    useful = [ln for ln in lines if ln and not ln.startswith("Exception from ")]
    text = " ".join(useful) if useful else str(exc)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:300] + ("..." if len(text) > 300 else "")


def load_model(path: str | os.PathLike[str], backend: str = "ir") -> LoadedModel:
    """Read an IR `.xml` (with its `.bin`) or an `.onnx` file: into an `ov.Model` for the
    "ir" backend, into an `onnx.ModelProto` (external data loaded) for the "onnx" one.

    An ONNX file passes `onnx.checker` (full check) before OpenVINO's reader sees it: that
    reader crashes the process on some malformed graphs (a Conv without its weights)."""
    p = Path(path)
    _check_model_path(p)
    recover(p.parent if str(p.parent) else Path("."))  # a killed run's write, finished
    if p.suffix.lower() == ".xml":
        if backend == "onnx":
            raise BadInputError(
                f"{p.name} is an OpenVINO IR, which cannot be written as ONNX; give an .onnx "
                "model for ONNX output, or an output ending in .xml"
            )
        _check_ir_files(p)
        data: list[Path] = []
    else:
        proto = _check_onnx_file(p)
        data = [p.parent / loc for loc in sorted(_external_locations(proto))]
        if backend == "onnx":
            return LoadedModel(model=_load_onnx(p, proto), path=p, backend="onnx",
                               data_files=data)
    try:
        model = core().read_model(str(p))
    except Exception as exc:  # OpenVINO raises RuntimeError for every reader problem
        raise BadInputError(f"OpenVINO cannot read {p.name}: {ov_message(exc)}") from exc
    return LoadedModel(model=model, path=p, data_files=data)


def _check_model_path(p: Path) -> None:
    if not p.exists():
        raise NotFoundError(f"model file not found: {p}")
    if p.is_dir():
        raise BadInputError(f"{p} is a folder; give the model's .xml or .onnx file")
    if not p.is_file():  # a FIFO would block the reader forever, a device never end
        raise BadInputError(f"{p} is not a regular file; give the model's .xml or .onnx file")
    if p.suffix.lower() not in MODEL_SUFFIXES:
        raise BadInputError(
            f"unsupported model suffix '{p.suffix}' ({p.name}): expected .xml (OpenVINO IR) "
            "or .onnx (xaigraph insert also converts PyTorch .pt, .pth and .pt2 files)"
        )


def ov_from_onnx(proto: Any) -> ov.Model:
    """An in-memory ONNX model read by OpenVINO's ONNX reader (weights inline), once it
    passes `onnx.checker`."""
    _check_onnx(proto, "the ONNX model")
    try:
        return core().read_model(proto.SerializeToString(), b"")
    except Exception as exc:
        raise BadInputError(f"OpenVINO cannot read the ONNX model: {ov_message(exc)}") from exc


def _check_ir_files(xml_path: Path) -> None:
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise BadInputError(f"{xml_path.name} is not well-formed XML: {exc}") from exc
    except OSError as exc:
        raise BadInputError(f"cannot read {xml_path}: {exc.strerror}") from exc
    if root.tag != "net" or root.find("layers") is None:
        raise BadInputError(f"{xml_path.name} is XML but not an OpenVINO IR (no <net><layers>)")
    needed = 0
    for layer in root.iter("layer"):
        if layer.get("type") != "Const":
            continue
        data = layer.find("data")
        if data is None or data.get("offset") is None or data.get("size") is None:
            continue
        try:
            end = int(data.get("offset", "0")) + int(data.get("size", "0"))
        except ValueError as exc:
            raise BadInputError(
                f"{xml_path.name}: constant '{layer.get('name')}' has a malformed offset/size"
            ) from exc
        needed = max(needed, end)
    if needed == 0:
        return
    bin_path = xml_path.with_suffix(".bin")
    if not bin_path.exists():
        raise NotFoundError(
            f"weights file not found: {bin_path} (an IR needs its .bin next to the .xml)"
        )
    if not bin_path.is_file():
        raise BadInputError(f"weights file {bin_path} is not a regular file")
    have = bin_path.stat().st_size
    if have < needed:
        raise BadInputError(
            f"weights file {bin_path.name} is truncated: {have} bytes, the model needs {needed}"
        )


def _check_onnx_file(path: Path) -> Any:
    """Parse the file (without external data), check its opset and external-data paths, and
    run `onnx.checker` on it (full check: schemas, types and shapes)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning-derived or OSError
        raise BadInputError(f"{path.name} is not a valid ONNX model: {exc}") from exc
    if not proto.graph.node:
        raise BadInputError(f"{path.name} is not a valid ONNX model: its graph has no nodes")
    known = onnx.defs.onnx_opset_version()
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx") and entry.version > known:
            raise BadInputError(
                f"{path.name} uses ONNX opset {entry.version}; the installed onnx and ONNX "
                f"Runtime support up to opset {known}"
            )
    folder = path.resolve().parent
    for location in sorted(_external_locations(proto)):
        target = (folder / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(folder):
            raise BadInputError(
                f"{path.name}: external data location '{location}' is outside the model's "
                "folder; refusing to read it"
            )
        if not target.exists():
            raise BadInputError(f"{path.name}: external data file not found: {target}")
        if not target.is_file():
            raise BadInputError(f"{path.name}: external data {target} is not a regular file")
    # by path: external data is then looked for beside the model, not in the current folder
    _check_onnx(str(path) if _external_locations(proto) else proto, path.name)
    return proto


def _check_onnx(model: Any, name: str) -> None:
    """`onnx.checker.check_model` with its full check, as one BadInputError line."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # ValidationError, InferenceError, or a protobuf/OS error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInputError(f"{name} is not a valid ONNX model: {first}") from exc


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor stored in `graph`: initializers and the tensors of node attributes
    (`Constant` values among them), subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


def _external_locations(proto: Any) -> set[str]:
    import onnx

    out = set()
    for tensor in _tensors(proto.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    out.add(entry.value)
    return out


def _load_onnx(path: Path, proto: Any) -> Any:
    from onnx.external_data_helper import load_external_data_for_model

    if _external_locations(proto):
        try:  # initializers and attribute tensors alike
            load_external_data_for_model(proto, str(path.resolve().parent))
        except Exception as exc:
            raise BadInputError(f"{path.name}: cannot read its external data: {exc}") from exc
    return proto


def backend_for_path(path: str | Path) -> str:
    """The backend that writes `path`, by its suffix: "ir" for `.xml`, "onnx" for `.onnx`."""
    p = Path(path)
    try:
        return _SUFFIXES[p.suffix.lower()]
    except KeyError:
        raise BadInputError(
            f"unsupported output suffix '{p.suffix}' ({p.name}): give an output ending in .xml "
            "(OpenVINO IR, from an .xml or .onnx model) or .onnx (ONNX, from an .onnx model)"
        ) from None


def output_files(out: Path, external_data: bool = False) -> list[Path]:
    """The files an output path stands for (IR: .xml and .bin; ONNX: .onnx, and with
    `external_data` the `.onnx.data` file written beside it)."""
    if out.suffix.lower() == ".xml":
        return [out, out.with_suffix(".bin")]
    return [out, out.with_name(out.name + ".data")] if external_data else [out]


def check_output_path(out: str | os.PathLike[str], *, force: bool, inputs: list[Path],
                      external_data: bool | None = None, force_hint: str = "--force") -> Path:
    """Validate an output path (`.xml` or `.onnx`) before any work is done: its folder
    exists (and a write a killed run left there is finished, `files.recover`), it is not an
    input, and without `force` none of its files exists (the message says to pass
    `force_hint`: the CLI's flag, or the API's argument). `external_data` (an ONNX output
    with an `OUT.onnx.data`) defaults to whether the model read had external data, i.e.
    whether `inputs` holds files beside the model's own."""
    p = Path(out)
    backend_for_path(p)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise NotFoundError(f"output folder does not exist: {folder}")
    recover(folder)
    targets = output_files(p, len(inputs) > 1 if external_data is None else external_data)
    if any(len(os.fsencode(t.name)) > 255 for t in targets):
        raise BadInputError(f"output name too long: {targets[-1].name} (255 bytes at most)")
    for t in targets:
        for src in inputs:  # same file also through links
            if t.exists() and src.exists() and os.path.samefile(t, src):
                raise BadInputError(f"refusing to overwrite the input model file {src}")
    if not force:
        for t in targets:
            if os.path.lexists(t):
                raise OutputExistsError(f"output exists: {t}; pass {force_hint} to overwrite it")
    return p


def save_ir(model: ov.Model, out_xml: Path) -> None:
    """Write `model` as `out_xml` + `.bin`, as one commit (`files.staged`): after any
    failure or interruption, SIGKILL included, OUT is the complete old pair or the complete
    new one."""
    with staged(output_files(out_xml)) as (tmp_xml, _):
        ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
    log.debug("wrote %s", out_xml)


def save_onnx(model: Any, out: Path, external_data: bool) -> None:
    """Write `model` as `out` (and `out.data` when `external_data`: the tensors of 1 KiB or
    more, those of `Constant` nodes too), as one commit (`files.staged`)."""
    import onnx
    from onnx.external_data_helper import set_external_data

    files = output_files(out, external_data)
    with staged(files) as (tmp_model, *_):
        if external_data:
            model = _copy(model)  # marking tensors external rewrites the proto
            for tensor in _tensors(model.graph):  # (onnx's own converter looks for an
                if len(tensor.raw_data) >= 1024:  # existing data file in the current folder)
                    set_external_data(tensor, files[1].name)
        onnx.save_model(model, str(tmp_model))
    log.debug("wrote %s", out)


def _copy(model: Any) -> Any:
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy

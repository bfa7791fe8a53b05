"""Reading models (OpenVINO IR or ONNX) and writing IR atomically.

Files are checked before OpenVINO sees them, so that a malformed or truncated file gives one
clear sentence instead of a frontend's stack of messages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import openvino as ov

from xaigraph.errors import BadInputError

__all__ = [
    "LoadedModel",
    "check_output_path",
    "core",
    "load_model",
    "ov_message",
    "save_ir",
]

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".xml", ".onnx")

_core: ov.Core | None = None


def core() -> ov.Core:
    """One OpenVINO runtime core per process (creating one costs tens of milliseconds)."""
    global _core
    if _core is None:
        _core = ov.Core()
    return _core


@dataclass
class LoadedModel:
    model: ov.Model
    path: Path | None
    format: str  # "ir", "onnx" or "memory"

    @property
    def files(self) -> list[Path]:
        """The files the model was read from (never to be overwritten)."""
        if self.path is None:
            return []
        if self.format == "ir":
            return [self.path, self.path.with_suffix(".bin")]
        return [self.path]


def ov_message(exc: BaseException) -> str:
    """Reduce an OpenVINO exception to its informative sentence, on one line."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    useful = [ln for ln in lines if ln and not ln.startswith("Exception from ")]
    text = " ".join(useful) if useful else str(exc)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:300] + ("..." if len(text) > 300 else "")


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Read an IR `.xml` (with its `.bin`) or an `.onnx` file into an `ov.Model`."""
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"model file not found: {p}")
    if p.is_dir():
        raise BadInputError(f"{p} is a folder; give the model's .xml or .onnx file")
    suffix = p.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise BadInputError(
            f"unsupported model suffix '{p.suffix}' ({p.name}): expected .xml (OpenVINO IR) "
            "or .onnx"
        )
    if suffix == ".xml":
        _check_ir_files(p)
        fmt = "ir"
    else:
        _check_onnx_file(p)
        fmt = "onnx"
    try:
        model = core().read_model(str(p))
    except Exception as exc:  # OpenVINO raises RuntimeError for every reader problem
        raise BadInputError(f"OpenVINO cannot read {p.name}: {ov_message(exc)}") from exc
    return LoadedModel(model=model, path=p, format=fmt)


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
        raise BadInputError(
            f"weights file not found: {bin_path} (an IR needs its .bin next to the .xml)"
        )
    have = bin_path.stat().st_size
    if have < needed:
        raise BadInputError(
            f"weights file {bin_path.name} is truncated: {have} bytes, the model needs {needed}"
        )


def _check_onnx_file(path: Path) -> None:
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning-derived or OSError
        raise BadInputError(f"{path.name} is not a valid ONNX model: {exc}") from exc


def check_output_path(out: str | os.PathLike[str], *, force: bool, inputs: list[Path]) -> Path:
    """Validate an output `.xml` path before any work is done."""
    p = Path(out)
    if p.suffix.lower() != ".xml":
        raise BadInputError(
            f"unsupported output suffix '{p.suffix}' ({p.name}): xaigraph writes OpenVINO IR, "
            "give an output ending in .xml"
        )
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise BadInputError(f"output folder does not exist: {folder}")
    targets = [p, p.with_suffix(".bin")]
    for t in targets:
        for src in inputs:
            if t.exists() and src.exists() and os.path.samefile(t, src):
                raise BadInputError(f"refusing to overwrite the input model file {src}")
            if t.resolve() == src.resolve():
                raise BadInputError(f"refusing to overwrite the input model file {src}")
    if not force:
        for t in targets:
            if t.exists():
                raise BadInputError(f"output exists: {t}; pass --force to overwrite it")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_ir(model: ov.Model, out_xml: Path) -> None:
    """Write `model` as `out_xml` + `.bin` via temporary files and renames.

    On any failure or interruption the temporary files are removed and no output file is
    touched; an existing output is only replaced when both new files are complete.
    """
    folder = out_xml.parent if str(out_xml.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_xml.stem}.", suffix=".tmp.xml", dir=folder)
    os.close(fd)
    tmp_xml = Path(tmp_name)
    tmp_bin = tmp_xml.with_suffix(".bin")
    try:
        ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
        mode = 0o666 & ~_umask()  # mkstemp creates 0600; give the usual permissions
        for t in (tmp_xml, tmp_bin):
            os.chmod(t, mode)
        os.replace(tmp_bin, out_xml.with_suffix(".bin"))
        os.replace(tmp_xml, out_xml)
    except BaseException:
        for t in (tmp_xml, tmp_bin):
            with contextlib.suppress(FileNotFoundError):
                t.unlink()
        raise
    log.debug("wrote %s", out_xml)

"""What the CLI lets reach stderr: its own log and one error line, nothing from native code.

`terminal(text)` is text as the CLI prints it: control characters (ESC, BEL, CR, ...), the
bidirectional overrides and the halves of a name that is not valid UTF-8 as escapes
(`\x1b`, `\u202e`, `\xff`), so that a name from a model, a labels file or a file name
never drives the terminal; the log's lines go through it.

`console(debug)` configures xaigraph's log (warnings only, or everything with `debug`) and,
unless `debug`, keeps the native libraries quiet for the duration of a command: OpenVINO's
and ONNX Runtime's C++ loggers write to file descriptor 2 directly, so fd 2 is pointed at
/dev/null while Python's `sys.stderr` keeps writing to the real stderr. `--debug` leaves fd
2 alone, so it shows what the libraries say as they say it. Python warnings from the
libraries are dropped unless `debug`.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, TextIO

__all__ = ["console", "terminal"]

FORMAT = "xaigraph: %(levelname)s: %(message)s"
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def terminal(text: str) -> str:
    """`text` safe to print (see the module's docstring); newlines and tabs kept."""
    if text.isprintable():
        return text
    return "".join(_escape(c) for c in text)


def _escape(c: str) -> str:
    if c in "\n\t" or not (unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI):
        return c
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that is not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class _Escaped(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return terminal(super().format(record))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (a test runner may swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@contextmanager
def console(debug: bool) -> Iterator[None]:
    """Log setup and a quiet fd 2 for one command (see the module doc)."""
    with warnings.catch_warnings():
        if debug:
            logging.captureWarnings(True)
        else:
            warnings.simplefilter("ignore")
        handler = _StderrHandler()
        handler.setFormatter(_Escaped(FORMAT))
        logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                            handlers=[handler], force=True)
        if debug:
            yield
            return
        with _native_stderr_captured():
            yield


def _fd2_stream(stream: Any) -> bool:
    try:
        return bool(stream.fileno() == 2)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextmanager
def _native_stderr_captured() -> Iterator[None]:
    with suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to protect
        yield
        return
    sink = os.open(os.devnull, os.O_WRONLY)
    original = sys.stderr
    swapped = _fd2_stream(original)
    if swapped:  # Python's own writes keep going to the real stderr
        sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb"), line_buffering=True,
                                      encoding=getattr(original, "encoding", None) or "utf-8",
                                      errors="backslashreplace")
    os.dup2(sink, 2)
    os.close(sink)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        if swapped:
            replacement, sys.stderr = sys.stderr, original
            replacement.close()

"""Reading a text input: a regular file of bounded size, as UTF-8, with one-line errors.

Every text file xaigraph reads from the user goes through `read_text` (or `read_bytes`):
list files, COCO `.json`, VOC `.xml`, YOLO label and names files, `--labels`; standard
input (`-`) through `read_stream`. Each refuses, as a `BadInputError` of one line that
starts with `where` (the file, or the flag and the file):

- anything but a regular file (a named pipe, a device such as `/dev/zero`, a folder),
  found without blocking: the file is opened with `O_NONBLOCK` and looked at with `fstat`
  before a byte is read, so a FIFO nobody writes to never hangs the command;
- a file larger than `limit` bytes (`MAX_TEXT_BYTES`, 256 MiB; a COCO annotation file
  `MAX_JSON_BYTES`, 1 GiB), by its size before it is read, and by what was read (never more
  than `limit` + 1 bytes) should it grow meanwhile;
- a file that is not UTF-8 (`read_text`), or that cannot be opened (the reason in words).

`open_regular` is the first check alone, for a file read line by line (an OUT_DIR's
results.jsonl, which has no size cap).
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO, TextIO

from xaigraph.errors import BadInputError, file_error

__all__ = ["MAX_JSON_BYTES", "MAX_TEXT_BYTES", "open_regular", "read_bytes", "read_stream",
           "read_text"]

MAX_TEXT_BYTES = 256 << 20  # a list of a few million paths; any label or names file
MAX_JSON_BYTES = 1 << 30  # COCO's largest split, instances_train2017.json, is 448 MiB

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _too_large(where: str, limit: int) -> BadInputError:
    return BadInputError(f"{where}: larger than {_size(limit)}, the limit for this text "
                         "input; split it, or check that it is the file you meant")


def _size(limit: int) -> str:
    return f"{limit >> 30} GiB" if limit >= 1 << 30 else f"{limit >> 20} MiB"


def open_regular(path: str | os.PathLike[str], *, where: str | None = None) -> BinaryIO:
    """`path` opened for reading in binary, refused (`BadInputError`, without blocking)
    when it is not a regular file or cannot be opened."""
    where = where if where is not None else os.fsdecode(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise BadInputError(f"{where}: cannot read it ({_reason(exc)})") from exc
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise BadInputError(f"{where}: {_kind(status.st_mode)}, not a regular file; "
                            "give a text file")
    return os.fdopen(fd, "rb")


def read_bytes(path: str | os.PathLike[str], *, where: str | None = None,
               limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them (see the module's
    docstring); `where` starts every error line (default: the path)."""
    where = where if where is not None else os.fsdecode(path)
    with open_regular(path, where=where) as f:
        if os.fstat(f.fileno()).st_size > limit:
            raise _too_large(where, limit)
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise BadInputError(f"{where}: cannot read it ({_reason(exc)})") from exc
    if len(data) > limit:
        raise _too_large(where, limit)
    return data


def read_text(path: str | os.PathLike[str], *, where: str | None = None,
              limit: int = MAX_TEXT_BYTES) -> str:
    """`read_bytes` decoded as UTF-8 (a byte-order mark dropped)."""
    data = read_bytes(path, where=where, limit=limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        shown = where if where is not None else os.fsdecode(path)
        raise BadInputError(f"{shown}: not a UTF-8 text file (byte {exc.start})") from exc


def read_stream(stream: TextIO, *, where: str, limit: int = MAX_TEXT_BYTES) -> str:
    """At most `limit` characters of `stream` (standard input); more is an error."""
    try:
        text = stream.read(limit + 1)
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{where}: not UTF-8 text") from exc
    if len(text) > limit:
        raise _too_large(where, limit)
    return text


def _reason(exc: OSError) -> str:
    text = str(file_error(exc, ""))
    return text or (exc.strerror or type(exc).__name__)

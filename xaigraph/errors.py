"""The error hierarchy. Every expected failure is an `XaiGraphError` with a one-line message.

Each class has a stable `kind`, the identifier `--json` reports in `error.kind` (a CI step
can branch on it; the message is for people and may change):

| kind | class | exit |
|---|---|---|
| `bad-input` | `BadInputError`: a malformed model, an option that makes no sense | 2 |
| `bad-sample` | `SampleError`: a `--sample` that is not a usable input | 2 |
| `output-exists` | `OutputExistsError`: OUT exists and `--force` was not given | 2 |
| `not-found` | `NotFoundError`: a file or folder that does not exist | 2 |
| `permission-denied` | `AccessError`: not allowed to read or write a path (or read-only) | 2 |
| `no-space` | `NoSpaceError`: the disk (or quota) is full | 2 |
| `file-error` | `FileError`: any other failure to read or write a file | 2 |
| `no-target` | `TargetError`: no target layer found | 2 |
| `unknown-layer` | `UnknownLayerError`: `--target-layer` names no layer (or an unusable one) | 2 |
| `method-not-applicable` | `MethodError`: the method does not apply to this model | 2 |
| `validation-failed` | `ValidationError`: an original output changed | 1 |
| `sanity-failed` | `SanityError`: the map failed a sanity check (`insert --sanity`) | 2 |
| `internal` | `PassError` and any unexpected exception: a bug, `--debug` shows where | 2 |

The CLI adds `usage` (a command-line usage error, exit 2) and `interrupted` (Ctrl-C, exit
130); `KINDS` lists them all.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

__all__ = [
    "KINDS",
    "AccessError",
    "BadInputError",
    "FileError",
    "MethodError",
    "NoSpaceError",
    "NotFoundError",
    "OutputExistsError",
    "PassError",
    "SampleError",
    "SanityError",
    "TargetError",
    "UnknownLayerError",
    "ValidationError",
    "XaiGraphError",
    "file_error",
]


class XaiGraphError(Exception):
    """Base class. `exit_code` is what the CLI returns for it, `kind` what `--json` names;
    `where`, when a pass raised it, that pass and those before it (`--debug` and `--json`'s
    `error.pass` show it; the message itself is the sentence a user reads)."""

    exit_code = 2
    kind = "bad-input"
    where: str | None = None


class BadInputError(XaiGraphError):
    """A file is missing, unreadable, malformed, or an option makes no sense."""


class SampleError(BadInputError):
    """A `--sample` file is not an array or image the model can take."""

    kind = "bad-sample"


class OutputExistsError(BadInputError):
    """The output exists and overwriting it was not asked for."""

    kind = "output-exists"


class FileError(BadInputError):
    """Reading or writing a file failed (see `file_error`)."""

    kind = "file-error"


class NotFoundError(FileError):
    kind = "not-found"


class AccessError(FileError):
    kind = "permission-denied"


class NoSpaceError(FileError):
    kind = "no-space"


class TargetError(XaiGraphError):
    """No target layer could be found."""

    kind = "no-target"


class UnknownLayerError(TargetError):
    """The target layer named does not exist, or cannot be a target."""

    kind = "unknown-layer"


class MethodError(XaiGraphError):
    """The requested method does not apply to this model."""

    kind = "method-not-applicable"


class ValidationError(XaiGraphError):
    """The augmented model changed an original output beyond the tolerance."""

    exit_code = 1
    kind = "validation-failed"


class SanityError(XaiGraphError):
    """The saliency map failed a sanity check: it carries no information (the same for
    every input or every class, or constant), or, with `--sanity strict`, it barely changes
    when the classifier's weights are random."""

    kind = "sanity-failed"


class PassError(XaiGraphError):
    """A pass failed; the message names it and the passes that ran before it."""

    kind = "internal"

    def __init__(self, message: str, cause: BaseException, exit_code: int = 2) -> None:
        super().__init__(message)
        self.cause = cause
        self.exit_code = exit_code


KINDS = (
    "bad-input", "bad-sample", "output-exists", "not-found", "permission-denied", "no-space",
    "file-error", "no-target", "unknown-layer", "method-not-applicable", "validation-failed",
    "sanity-failed", "usage", "interrupted", "internal",
)

# errno -> (class, plain words)
_REASONS: dict[int, tuple[type[FileError], str]] = {
    errno.ENOENT: (NotFoundError, "no such file or folder"),
    errno.EACCES: (AccessError, "permission denied"),
    errno.EPERM: (AccessError, "operation not permitted (is the file or folder immutable?)"),
    errno.EROFS: (AccessError, "the file system is read-only"),
    errno.ENOSPC: (NoSpaceError, "no space left on the device"),
    errno.EDQUOT: (NoSpaceError, "disk quota exceeded"),
    errno.EFBIG: (NoSpaceError, "file too large for the file system"),
    errno.EISDIR: (FileError, "it is a folder"),
    errno.ENOTDIR: (FileError, "a part of the path is not a folder"),
    errno.ENAMETOOLONG: (FileError, "the file name is too long"),
    errno.EEXIST: (FileError, "it already exists"),
    errno.ELOOP: (FileError, "too many levels of symbolic links"),
    errno.ETXTBSY: (FileError, "the file is busy"),
    errno.EIO: (FileError, "input/output error (a failing disk or network file system?)"),
}


def file_error(exc: BaseException, path: str | os.PathLike[str] | None = None,
               doing: str = "") -> FileError:
    """One sentence for a failed file operation: `doing` ("cannot write"), the path (`path`,
    else the exception's own), and the reason in plain words from its errno.

    A native library's error without an errno (OpenVINO's "iostream error") is explained by
    looking at the destination: a full disk is named as such."""
    where = path if path is not None else getattr(exc, "filename", None)
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None and where is not None and _disk_full(Path(where)):
        code = errno.ENOSPC
    cls, reason = _REASONS.get(code or -1, (FileError, ""))
    if not reason:
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror
                  else _one_line(exc)).rstrip(".")
        reason = reason[:1].lower() + reason[1:]
    head = f"{doing} {where}" if doing and where is not None else doing or str(where or "")
    return cls(f"{head}: {reason}" if head else reason)


def _disk_full(path: Path, margin: int = 1 << 20) -> bool:
    folder = path if path.is_dir() else path.parent
    try:
        return shutil.disk_usage(folder if str(folder) else ".").free < margin
    except OSError:
        return False


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__

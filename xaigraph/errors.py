"""The error hierarchy. Every expected failure is an `XaiGraphError` with a one-line message."""

from __future__ import annotations

__all__ = [
    "BadInputError",
    "MethodError",
    "PassError",
    "TargetError",
    "ValidationError",
    "XaiGraphError",
]


class XaiGraphError(Exception):
    """Base class. `exit_code` is what the CLI returns for it."""

    exit_code = 2


class BadInputError(XaiGraphError):
    """A file is missing, unreadable, malformed, or an option makes no sense."""


class TargetError(XaiGraphError):
    """No target layer could be found, or the one named does not exist."""


class MethodError(XaiGraphError):
    """The requested method does not apply to this model."""


class ValidationError(XaiGraphError):
    """The augmented model changed an original output beyond the tolerance."""

    exit_code = 1


class PassError(XaiGraphError):
    """A pass failed; the message names it and the passes that ran before it."""

    def __init__(self, message: str, cause: BaseException, exit_code: int = 2) -> None:
        super().__init__(message)
        self.cause = cause
        self.exit_code = exit_code

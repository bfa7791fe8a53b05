"""Signal handling for the command line (installed by its entry point, `xaigraph.__main__`).

With `install`'s handlers, Ctrl-C (SIGINT), SIGTERM and SIGHUP at any moment of a run end it
the same way: the handler raises `Interrupted`, every `finally` block runs (a half-written
output is rolled back by `files.staged`), and the entry point ends the run with `error_line`
on stderr and exit status 128 + the signal's number (130 for Ctrl-C), never a traceback
(`interruption` finds the `Interrupted` behind what reached it). A second signal while that
clean-up runs ends the process at once (whatever staging folder is left is completed or
rolled back by the next run, see `files.recover`).

`Interrupted` derives from `BaseException`, not `KeyboardInterrupt`: no `except Exception`
catches it, and click does not turn it into its "Aborted!". `deferred()` holds a signal
back during a few steps that should not be cut in two (the renames of a commit).

This module imports nothing from xaigraph and only the standard library.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["SIGNALS", "Interrupted", "check", "deferred", "error_line", "install",
           "interruption"]

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A run was ended by a signal; `exit_code` is 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum

    def __str__(self) -> str:
        return f"interrupted by {signal.Signals(self.signum).name}"


class _State:
    held = 0  # depth of `deferred` blocks
    pending: int | None = None  # a signal that arrived while held
    raised = False  # an Interrupted was raised already
    signum: int | None = None  # its signal


def error_line(signum: int) -> str:
    """The one stderr line (with its newline) of a run ended by signal `signum`."""
    return f"xaigraph: error: {Interrupted(signum)}\n"


def _handler(signum: int, frame: FrameType | None) -> None:
    if _State.raised:  # a second signal: the clean-up is not waited for
        os.write(2, error_line(signum).encode())
        os._exit(128 + signum)
    if _State.held:
        _State.pending = signum
        return
    _State.raised, _State.signum = True, signum
    raise Interrupted(signum)


def install() -> None:
    """Handle `SIGNALS` in this (the main) thread by raising `Interrupted`. A signal that is
    ignored when the process starts (SIGHUP under nohup) stays ignored."""
    _State.raised, _State.signum, _State.pending = False, None, None
    for sig in SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold back a signal caught by `install`'s handler until the block ends, then raise it.

    Without `install` (the Python API) this does nothing: Ctrl-C raises KeyboardInterrupt
    wherever it lands, and callers clean up in `finally` as they must anyway."""
    _State.held += 1
    try:
        yield
    finally:
        _State.held -= 1
        if _State.held == 0 and _State.pending is not None:
            signum, _State.pending = _State.pending, None
            _State.raised, _State.signum = True, signum
            raise Interrupted(signum)


def interruption(exc: BaseException | None) -> Interrupted | None:
    """The Interrupted behind `exc`: itself, or the cause of an error raised while a signal
    broke off an import (a native extension turns it into ImportError); else the one a
    handler raised that a native layer turned into an error of its own, without a cause
    (a signal handled inside a runtime's call), since the run was interrupted all the same."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, Interrupted):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return Interrupted(_State.signum) if _State.raised and _State.signum is not None else None


def check() -> None:
    """Raise the interruption of a run whose `Interrupted` a native layer swallowed or turned
    into an error of its own. Every fallback (an `except` that goes on another way) calls it
    first: an interrupted run must end, never go on with another choice."""
    stopped = interruption(None)
    if stopped is not None:
        raise stopped

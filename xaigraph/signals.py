"""The command line's entry point and its signal handling.

`main` installs the handlers before anything heavy is imported (OpenVINO, ONNX and the
rest load in `xaigraph.cli`), so Ctrl-C (SIGINT), SIGTERM and SIGHUP at any moment of a run
end it the same way: the handler raises `Interrupted`, every `finally` block runs (a
half-written output is rolled back by `files.staged`), and the run ends with one line on
stderr and exit status 128 + the signal's number (130 for Ctrl-C), never a traceback. A
second signal while that clean-up runs ends the process at once (whatever staging folder
is left is completed or rolled back by the next run, see `files.recover`). A signal after
the command has finished is ignored: the exit status is the command's.

`Interrupted` derives from `BaseException`, not `KeyboardInterrupt`: no `except Exception`
catches it, and click does not turn it into its "Aborted!". `deferred()` holds a signal
back during a few steps that should not be cut in two (the renames of a commit).

This module imports nothing from xaigraph and only the standard library.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

__all__ = ["SIGNALS", "Interrupted", "deferred", "install", "main"]

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


def _line(signum: int) -> str:
    return f"xaigraph: error: {Interrupted(signum)}\n"


def _handler(signum: int, frame: FrameType | None) -> None:
    if _State.raised:  # a second signal: the clean-up is not waited for
        os.write(2, _line(signum).encode())
        os._exit(128 + signum)
    if _State.held:
        _State.pending = signum
        return
    _State.raised = True
    raise Interrupted(signum)


def install() -> None:
    """Handle `SIGNALS` in this (the main) thread by raising `Interrupted`. A signal that is
    ignored when the process starts (SIGHUP under nohup) stays ignored."""
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
            _State.raised = True
            raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> None:
    """`xaigraph ...`: install the handlers, then import and run the click commands."""
    install()
    try:
        try:
            with deferred():  # a signal inside a native module's initialisation can crash
                from xaigraph.cli import cli  # it (seen once: SIGSEGV); raised after it

            cli(args=list(argv) if argv is not None else None, prog_name="xaigraph")
        finally:  # the run is over: a late signal must not kill the interpreter's
            for sig in SIGNALS:  # teardown (Python resets its handlers, not SIG_IGN)
                signal.signal(sig, signal.SIG_IGN)
    except BaseException as caught:
        exc = _interruption(caught)
        if exc is None:
            raise
        sys.stderr.write(_line(exc.signum))
        sys.stderr.flush()
        if _wants_json(sys.argv[1:] if argv is None else argv):  # --json: one object always
            print(json.dumps({"ok": False, "exit_code": exc.exit_code,
                              "error": {"kind": "interrupted", "message": str(exc)}},
                             indent=2), flush=True)
        sys.exit(exc.exit_code)


def _interruption(exc: BaseException | None) -> Interrupted | None:
    """The Interrupted behind `exc`: itself, or the cause of an error raised while a signal
    broke off an import (a native extension turns it into ImportError)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, Interrupted):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _wants_json(argv: Sequence[str]) -> bool:
    args = list(argv)
    return "--json" in args[: args.index("--") if "--" in args else len(args)]

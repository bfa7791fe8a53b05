"""The `xaigraph` command's entry point (also `python -m xaigraph`).

`main` installs the signal handlers (`xaigraph.signals`) before anything heavy is imported
(OpenVINO, ONNX and the rest load with `xaigraph.cli`), so Ctrl-C (SIGINT), SIGTERM and
SIGHUP at any moment of a run end it the same way: every `finally` block runs, then one line
on stderr and exit status 128 + the signal's number (130 for Ctrl-C), never a traceback;
with `--json` also the one JSON object. A signal after the command has finished is ignored:
the exit status is the command's.

At import time this module loads the standard library and `xaigraph.signals` only.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from xaigraph.signals import SIGNALS, deferred, error_line, install, interruption

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """`xaigraph ...`: install the handlers, then import and run the click commands."""
    _fewer_malloc_arenas()
    logging.getLogger().addFilter(_not_telemetry)
    try:
        install()  # inside the try: a signal right after it is this run's interruption too
        try:
            with deferred():  # a signal inside a native module's initialisation can crash
                from xaigraph.cli import cli  # it (seen once: SIGSEGV); raised after it

            cli(args=list(argv) if argv is not None else None, prog_name="xaigraph")
        finally:  # the run is over: a late signal must not kill the interpreter's
            for sig in SIGNALS:  # teardown (Python resets its handlers, not SIG_IGN)
                signal.signal(sig, signal.SIG_IGN)
            # and blocked, since a native library's teardown may reset a handler (Ray's
            # did: a SIGTERM after a finished run killed it, -15)
            signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    except BaseException as caught:
        exc = interruption(caught)
        if exc is None:
            raise
        sys.stderr.write(error_line(exc.signum))
        sys.stderr.flush()
        if _wants_json(sys.argv[1:] if argv is None else argv):  # --json: one object always
            print(json.dumps({"ok": False, "exit_code": exc.exit_code,
                              "error": {"kind": "interrupted", "message": str(exc)}},
                             indent=2), flush=True)
        sys.exit(exc.exit_code)


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
ARENAS = 2


def _fewer_malloc_arenas() -> None:
    """At most `ARENAS` glibc malloc arenas (unless MALLOC_ARENA_MAX says otherwise), set
    before any thread starts. glibc gives threads that allocate at once arenas of their own,
    up to eight per core, and keeps what each freed: over eval's four methods (each with its
    decode, write and inference threads) the peak grew by about 0.7 MiB an image. With two
    arenas eval of 63 images x 4 methods peaked at 646 MiB against 714 (bench_eval's row).
    A no-op off glibc."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(M_ARENA_MAX, ARENAS)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return


def _not_telemetry(record: logging.LogRecord) -> bool:
    """Drop the warnings OpenVINO's telemetry logs on the root logger when `import openvino`
    cannot create its folder in HOME (an unwritable HOME): three lines before every one-line
    error otherwise. Nothing is sent either way."""
    return "openvino_telemetry" not in record.pathname


def _wants_json(argv: Sequence[str]) -> bool:
    args = list(argv)
    return "--json" in args[: args.index("--") if "--" in args else len(args)]


if __name__ == "__main__":
    main()

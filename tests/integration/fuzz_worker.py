"""A child process that runs `xaigraph` commands in-process (click's CliRunner), one per
request, for the fuzz test: a crash by signal or a hang kills this process, not pytest.

Protocol: one JSON request per line on stdin (`{"args": [...]}`), one JSON reply per line on
the stdout the process started with: exit code, the command's stdout and stderr, what reached
file descriptors 1 and 2 directly (native libraries), and the exception when the command
raised one that click's runner caught (anything but `SystemExit` is a bug).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from typing import Any

__all__ = ["main"]


def _run(args: list[str]) -> dict[str, Any]:
    from click.testing import CliRunner

    from xaigraph.cli import cli

    with tempfile.TemporaryFile() as out_fd, tempfile.TemporaryFile() as err_fd:
        saved = os.dup(1), os.dup(2)
        os.dup2(out_fd.fileno(), 1)
        os.dup2(err_fd.fileno(), 2)
        try:
            result = CliRunner().invoke(cli, args)
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out_fd.seek(0)
        err_fd.seek(0)
        native_out = out_fd.read().decode("utf-8", "replace")
        native_err = err_fd.read().decode("utf-8", "replace")
    exc = result.exception
    return {
        "code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "native_stdout": native_out,
        "native_stderr": native_err,
        "exception": (None if exc is None or isinstance(exc, SystemExit) else
                      "".join(traceback.format_exception(exc))),
    }


def main() -> None:
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        request = json.loads(line)
        reply.write(json.dumps(_run(request["args"])) + "\n")


if __name__ == "__main__":
    main()

"""What both command lines share: the compiler's (`xaigraph.cli`) and the runtime layer's
command modules (`xaigraph.explain.cli_explain`, `cli_eval`, `cli_report`).

- `handle_errors`: a command's exceptions as one line on stderr and the documented exit
  code (with `--json`, also one JSON object on stdout); a traceback only with `--debug`.
- `fail`, `print_json`, `succeed`: the one line, the JSON object, a success object.
- `Group`: usage errors (a missing option, an unknown command) as one line naming the help
  to read.
- `json_option`, `debug_option`: the `--json` and `--debug` flags every command takes.

It imports click and xaigraph's errors and logging set-up, nothing of either command line,
so that both import it at module level.
"""

from __future__ import annotations

import functools
import math
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from xaigraph import jsontext
from xaigraph.errors import XaiGraphError, file_error
from xaigraph.logs import console, terminal

__all__ = ["INTERRUPTED", "FiniteRange", "Group", "OutputPath", "debug_option", "echo", "fail",
           "handle_errors", "json_option", "one_line", "print_json", "succeed", "terminal"]

F = TypeVar("F", bound=Callable[..., Any])

INTERRUPTED = 130


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """`click.echo` of `terminal(text)`: how the commands print text (names from a model or
    a file escaped)."""
    click.echo(terminal(text), err=err, nl=nl)


def one_line(text: str) -> str:
    """`text` with every run of white space (newlines too) as one space."""
    return " ".join(text.split())


class FiniteRange(click.FloatRange):
    """`click.FloatRange` for finite numbers only: `nan`, `inf` (and `1e309`, which is
    infinity) are usage errors naming the option, as a number out of the range is."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class OutputPath(click.Path):
    """An output folder's `click.Path` (as a `Path`): an empty one, which would write into
    the current folder (`-o "$OUT"` with OUT unset), is a usage error."""

    def __init__(self) -> None:
        super().__init__(path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value == "":
            self.fail("an empty path; name the output folder.", param, ctx)
        return super().convert(value, param, ctx)


def print_json(obj: dict[str, Any]) -> None:
    """`obj` as the one JSON object on stdout (strict: `null` for NaN)."""
    click.echo(jsontext.dumps(obj, indent=2))


def succeed(report: dict[str, Any]) -> None:
    """A command's `--json` object on success: `ok`, `exit_code` 0, then `report`."""
    print_json({"ok": True, "exit_code": 0, **report})


def fail(kind: str, message: str, code: int, as_json: bool, where: str | None = None,
         debug: bool = False) -> NoReturn:
    """The one stderr line, with --json the one JSON object on stdout, and the exit code.
    `where` (the pass that raised) leads the line only under `--debug`; `--json` gives it
    as `error.pass`."""
    message = one_line(message)
    echo(f"xaigraph: error: {where + ': ' if where and debug else ''}{message}", err=True)
    if as_json:
        error: dict[str, Any] = {"kind": kind, "message": message}
        if where:
            error["pass"] = where
        print_json({"ok": False, "exit_code": code, "error": error})
    sys.exit(code)


def _classify(exc: BaseException) -> XaiGraphError:
    """Any exception as an `XaiGraphError`: ours as they are, a file-system error as one
    sentence with the real reason, anything else as an internal error."""
    if isinstance(exc, XaiGraphError):
        return exc
    if isinstance(exc, OSError):
        return file_error(exc)
    detail = str(exc).strip().splitlines()
    internal = XaiGraphError(f"internal error: {type(exc).__name__}: "
                             f"{detail[-1] if detail else ''} (rerun with --debug for the "
                             "traceback)")
    internal.kind = "internal"
    return internal


def handle_errors(func: F) -> F:
    """One line on stderr and the documented exit code (with --json, one JSON object on
    stdout whatever happens); a traceback only with --debug. The command takes `as_json`
    and `debug` keyword arguments (`json_option`, `debug_option`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False)
        as_json = kwargs.get("as_json", False)
        try:
            with console(debug):
                return func(*args, **kwargs)
        except KeyboardInterrupt:
            fail("interrupted", "interrupted; nothing written", INTERRUPTED, as_json)
        except Exception as exc:
            if debug:
                traceback.print_exc()
            err = _classify(exc)
            fail(err.kind, str(err), err.exit_code, as_json, err.where, debug)

    return wrapper  # type: ignore[return-value]


def json_option(help: str = "Print one JSON object on stdout.") -> Callable[[F], F]:
    """The `--json` flag (the `as_json` argument)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def debug_option(command: F) -> F:
    """The `--debug` flag (the `debug` argument)."""
    return click.option("--debug", is_flag=True,
                        help="Verbose log; tracebacks on errors.")(command)


class Group(click.Group):
    """Usage errors (a missing option, an unknown command, ...) as one line on stderr
    naming the help to read, and with --json as the JSON object every exit prints."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        as_json = "--json" in argv[: argv.index("--") if "--" in argv else len(argv)]
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False,
                                **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else (prog_name or "xaigraph")
            message = one_line(exc.format_message()).rstrip(".")
            fail("usage", f"{message[:1].lower()}{message[1:]}; see '{where} --help'",
                 exc.exit_code, as_json)
        except click.ClickException as exc:
            fail("usage", exc.format_message(), exc.exit_code, as_json)
        except click.Abort:
            fail("interrupted", "interrupted; nothing written", INTERRUPTED, as_json)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

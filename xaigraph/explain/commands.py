"""The runtime layer's commands, added to the `xaigraph` group by `xaigraph.cli`.

Each command lives in a module of its own (`cli_explain`, `cli_eval`, `cli_report`); a module
imports only click and the standard library at import time, the rest inside the command.
"""

from __future__ import annotations

import click

__all__ = ["COMMANDS"]

from xaigraph.explain.cli_eval import eval_command
from xaigraph.explain.cli_explain import explain
from xaigraph.explain.cli_report import report

COMMANDS: list[click.Command] = [explain, eval_command, report]

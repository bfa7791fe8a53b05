"""The runtime layer's commands, added to the `xaigraph` group by `xaigraph.cli` (the one
import of the runtime layer the compiler makes).

Each command lives in a module of its own (`cli_explain`, `cli_eval`, `cli_report`); they
share the error handling and `--json` printing of the compiler's command line
(`xaigraph.cli_common`). `for_inspect` adds the runtime's methods (black-box ones, and what
explain's auto mode takes) to `xaigraph inspect`.
"""

from __future__ import annotations

import click

from xaigraph.explain.cli_eval import eval_command
from xaigraph.explain.cli_explain import explain
from xaigraph.explain.cli_report import report
from xaigraph.explain.methods import for_inspect

__all__ = ["COMMANDS", "for_inspect"]

COMMANDS: list[click.Command] = [explain, eval_command, report]

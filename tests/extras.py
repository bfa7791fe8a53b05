"""Optional dependencies of a test tier (the `dev` and `ray` extras: torch, timm, Playwright).

`require(name)` imports the module; when it is missing the calling test module is skipped (so
the fast tier runs in a venv without them), except under CI (the `CI` variable set), where
every extra is installed and a missing one is an error, never a skip.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

import pytest

__all__ = ["require"]


def require(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI"):
            raise
        caller = sys._getframe(1).f_globals.get("__name__", "?")
        pytest.skip(f"{caller} needs {name}, which is not installed (make test installs it)",
                    allow_module_level=True)

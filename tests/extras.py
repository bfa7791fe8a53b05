"""Optional dependencies of a test tier (the `dev` and `ray` extras: torch, timm, Playwright).

`require(name)` imports the module; when it is missing the test is skipped (so the fast tier
runs in a venv without them), except under CI (the `CI` variable set), where every extra is
installed and a missing one is an error, never a skip.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

__all__ = ["require"]


def require(name: str) -> ModuleType:
    if os.environ.get("CI"):
        return importlib.import_module(name)
    return pytest.importorskip(name)

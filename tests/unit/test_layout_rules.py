"""Layout rules of the library's source: no function of `xaigraph/` or `passes/` over 60 lines.

A function's length runs from its `def` line to its last line (docstring, comments and blank
lines inside it included; decorators not). A nested function counts with its own length, and
inside the one that holds it. `python -m tests.unit.test_layout_rules` lists the longest.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
TREES = ("xaigraph", "passes")
MAX_LINES = 60

# Functions still being rewritten (issue 20), each over the limit today. To be emptied: a
# function leaves this list when it is cut down (the test below fails while it stays here),
# and nothing is added to it.
ALLOWED_LONG = {
    "xaigraph/explain/evaluate.py:evaluate",
}


def function_lengths(source: str, path: str) -> Iterator[tuple[str, int]]:
    """(`path:qualified.name`, lines) of every function and method in `source`, nested ones
    included (`outer.inner`, `Class.method`)."""
    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                assert child.end_lineno is not None
                yield f"{path}:{prefix}{child.name}", child.end_lineno - child.lineno + 1
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(ast.parse(source, filename=path), "")


def library_lengths() -> dict[str, int]:
    """Every function of the modules under `TREES`, by `path:qualified.name` (the longest of
    any that share a name)."""
    lengths: dict[str, int] = {}
    for tree in TREES:
        for file in sorted((ROOT / tree).rglob("*.py")):
            path = file.relative_to(ROOT).as_posix()
            for name, n in function_lengths(file.read_text(encoding="utf-8"), path):
                lengths[name] = max(n, lengths.get(name, 0))
    return lengths


def over_limit(lengths: dict[str, int]) -> dict[str, int]:
    return {name: n for name, n in lengths.items() if n > MAX_LINES}


def test_no_function_is_over_60_lines() -> None:
    long = {name: n for name, n in over_limit(library_lengths()).items()
            if name not in ALLOWED_LONG}
    assert not long, (f"functions over {MAX_LINES} lines (split them into smaller ones): "
                      + ", ".join(f"{name} ({n} lines)" for name, n in sorted(long.items())))


def test_the_allow_list_only_shrinks() -> None:
    lengths = library_lengths()
    stale = sorted(f"{name} (no longer exists)" if name not in lengths
                   else f"{name} ({lengths[name]} lines)" for name in ALLOWED_LONG
                   if lengths.get(name, 0) <= MAX_LINES)
    assert not stale, ("ALLOWED_LONG names functions no longer over the limit; take them out: "
                       + ", ".join(stale))


def _function(name: str, lines: int, indent: str = "") -> str:
    """A function of exactly `lines` lines (def line and a docstring included)."""
    body = [f'{indent}    """Doc."""'] + [f"{indent}    x = {i}" for i in range(lines - 2)]
    return "\n".join([f"{indent}def {name}() -> None:", *body]) + "\n"


@pytest.mark.parametrize(("lines", "flagged"), [(60, False), (61, True)])
def test_the_rule_counts_a_function_from_its_def_line(lines: int, flagged: bool) -> None:
    source = "import os\n\n\n@staticmethod\n" + _function("f", lines)
    lengths = dict(function_lengths(source, "m.py"))
    assert lengths == {"m.py:f": lines}
    assert ("m.py:f" in over_limit(lengths)) is flagged


def test_nested_functions_and_methods_count_on_their_own() -> None:
    inner = _function("inner", 61, indent="    ")
    source = (_function("outer", 3) + inner + "\n\nclass C:\n"
              + _function("method", 62, indent="    "))
    lengths = dict(function_lengths(source, "m.py"))
    assert lengths == {"m.py:outer": 64, "m.py:outer.inner": 61, "m.py:C.method": 62}
    assert sorted(over_limit(lengths)) == ["m.py:C.method", "m.py:outer", "m.py:outer.inner"]


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    for name, n in sorted(library_lengths().items(), key=lambda item: -item[1])[:count]:
        print(f"{n:4d}  {name}")

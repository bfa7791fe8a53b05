"""The test tiers: the unit and explain tiers (`make test-fast`) run without torch.

Every test module and helper of tests/unit and tests/explain, and the shared ones at the top
of tests/, with all they import from `tests`: no import of torch, torchvision or timm, and
nothing from tests/integration (the torch tier), at the top or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TORCH = ("torch", "torchvision", "timm", "tests.integration")


def _imports(path: Path) -> set[str]:
    """Every module `path` imports (for `from a import b`: `a` and `a.b`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _file(module: str) -> Path | None:
    """The file of a `tests.` module, if it is one."""
    path = TESTS.parent.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_the_fast_tiers_import_no_torch() -> None:
    todo = [*TESTS.glob("*.py"), *TESTS.glob("unit/*.py"), *TESTS.glob("explain/*.py")]
    assert TESTS / "conftest.py" in todo and len(todo) > 50
    seen: set[Path] = set()
    bad = []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports(path):
            if any(module == t or module.startswith(f"{t}.") for t in TORCH):
                bad.append(f"{path.relative_to(TESTS.parent)} imports {module}")
            elif module.startswith("tests.") and (found := _file(module)) is not None:
                todo.append(found)
    assert not bad, "\n".join(sorted(bad))


def test_the_check_sees_an_import_of_torch(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import torch.nn\n    from tests.integration import x\n")
    assert {"torch.nn", "tests.integration", "tests.integration.x"} <= _imports(sample)

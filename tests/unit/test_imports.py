"""The import graph of the whole package: no cycle, no private name imported from another
module, `xaigraph.signals` importing nothing of xaigraph.

The graph is grimp's, of the package as it is installed: `passes/` as `xaigraph.passes` (a
copy of both source trees in that layout, read in a child interpreter so that the
`xaigraph` this process imported is not the one analysed). Every import statement counts:
those inside functions and those under `if TYPE_CHECKING:` too, so a cycle cannot hide in
a lazy import. Dynamic imports (`importlib.import_module("...")`) are not seen.

`lint-imports` (in `make lint`) checks the other contracts, and cycles between sibling
modules and packages, but it sees `passes/` under its source name only; this is the check
of cycles through `xaigraph.passes`. `python -m tests.unit.test_imports` prints the cycles.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).parents[2]

_GRAPH = """
import json, sys
sys.path.insert(0, sys.argv[1])
import grimp
graph = grimp.build_graph("xaigraph", cache_dir=None)
edges = {m: {t: [d["line_number"] for d in graph.get_import_details(importer=m, imported=t)]
             for t in sorted(graph.find_modules_directly_imported_by(m))}
         for m in sorted(graph.modules)}
print(json.dumps({"file": __import__("xaigraph").__file__, "edges": edges}))
"""


def _source(module: str) -> str:
    """The repository file of `module` (relative to the root)."""
    parts = module.split(".")
    if parts[:2] == ["xaigraph", "passes"]:
        parts = ["passes", *parts[2:]]
    path = ROOT.joinpath(*parts)
    return str((path / "__init__.py" if path.is_dir() else path.with_suffix(".py"))
               .relative_to(ROOT))


def import_graph(scratch: Path) -> nx.DiGraph:
    """Module -> module it imports (edge attribute `lines`: the importer's line numbers)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "xaigraph", scratch / "xaigraph", ignore=skip)
    shutil.copytree(ROOT / "passes", scratch / "xaigraph" / "passes", ignore=skip)
    out = subprocess.run([sys.executable, "-c", _GRAPH, str(scratch)], cwd=scratch,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    found = json.loads(out)
    assert Path(found["file"]).is_relative_to(scratch), found["file"]  # the copy, not ROOT
    graph = nx.DiGraph()
    for importer, imported in found["edges"].items():
        graph.add_node(importer)
        for target, lines in imported.items():
            graph.add_edge(importer, target, lines=lines)
    return graph


def cycles(graph: nx.DiGraph) -> list[str]:
    """One paragraph per set of modules that import each other: the modules, then each
    import between them with its file and line."""
    found = []
    for group in sorted((sorted(c) for c in nx.strongly_connected_components(graph)
                         if len(c) > 1), key=len, reverse=True):
        members = set(group)
        edges = [f"  {_source(a)}:{','.join(map(str, graph.edges[a, b]['lines']))} "
                 f"{a} -> {b}" for a, b in sorted(graph.subgraph(members).edges)]
        found.append(f"{len(group)} modules in a cycle: {' '.join(group)}\n" + "\n".join(edges))
    return found


def test_no_import_cycle(tmp_path: Path) -> None:
    found = cycles(import_graph(tmp_path))
    assert not found, "\n\n".join(found)


def test_the_graph_is_the_installed_layout(tmp_path: Path) -> None:
    """The check above can fail: it sees `xaigraph.passes` and the imports into it."""
    graph = import_graph(tmp_path)
    assert graph.has_edge("xaigraph.stamp", "xaigraph.passes")
    assert graph.has_edge("xaigraph.passes.stamp", "xaigraph.stamp_format")
    graph.add_edge("xaigraph.stamp_format", "xaigraph.stamp", lines=[0])
    assert cycles(graph) and "xaigraph.stamp_format -> xaigraph.stamp" in cycles(graph)[0]


def test_signals_imports_nothing_of_xaigraph(tmp_path: Path) -> None:
    """The entry point installs the handlers before anything heavy is imported."""
    graph = import_graph(tmp_path)
    assert [m for m in graph.successors("xaigraph.signals") if m.startswith("xaigraph")] == []
    assert set(graph.successors("xaigraph.__main__")) == {"xaigraph.signals", "xaigraph.cli"}


def _private_imports(path: Path, module: str) -> list[str]:
    """`from M import _name` in `path` (module `module`), M another xaigraph module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
        source = ".".join([*base, *([node.module] if node.module else [])])
        if not source.startswith("xaigraph") or source == module:
            continue
        found += [f"{_source(module)}:{node.lineno} imports {source}.{a.name}"
                  for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_private_name_is_imported_from_another_module() -> None:
    found = []
    for path in sorted([*ROOT.joinpath("xaigraph").rglob("*.py"),
                        *ROOT.joinpath("passes").rglob("*.py")]):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[0] == "passes":
            parts = ["xaigraph", *parts]
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found += _private_imports(path, module)
    assert not found, "\n".join(found)


def test_a_private_import_is_found(tmp_path: Path) -> None:
    """The check above can fail: absolute and relative imports of a private name."""
    (tmp_path / "m.py").write_text("from xaigraph.cli_common import _classify\n"
                                   "from .stamp import _VERSION, STAMP_KEYS\n")
    found = _private_imports(tmp_path / "m.py", "xaigraph.m")
    assert found == ["xaigraph/m.py:1 imports xaigraph.cli_common._classify",
                     "xaigraph/m.py:2 imports xaigraph.stamp._VERSION"]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        report = cycles(import_graph(Path(scratch)))
    print("\n\n".join(report) or "no import cycle")

"""The wheel's package list names every package of the source tree (a package left out
installs from the editable checkout but is missing from `pip install xaigraph-*.whl`: the
wheel's `xaigraph explain` then failed on `xaigraph.explain.io`)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _packages_on_disk() -> set[str]:
    found = set()
    for top, name in ((ROOT / "xaigraph", "xaigraph"), (ROOT / "passes", "xaigraph.passes")):
        for init in top.rglob("__init__.py"):
            parts = init.parent.relative_to(top).parts
            found.add(".".join((name, *parts)))
    return found


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert _packages_on_disk() - listed == set()
    for extra in listed - _packages_on_disk():  # a data folder (no __init__.py) must exist
        assert (ROOT / extra.replace(".", "/")).is_dir(), extra
    assert config["package-dir"]["xaigraph.passes"] == "passes"


def test_report_assets_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["xaigraph.explain.report_assets"]
    assets = ROOT / "xaigraph" / "explain" / "report_assets"
    for path in assets.iterdir():
        if path.name != "__init__.py" and path.suffix != ".pyc" and path.is_file():
            assert any(path.match(p) for p in patterns), path.name

"""Which files `xaigraph report` may read, checked before anything is written.

A report is often published: it must never carry a file from outside the run it shows. So

- a method's folder in an eval DIR is named by a plain folder name (`plain_name`);
- a file a record's target names (`map`, `overlay`, `raw`) is a relative path without `..`
  that lies inside the run's folder, links followed (`check_target`);
- an original is looked up from the record's `path` (absolute, or relative to the current
  folder, the run's parent or the run) and taken only when its real path lies in one of the
  folders the run recorded in run.json `inputs` (`input_roots`, `find_original`). One that
  exists but lies elsewhere is refused; a run.json without `inputs` (an older run) gets no
  originals.

Each refusal is a `BadInputError` naming the results.jsonl line and the field.

What a report shows of local paths (unless `--absolute-paths`): an image's path as its record
gives it when relative, else relative to the run's folder (`shown_path`, also inside a failed
image's message); the model by its file name and digest (`public_card`); the source folder by
its name.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xaigraph.errors import BadInputError

__all__ = ["TARGET_FILES", "Resolver", "check_target", "find_original", "input_roots",
           "plain_name", "public_card", "shown_path"]

TARGET_FILES = ("map", "overlay", "raw")


class Resolver:
    """Real paths for one report's reading, each folder's resolved once (10 000 records name
    files in a few folders)."""

    def __init__(self) -> None:
        self._real: dict[str, str] = {}

    def real(self, path: str | os.PathLike[str]) -> str:
        """The real path of `path` (its folder's from the cache)."""
        text = os.fspath(path)
        if ".." in text.split(os.sep):  # `..` after a link is the link target's parent
            return os.path.realpath(text)
        head, name = os.path.split(os.path.abspath(text))
        full = os.path.join(self.folder(head), name)
        return os.path.realpath(full) if os.path.islink(full) else full

    def folder(self, path: str | os.PathLike[str]) -> str:
        """The real path of a folder named again and again (cached)."""
        text = os.fspath(path)
        if text not in self._real:
            self._real[text] = os.path.realpath(text)
        return self._real[text]

    def inside(self, path: str | os.PathLike[str], root: str) -> bool:
        """Whether `path`, links followed, lies in `root` (a real path)."""
        real = self.real(path)
        return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def plain_name(name: str, where: str) -> str:
    """A method's folder name from metrics.json: one path component, not `.` or `..`."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name):
        raise BadInputError(f"{where}: the method name {name!r} is not a folder name (a "
                            "report reads nothing outside its DIR)")
    return name


def check_target(folder: Path, value: Any, where: str, resolver: Resolver) -> None:
    """Refuse a target's `map`, `overlay` or `raw` (`value`) that names a file outside the
    run `folder` (nothing: fine)."""
    if value is None or value == "":
        return
    if not isinstance(value, str):
        raise BadInputError(f"{where}: not a path")
    if (value.startswith("/") or ".." in value.split("/") or "\\" in value or "\0" in value):
        raise BadInputError(f"{where}: {value!r} lies outside the run's folder {folder} (a "
                            "report reads nothing outside its run)")
    if not resolver.inside(os.path.join(folder, value), resolver.folder(folder)):
        raise BadInputError(f"{where}: {value!r} is a link leading outside the run's folder "
                            f"{folder} (a report reads nothing outside its run)")


def input_roots(folder: Path, card: dict[str, Any]) -> list[str] | None:
    """The real paths of the folders run.json `inputs` names (relative to the run's real
    path); None when it names none (a run of an older xaigraph)."""
    given = card.get("inputs")
    if given is None:
        return None
    if not isinstance(given, list) or not all(isinstance(f, str) for f in given):
        raise BadInputError(f"{folder / 'run.json'}: \"inputs\" is not a list of folders")
    base = os.path.realpath(folder)
    return [os.path.realpath(os.path.join(base, f)) for f in given]


def find_original(value: Any, bases: Sequence[Path], roots: Sequence[str],
                  where: str, resolver: Resolver) -> Path | None:
    """The original image a record's `path` names, when it exists in one of `roots`; None
    when it is not found (the report shows the map alone)."""
    if not isinstance(value, str) or not value or "\0" in value:
        return None
    path = Path(value)
    candidates = [path] if path.is_absolute() else [base / path for base in bases]
    found = [c for c in candidates if c.is_file()]
    for candidate in found:
        if any(resolver.inside(candidate, root) for root in roots):
            return candidate
    if found:
        raise BadInputError(f"{where}: the image {value!r} lies outside the inputs the run "
                            "recorded (run.json \"inputs\"); a report reads nothing outside "
                            "its run")
    return None


def shown_path(value: str, folder: Path) -> str:
    """A record's path as a report shows it: as written when relative, else relative to the
    run's folder (`folder`)."""
    if not os.path.isabs(value):
        return value
    try:
        return os.path.relpath(value, os.path.abspath(folder))
    except ValueError:  # another drive
        return os.path.basename(value)


def public_card(card: dict[str, Any]) -> dict[str, Any]:
    """run.json as a report shows it: the model by its file name (and digest)."""
    shown = copy.deepcopy(card)
    model = shown.get("model")
    if isinstance(model, dict) and isinstance(model.get("path"), str):
        model["path"] = os.path.basename(model["path"].rstrip("/\\")) or model["path"]
    return shown

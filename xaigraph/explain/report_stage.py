"""Where `xaigraph report` builds its folder and how it puts it in place, so that whatever
stops a build (SIGKILL included) the next one finds the old report or the new one, and
tidies what the stopped one left.

Beside OUT (the report folder) a build makes

    .xaigraph-report-XXXXXXXX        the stage: the new report, built there, then renamed to OUT
    .xaigraph-report-old-XXXXXXXX/   with --force, OUT's old report parked as NAME (OUT's name)
                                     between the two renames, deleted after the second

and holds an exclusive `flock` on each while it lives. A stage holds the report's marker from
its first moment. `recover(folder)`, run by every build before it looks at OUT, takes each of
these that no live build holds: a stage (empty, or with the marker) is deleted; a parked
report is put back as `folder/NAME` when nothing is there (the build was killed between the
renames: no new report was completed), else deleted (the new one is in place). Anything else
with such a name is left alone.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from xaigraph.errors import OutputExistsError

__all__ = ["MARKER", "Stage", "check_out", "is_report", "place", "recover"]

log = logging.getLogger(__name__)

MARKER = ".xaigraph-report"
_STAGE_PREFIX, _PARKED_PREFIX = ".xaigraph-report-", ".xaigraph-report-old-"
_STAGE = re.compile(r"\.xaigraph-report-[a-z0-9_]{8}")  # what tempfile.mkdtemp makes
_PARKED = re.compile(r"\.xaigraph-report-old-[a-z0-9_]{8}")


def is_report(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def check_out(out: Path, force: bool) -> None:
    """Refuse an `out` that exists without `force`, or that is not a report."""
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists; use --force to replace the report")
    if out.exists() and (not out.is_dir() or not is_report(out)):
        raise OutputExistsError(f"{out} exists and is not an xaigraph report; not replacing "
                                "it (remove it or choose another -o)")


def _locked_folder(prefix: str, parent: Path) -> tuple[Path, int]:
    """A new hidden folder in `parent`, locked (the descriptor holds the lock); a concurrent
    `recover` may take an empty one before it is locked, then another is made."""
    for _ in range(10):
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(folder).st_ino == os.fstat(fd).st_ino:
                return folder, fd
        except FileNotFoundError:
            pass
        os.close(fd)
    raise OSError(f"cannot create a folder in {parent}")


class Stage:
    """The locked stage of one build beside `out` (its marker written at once)."""

    def __init__(self, out: Path, marker: str) -> None:
        self.out = out
        self.path, self._fd = _locked_folder(_STAGE_PREFIX, out.parent)
        try:
            (self.path / MARKER).write_text(marker, encoding="utf-8")
        except BaseException:
            self.close(remove=True)
            raise

    def close(self, *, remove: bool) -> None:
        """Let the lock go; `remove`: delete the stage (a build that failed)."""
        if remove:
            shutil.rmtree(self.path, ignore_errors=True)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def place(stage: Path, out: Path, force: bool) -> None:
    """Rename the finished stage onto `out`; an old report is parked first and deleted after,
    so `out` is never a half-built report (and `recover` puts a parked one back)."""
    if not (out.exists() or out.is_symlink()):
        os.rename(stage, out)
        return
    check_out(out, force)
    parked, fd = _locked_folder(_PARKED_PREFIX, out.parent)
    try:
        os.rename(out, parked / out.name)
        try:
            os.rename(stage, out)
        except OSError:
            os.rename(parked / out.name, out)
            raise
        shutil.rmtree(parked, ignore_errors=True)
    finally:
        os.close(fd)


def recover(folder: Path) -> None:
    """Put back or delete what killed builds left in `folder` (see the module docstring);
    errors are only logged."""
    try:
        entries = [e for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for entry in entries:
        if _PARKED.fullmatch(entry.name):
            _with_lock(Path(entry.path), lambda path: _unpark(path, folder))
        elif _STAGE.fullmatch(entry.name):
            _with_lock(Path(entry.path), _drop_stage)


def _with_lock(path: Path, tidy: Callable[[Path], None]) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        tidy(path)
    except OSError as exc:  # held by a live build, or cannot be tidied
        log.debug("leaving %s: %s", path, exc)
    finally:
        os.close(fd)


def _drop_stage(stage: Path) -> None:
    names = os.listdir(stage)
    if not names or MARKER in names:
        log.info("removing %s, left by a report build that was stopped", stage)
        shutil.rmtree(stage)


def _unpark(parked: Path, folder: Path) -> None:
    children = [parked / name for name in os.listdir(parked)]
    if not all(child.is_dir() and not child.is_symlink() and is_report(child)
               for child in children):
        return  # not ours
    for child in children:
        if not os.path.lexists(folder / child.name):
            log.warning("%s: putting back the report a stopped build had moved aside",
                        folder / child.name)
            os.rename(child, folder / child.name)
    shutil.rmtree(parked)

"""Writing files atomically, alone or in pairs, with a commit the next run can finish.

`staged` is the one way xaigraph writes files: model files (`model_io.save_ir`,
`model_io.save_onnx`: an IR's `.xml` and `.bin`, an ONNX model and its `.onnx.data`), the
demo's picture and summary. Whatever interrupts a write, SIGKILL included, the destination
holds either all the old files or all the new ones, never a mix, and nothing else once the
next run in that folder has looked at it (`recover`).

How: a hidden staging folder beside the targets, `.xaigraph-XXXXXXXX.tmp` (short, so a
target's name may use the whole file-name limit), holds

    stage      a marker naming the folder as ours; the run holds a lock (flock) on the folder
    new/       the new files, under their final names (so files that name each other work)
    old/       the files they replace, moved there just before the commit
    commit     the names to put in place; written (atomically) once every old file is in old/

Before `commit` exists, undoing means moving `old/*` back; once it exists, finishing means
moving the named `new/*` into place and deleting `old/`. A run does one or the other as it
ends, in every case; a run killed on the way leaves its staging folder, unlocked, and the
next `recover` of that folder does it then. A folder is only touched when its name has our
pattern and its marker is ours (or it is empty), and never while its run's lock is held.
POSIX only (flock, directory file descriptors). Files are not fsync'ed: the guarantee is
against a process stopped at any point, not against a machine losing power.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from xaigraph.signals import deferred

__all__ = ["STAGE_PATTERN", "atomic_write", "recover", "staged"]

log = logging.getLogger(__name__)

STAGE_PATTERN = re.compile(r"\.xaigraph-[a-z0-9_]{8}\.tmp")  # what tempfile.mkdtemp makes
_PREFIX, _SUFFIX = ".xaigraph-", ".tmp"
_MARKER, _COMMIT, _NEW, _OLD = "stage", "commit", "new", "old"
_MAGIC = "xaigraph staging folder 1\n"
_ENTRIES = {_MARKER, _COMMIT, _COMMIT + ".part", _NEW, _OLD}


def _folder(targets: Sequence[Path]) -> Path:
    if not targets:
        raise ValueError("staged: no target files")
    folders = {t.parent if str(t.parent) else Path(".") for t in targets}
    if len(folders) > 1:
        raise ValueError("staged: the target files must share one folder")
    return folders.pop()


@contextmanager
def staged(targets: Sequence[Path]) -> Iterator[list[Path]]:
    """Temporary paths, one per target and with the target's own file name, in a staging
    folder beside the targets (which share one folder).

    When the block ends normally, the files the block wrote replace the targets, as one
    commit: a target the block did not write is removed (it belonged to the old set: an
    ONNX model's external data, when the new model has none to write). On an exception or
    an interruption nothing is replaced. The staging folder is removed in every case.
    """
    folder = _folder(targets)
    for t in targets:
        if os.path.isdir(t) and not os.path.islink(t):
            raise IsADirectoryError(f"{t} is a folder")
    recover(folder)
    stage, lock = _create_stage(folder)
    try:
        temps = [stage / _NEW / t.name for t in targets]
        yield temps
        written = [t.name for tmp, t in zip(temps, targets, strict=True) if os.path.lexists(tmp)]
        with deferred():
            _commit(stage, folder, [t.name for t in targets], written)
    finally:
        try:
            _settle(stage, folder)
        except OSError as exc:
            log.warning("could not tidy %s (%s); the next run in %s does it", stage,
                        exc.strerror or exc, folder)
        finally:
            os.close(lock)


def _create_stage(folder: Path) -> tuple[Path, int]:
    """A new staging folder, locked (the fd holds the lock), with its marker and `new/`."""
    for _ in range(10):
        stage = Path(tempfile.mkdtemp(prefix=_PREFIX, suffix=_SUFFIX, dir=folder))
        try:
            lock = os.open(stage, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:  # a concurrent `recover` took it for a dead run's
            continue
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if os.stat(stage).st_ino == os.fstat(lock).st_ino:
                (stage / _MARKER).write_text(_MAGIC)
                (stage / _NEW).mkdir()
                return stage, lock
        except FileNotFoundError:
            pass
        os.close(lock)
    raise OSError(f"cannot create a staging folder in {folder}")


def _commit(stage: Path, folder: Path, names: list[str], written: list[str]) -> None:
    """Move the old files aside, record the commit, put the new files in place."""
    (stage / _OLD).mkdir()
    for name in names:
        if os.path.lexists(folder / name):
            os.replace(folder / name, stage / _OLD / name)
    part = stage / (_COMMIT + ".part")
    part.write_text("".join(n + "\n" for n in written))
    os.replace(part, stage / _COMMIT)  # the commit point
    for name in written:
        os.replace(stage / _NEW / name, folder / name)


def _settle(stage: Path, folder: Path) -> None:
    """Finish a committed staging folder or undo an uncommitted one, then remove it."""
    commit = stage / _COMMIT
    if commit.exists():
        for name in commit.read_text().splitlines():
            if os.path.lexists(stage / _NEW / name):
                os.replace(stage / _NEW / name, folder / name)
    elif (stage / _OLD).is_dir():
        for old in (stage / _OLD).iterdir():
            os.replace(old, folder / old.name)
    for sub in (_OLD, _NEW):  # old/ first: with `commit` gone, old/ would be put back
        if (stage / sub).exists():
            shutil.rmtree(stage / sub)
    for name in (_COMMIT, _COMMIT + ".part", _MARKER):
        (stage / name).unlink(missing_ok=True)
    stage.rmdir()


def recover(folder: str | os.PathLike[str]) -> None:
    """Finish or undo the writes that runs killed in `folder` left, and remove their staging
    folders. Folders of runs still alive (locked) and anything not ours are left alone;
    errors (a read-only folder, say) are only logged."""
    try:
        entries = [e for e in os.scandir(folder) if STAGE_PATTERN.fullmatch(e.name)]
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            _recover_one(Path(entry.path), Path(folder))


def _recover_one(stage: Path, folder: Path) -> None:
    try:
        lock = os.open(stage, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _is_ours(stage):
            log.debug("completing or undoing the interrupted write in %s", stage)
            _settle(stage, folder)
    except OSError as exc:  # locked by a live run, or not ours to fix
        log.debug("leaving %s: %s", stage, exc)
    finally:
        os.close(lock)


def _is_ours(stage: Path) -> bool:
    names = set(os.listdir(stage))
    if not names:
        return True  # created, killed before its marker: empty
    if not names <= _ENTRIES or _MARKER not in names:
        return False
    with suppress(OSError), open(stage / _MARKER) as f:
        text = f.read(len(_MAGIC) + 1)
        return text == _MAGIC or (text == "" and names == {_MARKER})
    return False


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` to write a temporary file (same name as `path`, another folder),
    then rename it onto `path`; on any failure `path` is left as it was."""
    target = Path(path)
    with staged([target]) as (tmp,):
        write(tmp)
        if not tmp.exists():
            raise OSError(f"nothing was written for {target}")

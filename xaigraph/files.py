"""Writing files atomically: into a temporary folder beside the destination, then renamed.

`staged` is the one way xaigraph writes files: model files (`model_io.save_ir`,
`model_io.save_onnx`), the demo's picture and summary. A reader of the destination sees the
old file or the new one, never a half-written one; a failed or interrupted write (any
exception, `KeyboardInterrupt` included) leaves no temporary file behind and the old file as
it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "staged"]


@contextmanager
def staged(targets: Sequence[Path]) -> Iterator[list[Path]]:
    """Temporary paths, one per target and with the target's own file name, in a hidden
    folder beside the targets (which share one folder).

    When the block ends normally, every temporary file the block wrote is renamed onto its
    target, in the order given (a temporary the block did not write is skipped: for an
    optional file, such as an ONNX model's external data). The temporary folder is removed
    in every case. Files that refer to each other by name (an IR's `.xml` and `.bin`, an ONNX
    model and its data file) keep working, since the names are the final ones.
    """
    if not targets:
        raise ValueError("staged: no target files")
    folder = targets[0].parent if str(targets[0].parent) else Path(".")
    if any((t.parent if str(t.parent) else Path(".")) != folder for t in targets):
        raise ValueError("staged: the target files must share one folder")
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{targets[0].name}.", suffix=".tmp", dir=folder))
    try:
        temps = [tmp_dir / t.name for t in targets]
        yield temps
        for tmp, target in zip(temps, targets, strict=True):
            if tmp.exists():
                os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` to write a temporary file (same name as `path`, another folder),
    then rename it onto `path`; on any failure `path` is left as it was."""
    target = Path(path)
    with staged([target]) as (tmp,):
        write(tmp)
        if not tmp.exists():
            raise OSError(f"nothing was written for {target}")

"""`results.jsonl` and `run.json` in an explain OUT_DIR: writing, reading, resuming.

- `run.json` is the model card (`ExplainSpec.card()`) and `digest`, the options digest: a
  hash of the card without the model's path (the model by its sha256, the method, target
  layer, pipeline, preprocessing, labels, options, runtime and xaigraph version).
- `results.jsonl` has one JSON object per image, in input order (docs/runtime.md). While a
  run goes, its lines are appended to `.results.jsonl.partial` (flushed line by line); at the
  end that file is renamed onto `results.jsonl`. A run that was stopped leaves the partial
  file; the next run first folds it into `results.jsonl` (atomically), so every image done
  before the stop counts.
- Resume: a line whose `run` is this run's digest, whose status is `ok` and whose files all
  exist is kept as it is and the image skipped (`Resume.done`); errors are retried.
- An OUT_DIR whose run.json has another digest (another model or other options) is refused
  without `force` (`check_run`): one line naming --force. With `force` every image is redone
  and run.json replaced; files of the old run that this one does not write stay.
- Files are written to a hidden temporary name in their folder and renamed (`write_file`),
  so no reader ever sees half a PNG; temporaries a killed run left are removed at the next
  start (`clean_temporaries`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from xaigraph.errors import OutputExistsError
from xaigraph.files import atomic_write

__all__ = [
    "PARTIAL",
    "RESULTS",
    "RUN",
    "ResultsWriter",
    "Resume",
    "check_run",
    "clean_temporaries",
    "digest",
    "read_lines",
    "read_run",
    "record_files",
    "write_file",
    "write_run",
]

RESULTS = "results.jsonl"
RUN = "run.json"
PARTIAL = ".results.jsonl.partial"
FOLDERS = ("maps", "overlays", "raw")
_TEMP = re.compile(r"\..+\.\d+-\d+\.xaigraph-tmp")
_counter = itertools.count()
_lock = threading.Lock()


def digest(card: dict[str, Any]) -> str:
    """The options digest of a run.json card (16 hex digits)."""
    body = {k: v for k, v in card.items() if k not in ("digest", "started")}
    body["model"] = {k: v for k, v in card.get("model", {}).items() if k != "path"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=False, default=str)


def write_file(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` with a hidden temporary path beside `path`, then rename it onto
    `path` (creating the folders); on a failure the temporary is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock:
        n = next(_counter)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{n}.xaigraph-tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def clean_temporaries(out_dir: Path) -> int:
    """Remove the temporaries `write_file` left in maps/, overlays/ and raw/ (a killed
    run's); how many."""
    count = 0
    for folder in FOLDERS:
        root = out_dir / folder
        if not root.is_dir():
            continue
        for dirpath, _, names in os.walk(root):
            for name in names:
                if _TEMP.fullmatch(name):
                    Path(dirpath, name).unlink(missing_ok=True)
                    count += 1
    return count


def write_run(out_dir: Path, card: dict[str, Any]) -> None:
    text = json.dumps(card, indent=2, default=str) + "\n"
    atomic_write(out_dir / RUN, lambda p: p.write_text(text, encoding="utf-8"))


def read_run(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out_dir / RUN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_run(out_dir: Path, run: str, force: bool) -> None:
    """Refuse an OUT_DIR that holds another run (other model or options) unless `force`."""
    previous = read_run(out_dir)
    if force or previous is None:
        if previous is None and not force and (out_dir / RESULTS).exists():
            raise OutputExistsError(f"{out_dir} has a {RESULTS} but no {RUN}: pass --force to "
                                    "redo the images there, or choose another -o")
        return
    if previous.get("digest") != run:
        raise OutputExistsError(
            f"{out_dir} holds a run with another model or other options (run "
            f"{previous.get('digest')}, this one {run}): pass --force to redo it there, or "
            "choose another -o")


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a jsonl file; a torn last line (a killed run's) is ignored."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


def record_files(record: dict[str, Any]) -> list[str]:
    """The relative paths of the files a record names."""
    files = []
    for target in record.get("targets") or []:
        for key in ("map", "overlay", "raw"):
            if target.get(key):
                files.append(target[key])
    return files


class Resume:
    """What an OUT_DIR already holds: its records by key (results.jsonl, then a stopped
    run's partial lines over them)."""

    def __init__(self, out_dir: Path, run: str, force: bool) -> None:
        self.out_dir = out_dir
        self.run = run
        self.force = force
        self.records: dict[str, dict[str, Any]] = {}
        for path in (out_dir / RESULTS, out_dir / PARTIAL):
            for record in read_lines(path):
                if isinstance(record.get("key"), str):
                    self.records[record["key"]] = record
        self.skipped = 0

    def fold_partial(self) -> None:
        """Make results.jsonl hold every record known (a stopped run's partial lines
        folded in), and remove the partial file."""
        partial = self.out_dir / PARTIAL
        if not partial.exists():
            return
        lines = "".join(_dump(r) + "\n" for r in self.records.values())
        atomic_write(self.out_dir / RESULTS, lambda p: p.write_text(lines, encoding="utf-8"))
        partial.unlink()

    def done(self, key: str) -> dict[str, Any] | None:
        """The record to keep for `key` when its image need not be redone, else None."""
        if self.force:
            return None
        record = self.records.get(key)
        if record is None or record.get("status") != "ok" or record.get("run") != self.run:
            return None
        if all((self.out_dir / f).exists() for f in record_files(record)):
            self.skipped += 1
            return record
        return None


class ResultsWriter:
    """Appends records to the partial file; `commit` renames it onto results.jsonl."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._file: TextIO | None = open(out_dir / PARTIAL, "w", encoding="utf-8")  # noqa: SIM115

    def add(self, record: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(_dump(record) + "\n")
        self._file.flush()

    def commit(self) -> None:
        self.close()
        partial = self.out_dir / PARTIAL
        atomic_write(self.out_dir / RESULTS, lambda p: os.replace(partial, p))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

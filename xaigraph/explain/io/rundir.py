"""One run's OUT_DIR: checked before anything is written, locked while the run writes,
resumable after any stop (docs/runtime.md, "The run loop").

    out = RunDir(path, card, force=force)
    out.check()                  # may refuse the run: nothing written yet
    with out:                    # mkdir, lock, tidy, fold a stopped run's lines, run.json
        for record in records:   # the engine's, in input order; out.done(key) skips
            out.add(record)
        out.commit()             # results.jsonl: this run's records, then the kept others

- `run.json` is the model card (`ExplainSpec.card()`) and `digest`, the options digest: a
  hash of the card without the model's path and `inputs`. `inputs` (`add_inputs`): the
  folders the run's images were read from (`input_folders`: real paths, none inside another,
  relative to OUT_DIR's real path), those of earlier runs of the same digest kept; the
  report copies no original from elsewhere.
- `results.jsonl` has one JSON object per image. While a run goes, its lines are appended to
  `.results.jsonl.partial` (flushed line by line); `commit` writes results.jsonl as this
  run's records in input order followed by the records of images this run was not given
  (same digest: a rerun over a subset loses nothing). A run that was stopped leaves the
  partial file; the next run first folds it into results.jsonl (atomically).
- Resume: a line whose `run` is this run's digest, whose status is `ok` and whose files all
  exist is kept as it is and the image skipped (`done`); errors are retried.
- Refused without `force`, before anything is written (`check`): an OUT_DIR whose run.json
  has another digest, a run.json that is not an xaigraph run card, a results.jsonl without
  run.json. Refused always: an OUT_DIR that is a file, not writable, or whose `maps/`,
  `overlays/` or `raw/` is not a folder; an OUT_DIR another process is writing (`LOCK`).
- One writer per OUT_DIR: an exclusive `flock` on `OUT_DIR/.xaigraph.lock` (holding the
  writer's pid) for the whole run. The file stays after the run: it marks the folder as an
  xaigraph output, which input folders skip (`is_output`).
- Files are written to a hidden temporary name in their folder and renamed (`write_file`),
  so no reader ever sees half a PNG; temporaries a killed run left are removed at the next
  start. An `OSError` writing one image's files is that image's error when `image_error`
  says so (a name too long, a path component that is a file); a full disk, a read-only or
  unwritable OUT_DIR end the run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from xaigraph import jsontext, textfile
from xaigraph.errors import AccessError, FileError, OutputExistsError
from xaigraph.explain.io.record import Record, RecordError
from xaigraph.files import atomic_write

__all__ = [
    "FOLDERS",
    "LOCK",
    "PARTIAL",
    "RESULTS",
    "RUN",
    "OutputInUseError",
    "RunDir",
    "check_writable",
    "digest",
    "dumps",
    "image_error",
    "input_folders",
    "is_output",
    "locked",
    "probe_lock",
    "read_lines",
    "read_raw_map",
    "read_run",
    "write_file",
]

RESULTS = "results.jsonl"
RUN = "run.json"
PARTIAL = ".results.jsonl.partial"
LOCK = ".xaigraph.lock"
FOLDERS = ("maps", "overlays", "raw")
_TEMP = re.compile(r"\..+\.\d+-\d+\.xaigraph-tmp")
_CARD_KEYS = ("digest", "xaigraph_version", "model", "method")
# errors of the place the run writes to, not of one image's files: they end the run
_RUN_LEVEL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
              errno.EMFILE, errno.ENFILE, errno.ENOMEM}
_counter = itertools.count()
_lock = threading.Lock()


class OutputInUseError(OutputExistsError):
    """OUT_DIR is locked by another xaigraph run."""

    kind = "output-in-use"


def digest(card: dict[str, Any]) -> str:
    """The options digest of a run.json card (16 hex digits)."""
    text = json.dumps(_hashed(card), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _hashed(card: dict[str, Any]) -> dict[str, Any]:
    """What `digest` hashes of a card: all but the digest, the start time, the input folders
    and the model's path."""
    body = {k: v for k, v in card.items() if k not in ("digest", "started", "inputs")}
    body["model"] = {k: v for k, v in card.get("model", {}).items() if k != "path"}
    return body


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(_leaves(item, f"{prefix}.{key}" if prefix else str(key)))
        return found
    return {prefix: value}


def _shown(value: Any, start: int = 0) -> str:
    """A card value as an error shows it: from `start`, at most 40 characters."""
    text = "none" if value is None else value if isinstance(value, str) else json.dumps(
        value, default=str)
    text = ("..." if start else "") + text[start:]
    return text if len(text) <= 40 else text[:37] + "..."


# The fields an error names first: what the user chose; then what follows from it.
_FIRST = ("options.", "model.sha256", "method.name", "runtime", "preprocessing.", "labels")


def _rank(name: str) -> int:
    return next((i for i, p in enumerate(_FIRST) if name.startswith(p)), len(_FIRST))


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def differences(before: dict[str, Any], now: dict[str, Any], most: int = 3) -> str:
    """The first `most` fields (dotted names) in which two run cards' digests differ, with
    their two values (`options.targets topk:1 there, topk:3 here; ...`), the options first."""
    old = _leaves(json.loads(json.dumps(_hashed(before), default=str)))
    new = _leaves(json.loads(json.dumps(_hashed(now), default=str)))
    names = sorted((k for k in {**old, **new} if old.get(k) != new.get(k)), key=_rank)
    if not names:
        return f"run {before.get('digest')}, this one {now.get('digest')}"
    parts = []
    for k in names[:most]:
        a, b = old.get(k), new.get(k)
        start = 0
        if isinstance(a, str) and isinstance(b, str):  # from a little before they differ
            start = max(0, _common_prefix(a, b) - 10)
        parts.append(f"{k} {_shown(a, start)} there, {_shown(b, start)} here")
    more = f"; {len(names) - most} more" if len(names) > most else ""
    return "; ".join(parts) + more


def dumps(obj: Any) -> str:
    """One results.jsonl line (without its newline): strict JSON, `null` for a value that
    is not a finite number (`xaigraph.jsontext`)."""
    return jsontext.dumps(obj, sort_keys=False, default=str)


def image_error(exc: OSError) -> bool:
    """Whether a failed write of one image's files is that image's error (the run goes
    on), rather than the run's (a full disk, a read-only or unwritable OUT_DIR)."""
    return exc.errno not in _RUN_LEVEL


def _temporary_name(name: str, n: int) -> str:
    """A hidden temporary name for `name`, never longer than it plus 30 bytes and at most
    about 130 bytes: a target whose name is near the limit must fail on its own name."""
    short = name.encode("utf-8", "surrogateescape")[:96].decode("utf-8", "ignore") or "f"
    return f".{short}.{os.getpid()}-{n}.xaigraph-tmp"


def write_file(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` with a hidden temporary path beside `path`, then rename it onto
    `path` (creating the folders); on a failure the temporary is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock:
        n = next(_counter)
    tmp = path.with_name(_temporary_name(path.name, n))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _clean_temporaries(out_dir: Path) -> int:
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


def input_folders(folders: Iterable[str | os.PathLike[str]], out_dir: Path) -> list[str]:
    """run.json `inputs`: `folders` (absolute, or relative to `out_dir`'s real path) as real
    paths, none inside another, sorted, relative to `out_dir`'s real path."""
    base = os.path.realpath(out_dir)
    real = {os.path.realpath(os.path.join(base, f)) for f in folders}
    kept: list[str] = []
    for folder in sorted(real, key=lambda f: Path(f).parts):  # a folder's own come after it
        if not kept or os.path.commonpath([kept[-1], folder]) != kept[-1]:
            kept.append(folder)
    return [os.path.relpath(folder, base) for folder in kept]


def read_run(out_dir: Path) -> dict[str, Any] | None:
    """OUT_DIR's run card; None when there is none or it is not an xaigraph card."""
    try:
        card = json.loads((out_dir / RUN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if _is_card(card) else None


def _is_card(card: Any) -> bool:
    return isinstance(card, dict) and all(k in card for k in _CARD_KEYS)


def read_raw_map(folder: Path, target: dict[str, Any]) -> Any:
    """The raw map (`.npy`, written by `--raw`) a results.jsonl target names, as float64;
    `BadInputError` (one line) for a target without one or a file that cannot be read."""
    import numpy as np

    from xaigraph.errors import BadInputError

    rel = target.get("raw")
    if not isinstance(rel, str):
        raise BadInputError(f"{folder}: a target without its raw map; run xaigraph explain "
                            "with --raw")
    try:
        return np.asarray(np.load(folder / rel), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{folder / rel}: cannot read the raw map ({exc})") from exc


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a jsonl file; a torn last line (a killed run's) is ignored, and
    so is a line that is not UTF-8 JSON. Anything but a regular file (a FIFO, a device) is a
    one-line `BadInputError`, found without blocking."""
    if not path.exists():
        return
    with textfile.open_regular(path) as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                obj = json.loads(line)  # bytes: UTF-8, or a ValueError
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


def is_output(folder: Path) -> bool:
    """Whether `folder` is an xaigraph run's OUT_DIR or EVAL_DIR: it has the lock file, or
    (written before there was one) a run.json and a results.jsonl."""
    return (folder / LOCK).is_file() or ((folder / RUN).is_file()
                                          and (folder / RESULTS).is_file())


def check_writable(out: Path) -> None:
    """`out` must be a folder we can create or write in (checked before writing)."""
    if out.exists() and not out.is_dir():
        raise FileError(f"cannot write into {out}: it is a file, not a folder")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise FileError(f"cannot create {out}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise AccessError(f"cannot write into {out}: permission denied ({probe})")


def _take_lock(folder: Path) -> int:
    """The file descriptor of `folder`'s lock, held exclusively; `OutputInUseError` naming
    the holder's pid when another process holds it."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise OutputInUseError(f"{folder} is in use by another xaigraph run (pid {holder})"
                               ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
    return fd


def probe_lock(folder: Path) -> None:
    """Refuse now, writing nothing, when another run holds `folder`'s lock."""
    if not (folder / LOCK).is_file():
        return
    fd = os.open(folder / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        raise OutputInUseError(f"{folder} is in use by another xaigraph run (pid {holder})"
                               ) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """`folder` (created) locked for the block, as a run locks its OUT_DIR."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = _take_lock(folder)
    try:
        yield
    finally:
        os.close(fd)


class RunDir:
    """One run's OUT_DIR (see the module's docstring). `card` is run.json's content with
    its `digest`."""

    def __init__(self, path: Path, card: dict[str, Any], *, force: bool) -> None:
        self.path = path
        self.card = card
        self.run = str(card["digest"])
        self.force = force
        self.skipped = 0
        self._records: dict[str, Record] = {}
        self._added: set[str] = set()
        self._lock: int | None = None
        self._file: TextIO | None = None

    # -- before anything is written --------------------------------------------------------------

    def check(self) -> None:
        """Everything that can refuse the run, writing nothing; reads what OUT_DIR holds
        (for `done`)."""
        check_writable(self.path)
        for folder in FOLDERS:
            sub = self.path / folder
            if (sub.exists() or sub.is_symlink()) and not sub.is_dir():
                raise FileError(f"{sub} is not a folder; explain writes its {folder} there "
                                "(move it, or choose another -o)")
        probe_lock(self.path)
        self._check_card()
        self._read()

    def _check_card(self) -> None:
        where = self.path / RUN
        if self.force:
            return
        if not where.exists():
            if (self.path / RESULTS).exists():
                raise OutputExistsError(f"{self.path} has a {RESULTS} but no {RUN}: pass "
                                        "--force to redo the images there, or choose "
                                        "another -o")
            return
        previous = read_run(self.path)
        if previous is None:
            raise OutputExistsError(f"{where} is not an xaigraph run card: pass --force to "
                                    "replace it, or choose another -o")
        if previous.get("digest") != self.run:
            raise OutputExistsError(
                f"{self.path} holds a run with another model or other options "
                f"({differences(previous, self.card)}): pass --force to redo it there, or "
                "choose another -o")

    def _read(self) -> None:
        """The records OUT_DIR holds, by key (a stopped run's partial lines over
        results.jsonl); lines that are not records are dropped."""
        self._records = {}
        for path in (self.path / RESULTS, self.path / PARTIAL):
            for line in read_lines(path):
                with contextlib.suppress(RecordError):
                    record = Record.from_json(line)
                    self._records[record.key] = record

    def done(self, key: str) -> Record | None:
        """The record to keep for `key` when its image need not be redone, else None."""
        if self.force:
            return None
        record = self._records.get(key)
        if record is None or not record.ok or record.run != self.run:
            return None
        if all(self._own(f) and (self.path / f).exists() for f in record.files()):
            self.skipped += 1
            return record
        return None

    def _own(self, name: str) -> bool:
        """Whether a record's file `name` is a file of this run: a relative path inside
        OUT_DIR (a line that names `../elsewhere` or `/etc/...` is redone, never kept for eval
        and the report to read)."""
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            return False
        root = self.path.resolve()
        return (root / rel).resolve().is_relative_to(root)

    def todo(self, keys: Iterator[str] | list[str]) -> bool:
        """Whether any of `keys` has to be done (without counting skips)."""
        skipped = self.skipped
        try:
            return any(self.done(k) is None for k in keys)
        finally:
            self.skipped = skipped

    def add_inputs(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Record the folders the images at `paths` are read from (run.json `inputs`; links
        followed: an image's real folder)."""
        folders = {os.path.dirname(os.path.realpath(p)) for p in paths}
        self.card["inputs"] = input_folders(folders, self.path)

    # -- the run -----------------------------------------------------------------------------------

    def __enter__(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _take_lock(self.path)
        try:
            self._check_card()  # another run may have written here since `check`
            self._read()
            _clean_temporaries(self.path)
            self._fold_partial()
            self._keep_inputs()
            text = jsontext.dumps(self.card, indent=2, default=str) + "\n"
            atomic_write(self.path / RUN, lambda p: p.write_text(text, encoding="utf-8"))
            self._file = open(self.path / PARTIAL, "w", encoding="utf-8")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _keep_inputs(self) -> None:
        """`inputs` of the run.json being replaced, when its run is this one (its records
        are kept), join this run's."""
        previous = read_run(self.path)
        if "inputs" not in self.card or previous is None or previous.get("digest") != self.run:
            return
        before = previous.get("inputs")
        if isinstance(before, list) and all(isinstance(f, str) for f in before):
            self.card["inputs"] = input_folders([*before, *self.card["inputs"]], self.path)

    def _fold_partial(self) -> None:
        """Make results.jsonl hold every record known (a stopped run's partial lines
        folded in), and remove the partial file."""
        partial = self.path / PARTIAL
        if not partial.exists():
            return
        lines = "".join(dumps(r.to_json()) + "\n" for r in self._records.values())
        atomic_write(self.path / RESULTS, lambda p: p.write_text(lines, encoding="utf-8"))
        partial.unlink()

    def add(self, record: Record) -> None:
        assert self._file is not None, "RunDir.add outside its `with` block"
        self._file.write(dumps(record.to_json()) + "\n")
        self._file.flush()
        self._added.add(record.key)

    def commit(self) -> None:
        """results.jsonl: this run's records, then those of this run's digest for images
        it was not given."""
        assert self._file is not None, "RunDir.commit outside its `with` block"
        self._file.close()
        self._file = None
        kept = [r for k, r in self._records.items()
                if k not in self._added and r.run == self.run]
        partial = self.path / PARTIAL

        def write(tmp: Path) -> None:
            with open(tmp, "w", encoding="utf-8") as out, open(partial, encoding="utf-8") as f:
                for line in f:
                    out.write(line)
                for record in kept:
                    out.write(dumps(record.to_json()) + "\n")

        atomic_write(self.path / RESULTS, write)
        partial.unlink()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

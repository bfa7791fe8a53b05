"""The output pair as one commit: a process killed at any step of `staged` (SIGKILL: no
clean-up runs) leaves OUT as the old pair or the new one once the next run has recovered
the folder, and nothing else; `recover` touches nothing that is not ours or still alive.

The sweep forks a child per step: the child counts the file-system calls `staged` makes
(`os.*`, `open`) and exits with `os._exit` (no `finally`, like SIGKILL) before call N.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from xaigraph.files import STAGE_PATTERN, recover, staged

OLD = {"o.xml": b"<old/>", "o.bin": b"old weights"}
NEW = {"o.xml": b"<new/>", "o.bin": b"new weights, longer"}
_IO_MODULES = {"posix", "_io", "io"}


def _write_pair(folder: Path) -> None:
    targets = [folder / "o.bin", folder / "o.xml"]
    with staged(targets) as temps:
        for tmp in temps:
            tmp.write_bytes(NEW[tmp.name])


def _die_at(n: int) -> Callable[[FrameType, str, Any], None]:
    """A profile function that ends the process at the n-th call into the OS."""
    count = [0]

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call" and getattr(arg, "__module__", None) in _IO_MODULES:
            count[0] += 1
            if count[0] == n:
                os._exit(9)

    return profile


def _run_killed(action: Callable[[], None], n: int) -> bool:
    """Run `action` in a child killed at its n-th OS call; True if it was killed."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest clean-up, no finally blocks after the kill
        sys.setprofile(_die_at(n))
        try:
            action()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 9


def _state(folder: Path) -> str:
    """'old' or 'new' when the folder holds exactly that pair; what it holds otherwise."""
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    for name, pair in (("old", OLD), ("new", NEW)):
        if files == pair:
            return name
    return f"a mix: {sorted(files)}"


def _fresh(folder: Path) -> Path:
    folder.mkdir()
    for name, data in OLD.items():
        (folder / name).write_bytes(data)
    return folder


def _pending(folder: Path) -> str | None:
    """What the staging folder a killed write left needs: "undo", "finish" or None."""
    for stage in (p for p in folder.iterdir() if STAGE_PATTERN.fullmatch(p.name)):
        if (stage / "commit").exists() and any((stage / "new").glob("*")):
            return "finish"
        if not (stage / "commit").exists() and any((stage / "old").glob("*")):
            return "undo"
    return None


def _recover_killed_everywhere(folder: Path, scratch: Path) -> None:
    """Kill `recover(folder)` at each of its steps (on copies): the next one still ends in
    the old or the new pair."""
    n = 1
    while True:
        copy = scratch / f"r{n}"
        shutil.copytree(folder, copy)
        killed = _run_killed(lambda c=copy: recover(c), n)  # type: ignore[misc]
        recover(copy)
        assert _state(copy) in ("old", "new"), f"recovery killed at OS call {n}"
        if not killed:
            return
        n += 1


def test_every_kill_point_leaves_old_or_new(tmp_path: Path) -> None:
    """Kill the write at each of its OS calls; the first time a kill leaves a half-done
    commit to undo, and one to finish, kill the recovery at each of its calls as well.

    Run in a fresh interpreter that has imported nothing heavy (`xaigraph.files` needs only
    the standard library): its forks cost a millisecond, this process's tens."""
    code = f"from tests.unit.test_files_commit import sweep; sweep({str(tmp_path)!r})"
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "openvino" not in proc.stdout, "the sweep process imported OpenVINO"


def sweep(scratch: str) -> None:
    tmp_path = Path(scratch)
    seen: dict[str, int] = {}
    swept: set[str] = set()
    n = 1
    while True:
        folder = _fresh(tmp_path / f"k{n}")
        killed = _run_killed(lambda f=folder: _write_pair(f), n)  # type: ignore[misc]
        pending = _pending(folder)
        if pending is not None and pending not in swept:
            swept.add(pending)
            _recover_killed_everywhere(folder, tmp_path / pending)
        left = [p.name for p in folder.iterdir() if STAGE_PATTERN.fullmatch(p.name)]
        recover(folder)
        state = _state(folder)
        assert state in ("old", "new"), f"killed at OS call {n}: {state}"
        seen[state] = seen.get(state, 0) + 1
        if not killed:
            assert left == [] and state == "new"
            break
        n += 1
        assert n < 500
    assert seen["old"] > 5 and seen["new"] > 1, seen  # kills before and after the commit
    assert swept == {"undo", "finish"}
    print(sorted(m for m in sys.modules if m.startswith(("openvino", "onnx"))))


def test_a_big_stale_temporary_is_removed_by_the_next_run(tmp_path: Path) -> None:
    """Killed while writing 9 MB: the next write in that folder removes the temporaries."""
    folder = _fresh(tmp_path / "out")

    def write_slowly() -> None:
        with staged([folder / "o.bin", folder / "o.xml"]) as (bin_, _):
            bin_.write_bytes(b"\0" * 9_000_000)
            os._exit(9)

    _run_killed(write_slowly, 10**9)
    (stage,) = [p for p in folder.iterdir() if p.name not in OLD]
    assert STAGE_PATTERN.fullmatch(stage.name)
    _write_pair(folder)
    assert _state(folder) == "new"


def test_a_live_stage_and_foreign_folders_are_left_alone(tmp_path: Path) -> None:
    folder = _fresh(tmp_path / "out")
    foreign = {
        ".xaigraph-abcdefgh.tmp": {"notes.txt": b"mine"},  # our pattern, not our contents
        ".xaigraph-ijklmnop.tmp": {"stage": b"something else\n"},  # a marker not ours
        ".o.xml.abcd1234.tmp": {"o.xml": b"x"},  # another pattern
        ".xaigraph-qrstuvwx.tmpx": {},
    }
    for name, files in foreign.items():
        (folder / name).mkdir()
        for fname, data in files.items():
            (folder / name / fname).write_bytes(data)
    with staged([folder / "o.bin", folder / "o.xml"]) as temps:
        temps[0].write_bytes(NEW["o.bin"])
        recover(folder)  # another run, while this one is writing
        assert temps[0].read_bytes() == NEW["o.bin"]
        temps[1].write_bytes(NEW["o.xml"])
    recover(folder)
    assert {p.name for p in folder.iterdir()} == set(OLD) | set(foreign)
    assert all((folder / n / f).read_bytes() == d for n, fs in foreign.items()
               for f, d in fs.items())
    assert (folder / "o.xml").read_bytes() == NEW["o.xml"]


def test_an_empty_stage_of_a_killed_run_is_removed(tmp_path: Path) -> None:
    folder = _fresh(tmp_path / "out")
    (folder / ".xaigraph-abc_1234.tmp").mkdir()  # killed between mkdtemp and its marker
    recover(folder)
    assert _state(folder) == "old"


def test_failure_during_the_commit_rolls_back(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The second rename fails (an immutable .xml, say): the old pair is put back whole."""
    folder = _fresh(tmp_path / "out")
    real = os.replace
    calls = [0]

    def replace(src: Any, dst: Any) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise PermissionError(1, "Operation not permitted", str(src))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(PermissionError):
        _write_pair(folder)
    monkeypatch.undo()
    assert _state(folder) == "old"


def test_sigterm_cleans_up_like_ctrl_c(tmp_path: Path) -> None:
    """With the command line's handlers, SIGTERM inside a write rolls it back and exits 143."""
    folder = _fresh(tmp_path / "out")
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from xaigraph.files import staged\n"
        "from xaigraph.signals import Interrupted, install\n"
        "install()\n"
        "folder = Path(sys.argv[1])\n"
        "try:\n"
        "    with staged([folder / 'o.bin', folder / 'o.xml']) as (b, x):\n"
        "        b.write_bytes(b'\\0' * 9_000_000)\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        x.write_bytes(b'never')\n"
        "except Interrupted as exc:\n"
        "    sys.exit(exc.exit_code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 143, proc.stderr
    assert _state(folder) == "old"

"""The reaper of a local Ray instance: its processes end with the command, even a killed one.

`explain --engine ray` without `--ray-address` starts a local Ray instance. Ray ends the GCS
and the raylet with the driver, but not the agents the raylet starts (the dashboard and
runtime-env agents): after a SIGKILL of the driver they stay for a minute or more. `start`
runs this module as a small child process that, while the driver lives, notes every Ray
process below the driver (by pid and start time), and once the driver closes its end of the
pipe (at the end of the run, or by dying) kills those still running. It ignores the
terminal's signals: Ctrl-C reaches the whole process group, and the reaper must outlive the
driver to do its work. It imports the standard library only.

    reaper = ray_reaper.start()     # after ray.init
    ...
    ray_reaper.stop(reaper)         # after ray.shutdown
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["descendants", "start", "stop"]

POLL = 0.25  # seconds between two looks at the driver's descendants
_SESSION = re.compile(rb"session_\d{4}-\d\d-\d\d_[\d-]+_\d+_\d+")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields is not None and fields[0] != "Z" else None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _same_session(seen: dict[int, str], sessions: set[bytes]) -> dict[int, str]:
    """Running processes whose command line names one of `sessions` (Ray's session folder):
    those a raylet started just before it died, reparented before they were noted."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in seen and int(entry) != os.getpid():
            found_session = _SESSION.search(_cmdline(int(entry)))
            if found_session and found_session.group(0) in sessions:
                start = _start_time(int(entry))
                if start is not None:
                    found[int(entry)] = start
    return found


def descendants(root: int) -> set[int]:
    """Every process below `root` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _watch(driver: int) -> tuple[dict[int, str], set[bytes]]:
    """Note the driver's Ray descendants until stdin ends: {pid: start time}, and the Ray
    session folders their command lines name."""
    seen: dict[int, str] = {}
    sessions: set[bytes] = set()
    while True:
        ready, _, _ = select.select([0], [], [], POLL)
        if ready and not os.read(0, 4096):
            return seen, sessions
        for pid in descendants(driver) - {os.getpid()}:
            line = _cmdline(pid)
            if pid not in seen and b"ray" in line and (start := _start_time(pid)) is not None:
                seen[pid] = start
                if (session := _SESSION.search(line)) is not None:
                    sessions.add(session.group(0))


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    seen, sessions = _watch(int(sys.argv[1]))
    seen.update(_same_session(seen, sessions))
    for pid, start in seen.items():
        if _start_time(pid) == start:  # the same process, still running
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def start() -> subprocess.Popen[bytes] | None:
    """The reaper of this process's Ray processes (None where /proc is not there)."""
    if not Path("/proc/self/stat").exists():
        return None
    return subprocess.Popen([sys.executable, "-I", __file__, str(os.getpid())],
                            stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            close_fds=True)


def stop(reaper: subprocess.Popen[bytes] | None) -> None:
    """Let the reaper end what is left, and wait for it (a few seconds at most)."""
    if reaper is None:
        return
    with contextlib.suppress(OSError):
        assert reaper.stdin is not None
        reaper.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        reaper.wait(timeout=5)


if __name__ == "__main__":
    main()

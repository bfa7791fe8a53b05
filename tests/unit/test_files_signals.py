"""The entry point handles Ctrl-C, SIGTERM and SIGHUP before the heavy imports; a second
signal does not wait for the clean-up. (Signals at random moments of real runs: test_kill.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.unit.files_models import RESET_SIGNALS, ROOT


def test_the_installed_command_is_the_light_entry_point() -> None:
    scripts = (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1]
    assert scripts.split("[")[0].split() == ["xaigraph", "=", '"xaigraph.__main__:main"']
    code = ("import sys, xaigraph.__main__; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('openvino', 'onnx', 'onnxruntime', 'numpy', 'click')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


def _handlers_installed(pid: int, timeout: float = 30) -> None:
    """Wait until the process catches SIGTERM (Python alone does not: `install` has run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()  # a zombie until it is waited for
        if "\nState:\tZ" in status:
            raise AssertionError("the process ended before installing its signal handlers")
        caught = int(next(ln.split()[1] for ln in status.splitlines()
                          if ln.startswith("SigCgt:")), 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.002)
    raise AssertionError("the signal handlers were never installed")


def test_a_second_signal_ends_the_clean_up_at_once(tmp_path: Path) -> None:
    """Ctrl-C twice: the second one does not wait for the first one's clean-up."""
    script = RESET_SIGNALS + "\n" + (
        "import time\n"
        "from xaigraph.__main__ import main\n"
        "import xaigraph.cli\n"
        "def slow(*a, **k):\n"
        "    try:\n"
        "        time.sleep(30)\n"
        "    finally:\n"
        "        print('cleaning', flush=True)\n"
        "        time.sleep(30)\n"
        "xaigraph.cli.cli = slow\n"
        "main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _handlers_installed(proc.pid)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None and proc.stdout.readline() == "cleaning\n"
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert proc.returncode == 130
    assert stderr.splitlines() == ["xaigraph: error: interrupted by SIGINT"]

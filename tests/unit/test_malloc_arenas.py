"""The command caps glibc's malloc arenas (`xaigraph.__main__._fewer_malloc_arenas`): threads
that allocate get at most two arenas between them, counted by glibc's own `malloc_info`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COUNT = """
import ctypes, os, sys, threading
if sys.argv[1] == "capped":
    from xaigraph.__main__ import _fewer_malloc_arenas
    _fewer_malloc_arenas()
def work():
    keep = [bytearray(50_000) for _ in range(20)]  # malloc'd (below the mmap threshold)
    barrier.wait()
barrier = threading.Barrier(8)
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
path = sys.argv[2].encode()
f = libc.fopen(path, b"w")
libc.malloc_info(0, ctypes.c_void_p(f))
libc.fclose(ctypes.c_void_p(f))
print(open(path).read().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas")
def test_threads_share_two_arenas(tmp_path: Path) -> None:
    def heaps(mode: str) -> int:
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
        done = subprocess.run([sys.executable, "-c", COUNT, mode, f"{tmp_path}/{mode}.xml"],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    assert heaps("capped") <= 2
    assert heaps("free") > 2  # the check can fail: without the cap each thread takes one

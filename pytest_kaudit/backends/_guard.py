"""A guard process that deletes a cluster when the pytest process that owns it dies.

Teardown hooks cover a normal exit, a failure and Ctrl-C; nothing inside the process can
cover a SIGKILL, an OOM kill or a crash. For clusters that live outside our process tree
(kind nodes are containers of the engine, not our children) a small detached process holds
one end of a pipe. The kernel closes the owner's end however the owner dies; the guard
then runs the cleanup command, unless the owner said ``release`` first (the cluster was
deleted or kept on purpose). Before cleaning up it kills the process groups the owner
announced (``pgid N`` lines), so a half-done ``kind create`` and the engine commands it
started cannot add a node after the cleanup ran.

Run as ``python -m pytest_kaudit.backends._guard [--rmtree DIR] -- CMD ARGS...``; the owner
writes to the guard's stdin.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

_RELEASE = b"release\n"


class Guard:
    """Owner side: start the guard for ``cleanup``, and release it once cleanup is done."""

    def __init__(self, cleanup: Sequence[str], *, rmtree: Path | None = None) -> None:
        extra = ["--rmtree", str(rmtree)] if rmtree is not None else []
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", __name__, *extra, "--", *cleanup],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # no terminal Ctrl-C: it must outlive an interrupted owner
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def watch_group(self, pgid: int) -> None:
        """Kill process group ``pgid`` too if the owner dies (a create still running)."""
        if self._proc is not None and self._proc.stdin is not None:
            try:
                self._proc.stdin.write(f"pgid {pgid}\n".encode())
                self._proc.stdin.flush()
            except OSError:
                pass

    def release(self) -> None:
        """Tell the guard to exit without cleaning up, and wait for it."""
        proc, self._proc = self._proc, None
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(_RELEASE)
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _watch(stdin: IO[bytes], cleanup: Sequence[str], rmtree: Path | None) -> int:
    """Block until the owner's end closes; clean up unless it was released."""
    received = b""
    while True:
        chunk = stdin.read(64)
        if not chunk:
            break
        received += chunk
    if received.endswith(_RELEASE):
        return 0
    for line in received.decode("ascii", "replace").splitlines():
        if line.startswith("pgid ") and line[5:].isdigit():
            try:
                os.killpg(int(line[5:]), signal.SIGKILL)
            except OSError:
                pass  # already gone
    code = 0
    for _ in range(2):  # a second pass catches a node whose create request was in flight
        done = subprocess.run(list(cleanup), check=False, capture_output=True, timeout=600)
        code = done.returncode
        time.sleep(2.0)
    if rmtree is not None:
        shutil.rmtree(rmtree, ignore_errors=True)
    return code


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    rmtree: Path | None = None
    if args[:1] == ["--rmtree"] and len(args) >= 2:
        rmtree, args = Path(args[1]), args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print(
            "usage: python -m pytest_kaudit.backends._guard [--rmtree DIR] -- CMD ARGS...",
            file=sys.stderr,
        )
        return 2
    return _watch(sys.stdin.buffer, args, rmtree)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

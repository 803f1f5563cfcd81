"""The guard process, with real processes: an owner dies by SIGKILL, the guard cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pytest_kaudit.backends._process import pid_alive


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _owner(tmp_path: Path, *, release: bool) -> subprocess.Popen[str]:
    """A process that starts a guard (cleanup: create `cleaned`), a group to kill, then waits."""
    script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        from pathlib import Path
        from pytest_kaudit.backends._guard import Guard
        doomed = Path({str(tmp_path)!r}) / "doomed"
        doomed.mkdir()
        guard = Guard([sys.executable, "-c", "open({str(tmp_path / 'cleaned')!r}, 'w')"],
                      rmtree=doomed)
        group = subprocess.Popen(["sleep", "600"], start_new_session=True)
        guard.watch_group(group.pid)
        if {release!r}:
            guard.release()
        print(group.pid, flush=True)
        time.sleep(600)
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_guard_cleans_up_after_an_owner_killed_with_sigkill(tmp_path: Path) -> None:
    owner = _owner(tmp_path, release=False)
    assert owner.stdout is not None
    group = int(owner.stdout.readline())
    assert pid_alive(group)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    _wait_for(lambda: (tmp_path / "cleaned").exists(), 30, "the guard's cleanup command")
    _wait_for(lambda: not (tmp_path / "doomed").exists(), 30, "the guard's rmtree")
    _wait_for(lambda: not pid_alive(group), 10, "the announced process group to be killed")


def test_released_guard_does_nothing_when_the_owner_dies(tmp_path: Path) -> None:
    owner = _owner(tmp_path, release=True)
    assert owner.stdout is not None
    group = int(owner.stdout.readline())
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    # The guard has already exited (release waits for it), so nothing can follow.
    assert not (tmp_path / "cleaned").exists()
    assert (tmp_path / "doomed").exists()
    assert pid_alive(group)
    os.killpg(group, signal.SIGKILL)

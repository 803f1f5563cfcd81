"""Owner records shared by kind's stale-cluster check and the local backend's reaping."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
from pathlib import Path

from pytest_kaudit.backends._owner import OWNER_FILE, claim, owner_of, reap_abandoned
from pytest_kaudit.backends.local.backend import reap_stale_workdirs


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def record(directory: Path, *, pid: int, keep: bool = False, host: str | None = None) -> Path:
    directory.mkdir(parents=True)
    (directory / OWNER_FILE).write_text(json.dumps(
        {"pid": pid, "host": host or socket.gethostname(), "keep": keep, "created": 0}))
    return directory


def test_claim_records_this_live_process(tmp_path: Path) -> None:
    owner = claim(tmp_path / "cluster", keep=True)
    assert stat.S_IMODE((tmp_path / "cluster").stat().st_mode) == 0o700
    assert owner_of(tmp_path / "cluster") == owner
    assert owner.alive and not owner.abandoned


def test_only_abandoned_directories_are_reaped(tmp_path: Path) -> None:
    gone = record(tmp_path / "gone", pid=dead_pid())
    kept = record(tmp_path / "kept", pid=dead_pid(), keep=True)
    live = record(tmp_path / "live", pid=claim(tmp_path / "me").pid)
    elsewhere = record(tmp_path / "elsewhere", pid=1, host="another-host")
    unowned = tmp_path / "unowned"
    unowned.mkdir()
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / OWNER_FILE).write_text("{not json")
    everything = [gone, kept, live, elsewhere, unowned, tmp_path / "garbled"]
    assert reap_abandoned(everything) == [gone, elsewhere]  # another host: cannot be alive here
    assert [p.exists() for p in everything] == [False, True, True, False, True, True]


def test_local_backend_reaps_its_workdirs_through_owner_records(tmp_path: Path) -> None:
    stale = record(tmp_path / "kaudit-local-stale", pid=dead_pid())
    running = tmp_path / "kaudit-local-running"
    claim(running)
    other = record(tmp_path / "someone-else", pid=dead_pid())
    assert reap_stale_workdirs(tmp_path) == [stale]
    assert running.exists() and other.exists()

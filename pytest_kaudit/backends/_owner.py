"""Owner records: which run made a cluster's directory, and whether that run is gone.

A backend that leaves something outside its own process (a kind cluster, a local plane's
temporary directory) writes ``owner.json`` into its directory. A later run that finds the
directory reads it back: a record whose process is gone and that was not kept on purpose
marks something abandoned by a crashed run, which that run may reap. Without a record the
directory is not ours to judge (another tool's, or still being created).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from pytest_kaudit.backends._process import pid_alive

log = logging.getLogger(__name__)

OWNER_FILE = "owner.json"


@dataclass(frozen=True)
class Owner:
    """The run that made a directory: process, host, and whether it meant to keep it."""

    pid: int
    host: str
    keep: bool = False

    @property
    def alive(self) -> bool:
        """The owning process still runs (it can only be checked on its own host)."""
        return self.host == socket.gethostname() and pid_alive(self.pid)

    @property
    def abandoned(self) -> bool:
        """Its run is gone and it was not kept on purpose: safe to remove."""
        return not self.keep and not self.alive


def claim(directory: Path, *, keep: bool = False) -> Owner:
    """Record this process as the owner of ``directory`` (created 0700 if missing)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    owner = Owner(os.getpid(), socket.gethostname(), keep)
    tmp = directory / f".{OWNER_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(owner)))
    tmp.replace(directory / OWNER_FILE)  # a reader never sees half a record
    return owner


def owner_of(directory: Path) -> Owner | None:
    """The owner recorded in ``directory``, or None without a readable record."""
    try:
        data = json.loads((directory / OWNER_FILE).read_text())
        return Owner(
            pid=int(data.get("pid", 0)),
            host=str(data.get("host", "")),
            keep=bool(data.get("keep", False)),
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def reap_abandoned(directories: Iterable[Path]) -> list[Path]:
    """Remove each directory whose recorded owner is :attr:`Owner.abandoned`; return them."""
    removed = []
    for directory in directories:
        owner = owner_of(directory)
        if owner is not None and owner.abandoned:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
            log.info("removed %s left by dead process %d", directory, owner.pid)
    return removed

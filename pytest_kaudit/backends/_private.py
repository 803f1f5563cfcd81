"""Secret files (keys, certificates, kubeconfigs) written 0600 and whole, never half-read."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` created 0600 from the start, replacing it atomically.

    Written to a temporary name and renamed, so a process sharing the directory (a warm
    control plane serves several pytest runs) never reads half a file. The parent directory
    is created 0700 when missing.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return path

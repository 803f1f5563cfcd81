"""TEST DOUBLE support: the state of fake kind clusters and their node "containers".

A fake node is a directory (its root filesystem) plus the ``extraMounts`` kind would pass to
``docker run --volume``. A node path resolves through the longest matching mount to a host
path, else into the node root directory; the apiserver pod resolves its paths through its
``volumes`` first (see fakekubelet.py). State lives under ``$KAUDIT_DOUBLE_STATE``
(default ``/tmp/kaudit-double-<uid>``), one directory per cluster.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

LABEL_CLUSTER = "io.x-k8s.kind.cluster"
LABEL_ROLE = "io.x-k8s.kind.role"


def state_root() -> Path:
    """Root of all fake clusters (0700)."""
    root = Path(os.environ.get("KAUDIT_DOUBLE_STATE") or f"/tmp/kaudit-double-{os.getuid()}")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def clusters_dir() -> Path:
    """Directory of per-cluster state."""
    path = state_root() / "clusters"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def cluster_dir(name: str) -> Path:
    """State directory of cluster ``name``."""
    return clusters_dir() / name


def load_cluster(name: str) -> dict[str, Any] | None:
    """The cluster record, or None when no such cluster exists."""
    try:
        return json.loads((cluster_dir(name) / "cluster.json").read_text())
    except (OSError, ValueError):
        return None


def save_cluster(record: dict[str, Any]) -> None:
    """Write the record atomically."""
    path = cluster_dir(record["name"]) / "cluster.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


def all_clusters() -> list[dict[str, Any]]:
    """Every existing cluster record, sorted by name."""
    records = []
    for entry in sorted(clusters_dir().iterdir()):
        record = load_cluster(entry.name)
        if record is not None:
            records.append(record)
    return records


def find_node(container: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(cluster record, node record) of a node container name."""
    for record in all_clusters():
        for node in record["nodes"]:
            if node["name"] == container:
                return record, node
    return None


def node_root(record: dict[str, Any], node: dict[str, Any]) -> Path:
    """The node container's own filesystem."""
    return cluster_dir(record["name"]) / "nodes" / node["name"]


def resolve_node_path(record: dict[str, Any], node: dict[str, Any], path: str) -> tuple[Path, bool]:
    """Host path of a node path and whether it is read-only (through extraMounts)."""
    best: tuple[int, Path, bool] | None = None
    for mount in node.get("mounts") or []:
        prefix = mount["containerPath"].rstrip("/")
        if path == prefix or path.startswith(prefix + "/"):
            if best is None or len(prefix) > best[0]:
                best = (
                    len(prefix),
                    Path(mount["hostPath"] + path[len(prefix) :]),
                    bool(mount.get("readOnly")),
                )
    if best is not None:
        return best[1], best[2]
    return node_root(record, node) / path.lstrip("/"), False


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` runs (and is not a zombie)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def stop_pid(pid: int | None, *, timeout: float = 10.0) -> None:
    """SIGTERM the process group, wait up to ``timeout``, then SIGKILL it."""
    if not pid_alive(pid):
        return
    assert pid is not None
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)


def runtime(record: dict[str, Any]) -> dict[str, Any]:
    """What the fake kubelet reports about the apiserver pod (see fakekubelet.py)."""
    try:
        return json.loads((cluster_dir(record["name"]) / "runtime.json").read_text())
    except (OSError, ValueError):
        return {}

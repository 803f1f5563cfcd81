"""What a kind node says when something went wrong: its apiserver's flags, log and audit log.

Boot errors quote the newest kube-apiserver container log (``kind export logs``); a policy
that never shows up in the audit log is explained by where the log did or did not arrive.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml

from pytest_kaudit.backends.kind import config as kc
from pytest_kaudit.backends.kind.engine import exec_in
from pytest_kaudit.backends.kind.tools import run_tool
from pytest_kaudit.errors import BackendError


def flags_from_manifest(text: bytes) -> dict[str, str]:
    """kube-apiserver's flags from its static pod manifest."""
    doc = yaml.safe_load(text) or {}
    containers = (doc.get("spec") or {}).get("containers") or [{}]
    flags: dict[str, str] = {}
    for arg in containers[0].get("command") or []:
        if isinstance(arg, str) and arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            flags[name] = value
    return flags


def diagnose_log(dirs: kc.HostDirs, cli: Path, node: str) -> str:
    """Say where the log went: the node has it (host mount broken) or nobody does."""
    in_node = exec_in(cli, node, ["stat", "-c", "%s", kc.NODE_LOG_PATH], timeout=30)
    host_size = dirs.log_file.stat().st_size if dirs.log_file.exists() else None
    node_size = int((in_node.stdout.split() or [b"0"])[0]) if in_node.returncode == 0 else 0
    if in_node.returncode == 0 and node_size > (host_size or 0):
        return (
            f"The node has {kc.NODE_LOG_PATH} but the host file {dirs.log_file} does not "
            f"get its lines: the extraMounts entry for {kc.NODE_LOG_DIR} is missing or wrong."
        )
    return (
        f"Neither the host ({dirs.log_file}) nor the node ({kc.NODE_LOG_PATH}) receives "
        "audit events: kube-apiserver writes its log inside its own pod filesystem. Check "
        f"that apiServer.extraVolumes mounts {kc.NODE_LOG_DIR} into the static pod and that "
        f"extraMounts maps it to {dirs.log_dir}."
    )


def apiserver_log_tail(kind: Path, name: str, cluster_dir: Path) -> tuple[str, str | None]:
    """The newest kube-apiserver container log, via ``kind export logs``, and where it was."""
    target = Path(
        tempfile.mkdtemp(prefix="kind-logs-", dir=cluster_dir if cluster_dir.exists() else None)
    )
    try:
        proc = run_tool(
            [str(kind), "export", "logs", str(target), "--name", name], timeout=120, check=False
        )
        if proc.returncode != 0:
            return "", None
        logs = sorted(
            (
                p
                for p in target.rglob("*.log")
                if "kube-apiserver" in str(p.relative_to(target)) and "pods" in p.parts
            ),
            key=lambda p: p.stat().st_mtime,
        )
        # The newest container may have just been restarted and not written yet: take the
        # newest log that says something.
        for newest in reversed(logs):
            text = newest.read_text(errors="replace")
            if text.strip():
                inside = newest.relative_to(target / f"{name}-control-plane")
                return tail_lines(text, 25), f"{name}-control-plane:/var/log/{inside}"
        return "", None
    except (OSError, BackendError, ValueError):
        return "", None
    finally:
        shutil.rmtree(target, ignore_errors=True)


def tail_lines(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])

"""The container engine CLI kind drives (docker, podman, nerdctl…), found and checked early.

kind picks its provider from ``KIND_EXPERIMENTAL_PROVIDER``; every ``exec`` into a node must
use that provider's own CLI, or it talks to an engine that has no such container.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_kaudit.errors import BackendError, BinaryNotFound

#: KIND_EXPERIMENTAL_PROVIDER value -> the CLI that provider runs.
PROVIDER_CLIS = {
    "docker": "docker",
    "podman": "podman",
    "nerdctl": "nerdctl",
    "finch": "finch",
    "nerdctl.lima": "nerdctl.lima",
}


def find_container_cli(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Locate the engine CLI: ``explicit``, else the one ``KIND_EXPERIMENTAL_PROVIDER`` names.

    Raises:
        BinaryNotFound: naming what was looked for and where.
    """
    env = os.environ if env is None else env
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        found = shutil.which(explicit, path=env.get("PATH"))
        if found:
            return Path(found)
        raise BinaryNotFound(
            explicit, [f"docker_bin={explicit}: not an executable"], ["pass an existing CLI path"]
        )
    provider = env.get("KIND_EXPERIMENTAL_PROVIDER", "")
    name = PROVIDER_CLIS.get(provider, "docker")
    found = shutil.which(name, path=env.get("PATH"))
    if found:
        return Path(found)
    origin = f"KIND_EXPERIMENTAL_PROVIDER={provider}" if provider in PROVIDER_CLIS else "default"
    raise BinaryNotFound(
        name,
        [f"PATH ({env.get('PATH', '')}) for {name!r} ({origin})"],
        [
            f"install {name} and make sure its daemon/service runs",
            "or set KIND_EXPERIMENTAL_PROVIDER=podman|nerdctl|docker to the engine you have",
            "or pass the CLI path explicitly (KindBackend(docker_bin=...))",
        ],
    )


def check_engine(cli: Path, *, timeout: float = 20.0) -> None:
    """Fail early, with the engine's own words, when its daemon does not answer.

    Raises:
        BackendError: ``<cli> info`` failed (no daemon, no permission on the socket…).
    """
    try:
        proc = subprocess.run(
            [str(cli), "info"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BackendError(f"`{cli.name} info` did not answer within {timeout:.0f}s") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise BackendError(
            f"the container engine is not usable: `{cli.name} info` exited {proc.returncode}:\n"
            + "\n".join(f"  {line}" for line in detail[-5:])
            + f"\nStart the {cli.name} daemon (or fix socket permissions), or use another "
            "backend: --kaudit-backend=local needs no container engine."
        )


def exec_in(
    cli: Path, container: str, argv: Sequence[str], *, timeout: float = 60.0
) -> subprocess.CompletedProcess[bytes]:
    """``<cli> exec <container> argv…`` (as root in the container), output captured."""
    return subprocess.run(
        [str(cli), "exec", container, *argv], capture_output=True, timeout=timeout, check=False
    )


def read_file_in(cli: Path, container: str, path: str, *, timeout: float = 30.0) -> bytes:
    """A file's bytes from inside a container.

    Raises:
        BackendError: the file is missing or unreadable there.
    """
    proc = exec_in(cli, container, ["cat", path], timeout=timeout)
    if proc.returncode != 0:
        raise BackendError(
            f"cannot read {path} in {container}: {proc.stderr.decode('utf-8', 'replace').strip()}"
        )
    return proc.stdout

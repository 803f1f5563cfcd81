"""The ``kind`` CLI: finding it, checking its version, and running it (or the engine CLI).

Every tool runs in its own process group that dies with us; a timeout or Ctrl-C kills the
whole group, so the engine commands kind started go too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from pytest_kaudit.backends._guard import Guard
from pytest_kaudit.backends._process import die_with_parent
from pytest_kaudit.backends.kind.config import MIN_KIND_VERSION, parse_kind_version
from pytest_kaudit.errors import BackendError, BinaryNotFound


def find_kind(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Locate ``kind``: the explicit path, then ``$KIND_PATH``, then ``PATH``.

    Raises:
        BinaryNotFound: with every place checked and how to install kind.
    """
    env = os.environ if env is None else env
    checked: list[str] = []
    for origin, value in (("kind_bin", explicit), ("$KIND_PATH", env.get("KIND_PATH"))):
        if not value:
            checked.append(f"{origin} (not set)")
            continue
        path = Path(value).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise BinaryNotFound(
            "kind",
            [f"{origin}={value}: not an executable file"],
            [f"point {origin} at the kind binary"],
        )
    found = shutil.which("kind", path=env.get("PATH"))
    if found:
        return Path(found)
    checked.append(f"PATH ({env.get('PATH', '')})")
    raise BinaryNotFound(
        "kind",
        checked,
        [
            "install kind >= v0.20: https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
            "or pass its path: --kaudit-kind-bin / KindBackend(kind_bin=...) / $KIND_PATH",
            "or use --kaudit-backend=local, which needs no container engine",
        ],
    )


def kind_version(kind: Path) -> tuple[int, int, int]:
    """``kind version``, refused when older than :data:`MIN_KIND_VERSION`."""
    proc = run_tool([str(kind), "version"], timeout=30)
    try:
        version = parse_kind_version(proc.stdout)
    except ValueError:
        raise BackendError(f"cannot tell kind's version from {proc.stdout!r}") from None
    if version < MIN_KIND_VERSION:
        raise BackendError(
            f"kind v{'.'.join(map(str, version))} is too old: pytest-kaudit needs "
            f"kind >= v{'.'.join(map(str, MIN_KIND_VERSION))} (config schema, "
            "kubeadm patch handling); install a newer kind or pass kind_bin"
        )
    return version


def run_tool(
    argv: list[str],
    *,
    timeout: float,
    stdin: str | None = None,
    check: bool = True,
    guard: Guard | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a tool in its own process group, which dies with us and is killed on interrupt.

    ``guard`` is told the group, so a create still running when this process is killed
    is stopped before the guard deletes the cluster.
    """
    with subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    ) as child:
        if guard is not None:
            guard.watch_group(child.pid)
        try:
            out, err = child.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            raise BackendError(
                f"`{' '.join(argv[:4])}` did not finish within {timeout:.0f}s"
            ) from None
        except BaseException:  # Ctrl-C: the engine commands kind started go too
            _kill_group(child)
            raise
    proc = subprocess.CompletedProcess(argv, child.returncode, out, err)
    if check and proc.returncode != 0:
        raise BackendError(
            f"`{' '.join(argv[:4])}` exited {proc.returncode}:\n{proc.stderr.strip()[-2000:]}"
        )
    return proc


def _kill_group(child: subprocess.Popen[str]) -> None:
    """SIGKILL a tool's whole process group (it was started as a group leader) and reap it."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        pass
    child.wait()

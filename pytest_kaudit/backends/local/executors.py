"""Executors for etcd and kube-apiserver: start, readiness by condition, teardown.

Built on mirakuru's ``Executor``: one deadline per start, fail fast when the child exits,
stop by process group with escalation to SIGKILL. Output goes to files in the cluster's
private directory (a pipe nobody reads would block a chatty daemon) and their tails are shown
when a start fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

from mirakuru import Executor
from mirakuru.exceptions import ProcessExitedWithError, TimeoutExpired

from pytest_kaudit.backends._http import request, tls_context
from pytest_kaudit.backends._process import die_with_parent, pid_alive
from pytest_kaudit.errors import BootError

_TAIL_LINES = 40


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the start retries on collisions)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file ('' when missing)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _LoggedExecutor(Executor):
    """An executor whose output goes to files it owns and that dies with its parent.

    stderr (klog) goes to ``log_file``; stdout to ``log_file`` with suffix ``.stdout``, kept
    apart because ``--audit-log-path=-`` makes stdout the audit log.
    """

    def __init__(self, command: list[str], log_file: Path, *, timeout: float, **kwargs: Any):
        self.log_file = log_file
        self.stdout_file = log_file.with_suffix(".stdout")
        self._log_handle = log_file.open("ab")
        self._stdout_handle = self.stdout_file.open("ab")
        super().__init__(
            command,
            timeout=timeout,
            sleep=0.05,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout_handle,
            stderr=self._log_handle,
            **kwargs,
        )

    @property
    def _popen_kwargs(self) -> dict[str, Any]:
        kwargs = super()._popen_kwargs
        kwargs["preexec_fn"] = die_with_parent
        kwargs.pop("universal_newlines", None)
        return kwargs

    def pre_start_check(self) -> bool:
        return False

    def check_subprocess(self) -> bool:
        """Like mirakuru's, but a daemon that exits with code 0 has also failed to start.

        mirakuru lets code 0 pass (it allows double-forking daemons); etcd and kube-apiserver
        never fork away, so waiting on after_start_check would only burn the whole timeout.
        """
        if self.process is not None and self.process.poll() == 0:
            self._clear_process()
            raise ProcessExitedWithError(self, 0)
        return bool(super().check_subprocess())

    def spawn(self) -> None:
        """Start the process without waiting (other set-up overlaps its boot)."""
        if self.process is None:
            self.process = subprocess.Popen(self.command_parts, **self._popen_kwargs)

    def start_or_explain(self, what: str) -> None:
        """Start (unless :meth:`spawn` did) and wait for readiness; on failure raise BootError
        with the log's tail.

        The tail is quoted inline and the file is not named: the cluster's directory, log
        included, is removed as soon as the start has failed.
        """
        try:
            self.spawn()
            self._set_timeout()
            self.wait_for(self.check_subprocess)
        except ProcessExitedWithError as exc:
            raise BootError(what, f"exited with code {exc.exit_code}",
                            tail(self.log_file, _TAIL_LINES)) from None
        except TimeoutExpired:
            raise BootError(what, f"not ready within {self._timeout:.0f}s",
                            tail(self.log_file, _TAIL_LINES)) from None

    def kill_now(self) -> None:
        """SIGKILL the process group and reap it: no drain, for a cluster whose log is read."""
        process = self.process
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        self._clear_process()

    def close_log(self) -> None:
        """Close our handles on the output files."""
        for handle in (self._log_handle, self._stdout_handle):
            if not handle.closed:
                handle.close()

    def port_in_use(self) -> bool:
        """Whether the process's log says a port was taken (then the start is retried)."""
        return "address already in use" in tail(self.log_file, 40)

    def is_alive(self) -> bool:
        """True while the child runs (a zombie not yet reaped counts as dead)."""
        if self.process is None or self.process.poll() is not None:
            return False
        return pid_alive(self.process.pid)


class EtcdExecutor(_LoggedExecutor):
    """etcd on loopback ports; ready when ``/health`` says so."""

    def __init__(self, binary: Path, data_dir: Path, log_file: Path, *, timeout: float,
                 extra: list[str] | None = None) -> None:
        self.client_port = free_port()
        self.peer_port = free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        command = [
            str(binary),
            f"--data-dir={data_dir}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls=http://127.0.0.1:{self.peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{self.peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{self.peer_port}",
            *(extra or []),
        ]
        super().__init__(command, log_file, timeout=timeout)

    def after_start_check(self) -> bool:
        return etcd_healthy(self.url)


class ApiServerExecutor(_LoggedExecutor):
    """kube-apiserver; ready when ``/readyz`` answers ``ok`` over TLS verified by our CA."""

    def __init__(self, command: list[str], log_file: Path, *, url: str, ca_file: Path,
                 cert_file: Path, key_file: Path, timeout: float) -> None:
        self.url = url
        self._ssl = tls_context(ca_file, cert_file, key_file)
        super().__init__(command, log_file, timeout=timeout)

    def after_start_check(self) -> bool:
        try:
            return request(self.url, "/readyz", self._ssl, timeout=2)[0] == 200
        except OSError:
            return False


def etcd_healthy(url: str) -> bool:
    """etcd's ``/health`` (plain HTTP on loopback) says it is healthy."""
    try:
        status, body = request(url, "/health", None, timeout=1)
    except OSError:
        return False
    return status == 200 and b'"true"' in body

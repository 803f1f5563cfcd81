"""The cluster pool's bookkeeping when a backend fails.

The backend here is a stand-in: the failure under test (a reconfiguration that raises halfway,
e.g. kind's crictl or readiness probe failing on the node) cannot be produced on demand with
a real cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kaudit.backends.base import Backend, ClusterHandle, ClusterSpec, Credentials
from pytest_kaudit.errors import BackendError
from pytest_kaudit.events.log import FileLogSource
from pytest_kaudit.policy import Policy
from pytest_kaudit.pool import ClusterPool


def _policy(level: str) -> Policy:
    return Policy.from_yaml(f"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
                            f"- level: {level}\n")


class StandInBackend(Backend):
    """Hands out handles without running anything; its reconfigure always fails."""

    name = "stand-in"

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[str] = []
        self.stopped: list[str] = []

    def start(self, spec: ClusterSpec) -> ClusterHandle:
        name = f"stand-in-{len(self.started)}"
        self.started.append(name)
        return ClusterHandle(
            backend=self.name, name=name, server="https://127.0.0.1:1", ca_file=None,
            admin=Credentials("admin"), kubeconfig=self.tmp_path / "kubeconfig",
            log_source=FileLogSource(self.tmp_path / "audit.log"), apiserver_flags={},
            version=(1, 30), spec=spec)

    def reconfigure(self, handle: ClusterHandle, spec: ClusterSpec) -> ClusterHandle | None:
        raise BackendError(f"{handle.name}: the new policy never became live (stand-in)")

    def stop(self, handle: ClusterHandle) -> None:
        self.stopped.append(handle.name)


def test_failed_reconfigure_stops_the_old_cluster_and_is_remembered(tmp_path: Path) -> None:
    backend = StandInBackend(tmp_path)
    pool = ClusterPool(backend, max_clusters=1)
    first = pool.acquire(ClusterSpec(policy=_policy("Metadata")))
    second = ClusterSpec(policy=_policy("Request"))

    with pytest.raises(BackendError, match="never became live"):
        pool.acquire(second)
    assert backend.stopped == [first.name]  # not left running, out of the pool's sight

    with pytest.raises(BackendError, match="failed earlier in this session; not retried"):
        pool.acquire(second)
    assert backend.started == [first.name]  # no second attempt, no boot instead

    pool.stop_all()
    assert backend.stopped == [first.name]  # stopped once


def test_failed_start_is_remembered(tmp_path: Path) -> None:
    class FailingStart(StandInBackend):
        def start(self, spec: ClusterSpec) -> ClusterHandle:
            self.started.append("attempt")
            raise BackendError("etcd did not start (stand-in)")

    backend = FailingStart(tmp_path)
    pool = ClusterPool(backend, max_clusters=1)
    spec = ClusterSpec(policy=_policy("Metadata"))
    with pytest.raises(BackendError, match="etcd did not start"):
        pool.acquire(spec)
    with pytest.raises(BackendError, match="not retried"):
        pool.acquire(spec)
    assert backend.started == ["attempt"]

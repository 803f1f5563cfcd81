"""The kind backend against REAL kind: what only a real kubeadm cluster can get wrong.

One cluster is created for the module and carried through readiness, the log sources, a
policy change (apiserver restart through crictl in the node) and a flag change (re-create).
The tests depend on that order, which is the file order.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_kaudit.backends.base import ClusterHandle, ClusterSpec, Credentials
from pytest_kaudit.backends.kind import KindBackend
from pytest_kaudit.backends.kind import backend as kind_module
from pytest_kaudit.backends.kind import config as kc
from pytest_kaudit.events.log import AuditLog, FileLogSource, LogSource
from pytest_kaudit.policy import Policy
from tests.real_kind.conftest import kind_containers

POLICY_A = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    resources: [{group: "", resources: ["configmaps"]}]
"""

# Policy B logs configmaps at Request and adds a rule for namespaces; A logs neither that way.
POLICY_B = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Request
    resources: [{group: "", resources: ["configmaps"]}]
"""


def _spec(text: str, **flags: str) -> ClusterSpec:
    return ClusterSpec(policy=Policy.from_yaml(text), flags=flags, timeout=180)


def _call(
    handle: ClusterHandle, method: str, path: str, body: dict[str, object] | None = None
) -> tuple[int, str, dict[str, object]]:
    """One admin request with a fresh Audit-ID; returns (status, audit id, decoded body)."""
    ctx = ssl.create_default_context(cafile=str(handle.ca_file))
    creds: Credentials = handle.admin
    assert creds.cert_file is not None and creds.key_file is not None
    ctx.load_cert_chain(str(creds.cert_file), str(creds.key_file))
    audit_id = f"kaudit-realkind-{uuid.uuid4().hex[:12]}"
    req = urllib.request.Request(
        handle.server + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Audit-ID": audit_id, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            return resp.status, audit_id, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, audit_id, json.loads(exc.read() or b"{}")


def _wait_event(source: LogSource, audit_id: str, timeout: float = 20.0) -> str:
    """The level of ``audit_id``'s event once it is in the log (polled with a deadline)."""
    reader = AuditLog(source.follow(from_start=True))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for event in reader.poll():
                if event.audit_id == audit_id:
                    return str(getattr(event.level, "value", event.level))
            time.sleep(0.2)
    finally:
        reader.close()
    raise AssertionError(f"no event for {audit_id} in {source.description} within {timeout}s")


class Cluster:
    """The module's cluster: the backend and its current handle."""

    def __init__(self, backend: KindBackend, handle: ClusterHandle) -> None:
        self.backend = backend
        self.handle = handle


@pytest.fixture(scope="module")
def cluster(
    kind_node_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("kind-state")
    backend = KindBackend(node_image=kind_node_image, state_dir=state)
    before = set(kind_containers())
    started = time.monotonic()
    handle = backend.start(_spec(POLICY_A))
    print(f"real kind create + readiness: {time.monotonic() - started:.1f}s", handle.details)
    box = Cluster(backend, handle)
    try:
        yield box
    finally:
        backend.stop(box.handle)
        left = set(kind_containers()) - before
        assert not left, f"kind node containers left behind: {sorted(left)}"


def test_real_kind_ready_means_a_pod_can_be_created_at_once(cluster: Cluster) -> None:
    """Readiness includes the ServiceAccount controller: a pod is admitted right away.

    Without the wait for the ``default`` ServiceAccount the create is refused with 403
    ``serviceaccount "default" not found`` for 10-20 s after /readyz on a fresh cluster.
    """
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ready-check"},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
    }
    status, _, body = _call(cluster.handle, "POST", "/api/v1/namespaces/default/pods", pod)
    assert status == 201, f"pod create right after start answered {status}: {body.get('message')}"
    assert float(cluster.handle.details["service account seconds"]) >= 0


def test_real_kind_log_is_read_through_the_host_mount(cluster: Cluster) -> None:
    source = cluster.handle.log_source
    assert isinstance(source, FileLogSource), source.description
    status, audit_id, _ = _call(cluster.handle, "GET", "/api/v1/namespaces/default/configmaps/x")
    assert status == 404
    assert _wait_event(source, audit_id) == "Metadata"


def test_real_kind_log_falls_back_to_engine_exec(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the host file is not readable the node's copy is read with `docker exec tail`."""
    handle = cluster.handle
    assert handle.workdir is not None
    dirs = kc.host_dirs(handle.workdir)
    _, cli, _ = cluster.backend._tools()
    monkeypatch.setattr(kind_module.os, "access", lambda path, mode: False)
    source = cluster.backend._log_source(
        handle.spec, dirs, cli, handle.details["node"], handle.apiserver_flags
    )
    assert not isinstance(source, FileLogSource)
    assert "exec" in source.description
    status, audit_id, _ = _call(handle, "GET", "/api/v1/namespaces/default/configmaps/y")
    assert status == 404
    assert _wait_event(source, audit_id) == "Metadata"


def _apiserver_pod_ids(node: str) -> set[str]:
    proc = subprocess.run(
        ["docker", "exec", node, "crictl", "pods", "--name", "kube-apiserver", "-q"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return set(proc.stdout.split())


def test_real_kind_policy_change_restarts_the_apiserver_and_is_live(cluster: Cluster) -> None:
    node = cluster.handle.details["node"]
    pods_before = _apiserver_pod_ids(node)
    started = time.monotonic()
    new = cluster.backend.reconfigure(cluster.handle, _spec(POLICY_B))
    assert new is not None
    cluster.handle = new
    print(f"real kind policy change (crictl restart): {time.monotonic() - started:.1f}s")
    assert _apiserver_pod_ids(node).isdisjoint(pods_before), "the apiserver pod was not replaced"
    status, audit_id, _ = _call(new, "GET", "/api/v1/namespaces/default/configmaps/z")
    assert status == 404
    assert _wait_event(new.log_source, audit_id) == "Request"  # B's level, not A's Metadata


def test_real_kind_flag_change_recreates_the_cluster(cluster: Cluster) -> None:
    old = cluster.handle
    started = time.monotonic()
    new = cluster.backend.reconfigure(old, _spec(POLICY_B, **{"audit-log-maxbackup": "3"}))
    assert new is not None
    cluster.handle = new
    print(f"real kind flag change (re-create): {time.monotonic() - started:.1f}s")
    assert new.name != old.name
    assert new.apiserver_flags.get("audit-log-maxbackup") == "3"
    assert old.name not in set(kind_containers().values()), "the old cluster still has nodes"
    assert old.workdir is not None and not Path(old.workdir).exists()

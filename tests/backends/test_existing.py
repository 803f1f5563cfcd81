"""The existing backend, pointed at a cluster made by the kind TEST DOUBLE (real apiserver)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from pytest_kaudit.backends.base import ClusterHandle, ClusterSpec
from pytest_kaudit.backends.existing import ExistingBackend
from pytest_kaudit.backends.kind import KindBackend
from pytest_kaudit.backends.kind import config as kc
from pytest_kaudit.errors import BackendError
from pytest_kaudit.events.log import AuditLog
from pytest_kaudit.policy import Policy

POLICY = Policy.from_yaml("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")


@pytest.fixture
def double_cluster(double_env: dict[str, str]) -> Iterator[ClusterHandle]:
    backend = KindBackend()
    handle = backend.start(ClusterSpec(policy=POLICY))
    yield handle
    backend.stop(handle)


def list_secrets_and_find(handle: ClusterHandle) -> list[object]:
    reader = AuditLog.tail(handle.log_source, mixed=handle.log_is_mixed)
    cfg = client.Configuration()
    cfg.host, cfg.ssl_ca_cert = handle.server, str(handle.ca_file)
    cfg.cert_file, cfg.key_file = str(handle.admin.cert_file), str(handle.admin.key_file)
    client.CoreV1Api(client.ApiClient(cfg)).list_namespaced_secret("kube-system")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [
            e for e in reader.poll() if e.resource == "secrets" and e.namespace == "kube-system"
        ]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("event not found")


@pytest.mark.parametrize("how", ["log_path", "log_command"])
def test_kind_double_cluster_used_as_existing(
    double_cluster: ClusterHandle, how: str, tmp_path: Path
) -> None:
    node = double_cluster.details["node"]
    options = (
        {"log_path": double_cluster.log_source.description}
        if how == "log_path"
        else {"log_command": f"docker exec {node} tail -c +{{offset1}} {kc.NODE_LOG_PATH}"}
    )
    policy_copy = tmp_path / "policy.yaml"
    policy_copy.write_text(POLICY.text)
    backend = ExistingBackend(double_cluster.kubeconfig, policy=policy_copy, **options)
    handle = backend.start(ClusterSpec(policy=None))
    try:
        assert handle.backend == "existing" and handle.version == (1, 20)
        assert handle.mint_credentials is None and not handle.has_barrier_rule
        assert handle.spec.policy is not None and handle.spec.policy.text == POLICY.text
        assert handle.admin.user == "kubernetes-admin"
        assert list_secrets_and_find(handle)
    finally:
        backend.stop(handle)
    assert not handle.workdir.exists()  # type: ignore[union-attr]
    assert double_cluster.kubeconfig.exists()  # the user's kubeconfig is left alone


def test_existing_needs_exactly_one_log_option(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="exactly one way to read the audit log"):
        ExistingBackend(tmp_path / "kc")
    with pytest.raises(BackendError, match="got 2"):
        ExistingBackend(tmp_path / "kc", log_path="/x", log_command="cat /x")


def test_existing_log_pod_uses_kubectl_logs_and_skips_non_json(tmp_path: Path) -> None:
    backend = ExistingBackend(
        tmp_path / "kc", context="prod", log_pod="kube-system/kube-apiserver-n1"
    )
    source, mixed = backend.log_source()
    assert mixed and source.json_only  # type: ignore[attr-defined]
    assert source.command == [
        "kubectl",
        "--kubeconfig",
        str(tmp_path / "kc"),
        "--context",
        "prod",  # type: ignore[attr-defined]
        "logs",
        "-n",
        "kube-system",
        "kube-apiserver-n1",
    ]


def test_existing_unknown_context_is_named(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncontexts: [{name: a, context: {}}]\n")
    with pytest.raises(BackendError, match=r"has no context 'b' \(contexts: \['a'\]\)"):
        ExistingBackend(kubeconfig, context="b", log_path="/x").start(ClusterSpec(policy=None))


def _token_kubeconfig(tmp_path: Path, cluster_extra: str = "") -> Path:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "contexts: [{name: a, context: {cluster: a, user: a}}]\n"
        f"clusters: [{{name: a, cluster: {{server: 'https://127.0.0.1:1'{cluster_extra}}}}}]\n"
        "users: [{name: a, user: {token: t}}]\n"
    )
    return kubeconfig


def test_existing_bad_policy_copy_fails_before_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_kaudit.backends import existing
    from pytest_kaudit.errors import PolicyError

    monkeypatch.setattr(existing, "wait_ready", lambda *a, **k: pytest.fail("waited first"))
    backend = ExistingBackend(
        _token_kubeconfig(tmp_path), log_path=tmp_path / "log", policy=tmp_path / "nope.yaml"
    )
    with pytest.raises(PolicyError, match="nope.yaml"):
        backend.start(ClusterSpec(policy=None))


@pytest.mark.parametrize("extra", ["", ", insecure-skip-tls-verify: true"])
def test_existing_skips_tls_verification_only_when_the_kubeconfig_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str
) -> None:
    from pytest_kaudit.backends import existing

    insecure = bool(extra)

    seen: list[object] = []
    monkeypatch.setattr(existing, "wait_ready", lambda *a, **k: seen.append(k["insecure"]))
    monkeypatch.setattr(
        existing, "server_version", lambda *a, **k: seen.append(k["insecure"]) or (1, 31)
    )
    (tmp_path / "log").write_text("")
    backend = ExistingBackend(_token_kubeconfig(tmp_path, extra), log_path=tmp_path / "log")
    handle = backend.start(ClusterSpec(policy=None))
    try:
        assert handle.ca_file is None  # verified with the system trust store
        assert handle.insecure_skip_tls_verify is insecure
        assert seen == [insecure, insecure]
    finally:
        backend.stop(handle)

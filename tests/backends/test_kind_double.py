"""The kind backend against the kind/docker TEST DOUBLES (tests/doubles/kind, .../docker).

The doubles interpret the generated config like kind + kubeadm and boot the *real* local
etcd + kube-apiserver 1.20 with the resulting flags and paths. These tests show the backend's
own code (config, lifecycle, kubeconfig, readiness, log reading, restarts) works against a
real apiserver; they are not evidence about real kind, which no test here runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from pytest_kaudit.backends._logsources import container_file_source
from pytest_kaudit.backends.base import Backend, ClusterHandle, ClusterSpec
from pytest_kaudit.backends.kind import KindBackend
from pytest_kaudit.backends.kind import config as kc
from pytest_kaudit.errors import BackendError, BinaryNotFound, BootError, PolicyError
from pytest_kaudit.events.log import AuditLog
from pytest_kaudit.policy import Policy

POLICY = Policy.from_yaml(
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
    "- level: RequestResponse\n  resources: [{group: '', resources: [configmaps]}]\n"
    "- level: Metadata\n"
)
OTHER_POLICY = Policy.from_yaml(
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
    "- level: None\n  resources: [{group: '', resources: [configmaps]}]\n- level: Request\n"
)
IMAGE_131 = "kindest/node:v1.31.12@sha256:0000"


def api_for(handle: ClusterHandle, user: str | None = None) -> client.CoreV1Api:
    creds = handle.admin if user is None else handle.mint_credentials(user, ())  # type: ignore[misc]
    cfg = client.Configuration()
    cfg.host = handle.server
    cfg.ssl_ca_cert = str(handle.ca_file)
    cfg.cert_file, cfg.key_file = str(creds.cert_file), str(creds.key_file)
    return client.CoreV1Api(client.ApiClient(cfg))


def wait_for_events(
    source: Any, audit_log: AuditLog, predicate: Any, timeout: float = 10
) -> list[Any]:
    deadline = time.monotonic() + timeout
    found: list[Any] = []
    while time.monotonic() < deadline:
        found += [e for e in audit_log.poll() if predicate(e)]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no matching event in {source.description} within {timeout}s")


def kind(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kind", *args], input=stdin, capture_output=True, text=True, timeout=180, check=False
    )


def test_kind_double_start_call_read_log_stop(double_env: dict[str, str]) -> None:
    backend = KindBackend(node_image=IMAGE_131)
    assert isinstance(backend, Backend)
    handle = backend.start(ClusterSpec(policy=POLICY))
    try:
        assert handle.backend == "kind" and handle.name.startswith("kaudit-")
        assert handle.has_barrier_rule and handle.version == (1, 20)  # the double's apiserver
        assert handle.admin.groups == ("kubeadm:cluster-admins",)  # kubeadm >= 1.29 admin
        assert handle.apiserver_flags["audit-policy-file"] == kc.NODE_POLICY_PATH
        assert oct(handle.kubeconfig.stat().st_mode & 0o777) == "0o600"
        assert oct(handle.admin.key_file.stat().st_mode & 0o777) == "0o600"  # type: ignore[union-attr]
        assert oct(handle.workdir.stat().st_mode & 0o777) == "0o700"  # type: ignore[union-attr]
        assert not (Path.home() / ".kube").exists()  # kind never touched ~/.kube/config
        audit_log = AuditLog.tail(handle.log_source)
        api = api_for(handle)
        name = f"cm-{os.getpid()}"
        api.create_namespaced_config_map(
            "default", {"metadata": {"name": name}, "data": {"k": "v"}}
        )
        events = wait_for_events(
            handle.log_source, audit_log, lambda e: e.resource == "configmaps" and e.name == name
        )
        assert str(events[0].level.value) == "RequestResponse"
        with pytest.raises(client.ApiException) as denied:
            api_for(handle, "alice").list_namespaced_secret("default")
        assert denied.value.status == 403
        events = wait_for_events(handle.log_source, audit_log, lambda e: e.user == "alice")
        assert events[0].decision == "forbid"
    finally:
        backend.stop(handle)
        backend.stop(handle)  # safe twice
    assert handle.name not in kind("get", "clusters").stdout
    assert not handle.workdir.exists()  # type: ignore[union-attr]


def test_kind_double_reconfigure_restarts_apiserver_or_recreates(
    double_env: dict[str, str], record_property: Any
) -> None:
    backend = KindBackend()
    handle = backend.start(ClusterSpec(policy=POLICY))
    try:
        started = time.monotonic()
        changed = backend.reconfigure(handle, ClusterSpec(policy=OTHER_POLICY))
        restart_seconds = time.monotonic() - started
        assert changed is not None and changed.name == handle.name
        # the new policy is live: configmaps are not logged any more, the rest at Request
        audit_log = AuditLog.tail(changed.log_source)
        api = api_for(changed)
        api.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
        api.list_namespaced_secret("default")
        events = wait_for_events(changed.log_source, audit_log, lambda e: e.resource == "secrets")
        assert str(events[0].level.value) == "Request"
        assert not [e for e in audit_log.poll() if e.resource == "configmaps"]

        started = time.monotonic()
        recreated = backend.reconfigure(
            changed, ClusterSpec(policy=OTHER_POLICY, flags={"audit-log-maxbackup": "3"})
        )
        recreate_seconds = time.monotonic() - started
        assert recreated is not None and recreated.name != handle.name
        assert recreated.apiserver_flags["audit-log-maxbackup"] == "3"
        assert handle.name not in kind("get", "clusters").stdout
        record_property("reconfigure_restart_seconds", round(restart_seconds, 2))
        record_property("reconfigure_recreate_seconds", round(recreate_seconds, 2))
        print(
            f"kind double: policy change by restart {restart_seconds:.1f}s, "
            f"flag change by re-create {recreate_seconds:.1f}s"
        )
        handle = recreated
    finally:
        backend.stop(handle)


def test_kind_double_reuse_and_keep(double_env: dict[str, str]) -> None:
    spec = ClusterSpec(policy=POLICY)
    first = KindBackend(reuse=True, keep=True)
    handle = first.start(spec)
    first.stop(handle)  # keep: still there
    assert handle.name in kind("get", "clusters").stdout
    second = KindBackend(reuse=True)
    again = second.start(spec)
    try:
        assert again.name == handle.name and again.details["reused"] == "true"
        assert api_for(again).list_namespace().items
    finally:
        second.stop(again)
    assert handle.name not in kind("get", "clusters").stdout


def test_kind_double_stale_clusters_are_reported_and_cleaned(
    double_env: dict[str, str], tmp_path: Path
) -> None:
    stale = "kaudit-crashed-run"
    assert (
        kind("create", "cluster", "--name", stale, "--kubeconfig", str(tmp_path / "kc")).returncode
        == 0
    )
    owner = Path(os.environ["KAUDIT_KIND_STATE_DIR"]) / stale
    owner.mkdir(parents=True)
    (owner / "owner.json").write_text(
        json.dumps({"pid": 2**22 + 1, "host": os.uname().nodename, "keep": False})
    )
    backend = KindBackend(clean_stale=True)
    assert backend.stale_clusters() == [stale]
    handle = backend.start(ClusterSpec(policy=POLICY))
    try:
        assert handle.details["stale clusters"] == stale
        assert stale not in kind("get", "clusters").stdout
    finally:
        backend.stop(handle)


def test_kind_double_log_read_through_docker_exec(double_env: dict[str, str]) -> None:
    backend = KindBackend()
    handle = backend.start(ClusterSpec(policy=POLICY))
    try:
        source = container_file_source(["docker"], handle.details["node"], kc.NODE_LOG_PATH)
        audit_log = AuditLog.tail(source)
        api_for(handle).list_namespaced_secret("default")
        events = wait_for_events(source, audit_log, lambda e: e.resource == "secrets")
        assert events[0].verb == "list"
    finally:
        backend.stop(handle)


@pytest.mark.parametrize(
    ("kind_version", "image", "api"),
    [
        ("v0.32.0", "kindest/node:v1.36.1@sha256:0000", "kubeadm.k8s.io/v1beta4"),
        ("v0.20.0", "kindest/node:v1.27.16@sha256:0000", "kubeadm.k8s.io/v1beta3"),
    ],
)
def test_kind_double_boots_across_kubeadm_versions(
    double_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    kind_version: str,
    image: str,
    api: str,
) -> None:
    monkeypatch.setenv("KAUDIT_DOUBLE_KIND_VERSION", kind_version)
    backend = KindBackend(node_image=image)
    handle = backend.start(ClusterSpec(policy=POLICY, flags={"audit-log-maxsize": "5"}))
    try:
        conf = subprocess.run(
            ["docker", "exec", handle.details["node"], "cat", "/kind/kubeadm.conf"],
            capture_output=True,
            check=True,
        ).stdout
        cluster = next(d for d in yaml.safe_load_all(conf) if d["kind"] == "ClusterConfiguration")
        assert cluster["apiVersion"] == api
        assert handle.apiserver_flags["audit-log-maxsize"] == "5"
        expected_groups = ("kubeadm:cluster-admins",) if "v1.36" in image else ("system:masters",)
        assert handle.admin.groups == expected_groups
    finally:
        backend.stop(handle)


def test_kind_double_podman_provider_uses_podman_cli(
    double_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIND_EXPERIMENTAL_PROVIDER", "podman")
    backend = KindBackend()
    handle = backend.start(ClusterSpec(policy=POLICY))
    try:
        assert handle.details["engine"].endswith("/podman")
    finally:
        backend.stop(handle)


# ----------------------------------------------------------------------------- early errors


def test_kind_double_no_docker_daemon_fails_before_booting(
    double_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAUDIT_DOUBLE_DOCKER_DOWN", "1")
    with pytest.raises(
        BackendError, match=r"(?s)`docker info` exited 1.*Is the docker daemon running"
    ):
        KindBackend().start(ClusterSpec(policy=POLICY))


def test_kind_missing_names_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KIND_PATH", raising=False)
    with pytest.raises(BinaryNotFound) as exc:
        KindBackend().start(ClusterSpec(policy=POLICY))
    assert f"PATH ({tmp_path})" in str(exc.value) and "install kind" in str(exc.value)


def test_kind_double_too_old_kind_is_refused(
    double_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAUDIT_DOUBLE_KIND_VERSION", "v0.17.0")
    with pytest.raises(
        BackendError, match=r"kind v0\.17\.0 is too old: .* needs kind >= v0\.20\.0"
    ):
        KindBackend().start(ClusterSpec(policy=POLICY))


def test_kind_double_rejected_policy_fails_before_booting(double_env: dict[str, str]) -> None:
    old = Policy.from_yaml(
        "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n",
        target_version=(1, 20),
    )
    with pytest.raises(PolicyError, match="refusing to boot kube-apiserver v1.31"):
        KindBackend(node_image=IMAGE_131).start(ClusterSpec(policy=old))
    assert kind("get", "clusters").stdout == ""


# ----------------------------------------------------------------------------- mis-wired configs


def _patch_of(config: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(config["nodes"][0]["kubeadmConfigPatches"][-1])


def _set_patch(config: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    config["nodes"][0]["kubeadmConfigPatches"][-1] = yaml.safe_dump(patch)
    return config


def drop_policy_mount(config: dict[str, Any]) -> dict[str, Any]:
    config["nodes"][0]["extraMounts"].pop(0)
    return config


def wrong_mount_path(config: dict[str, Any]) -> dict[str, Any]:
    config["nodes"][0]["extraMounts"][0]["containerPath"] = "/etc/kubernetes/audit"
    return config


def drop_log_volume(config: dict[str, Any]) -> dict[str, Any]:
    patch = _patch_of(config)
    patch["apiServer"]["extraVolumes"].pop()
    return _set_patch(config, patch)


def versioned_v1beta4(config: dict[str, Any]) -> dict[str, Any]:
    patch = _patch_of(config)
    patch["apiVersion"] = "kubeadm.k8s.io/v1beta4"
    return _set_patch(config, patch)


def list_form_args(config: dict[str, Any]) -> dict[str, Any]:
    patch = _patch_of(config)
    patch["apiServer"]["extraArgs"] = [
        {"name": k, "value": v} for k, v in patch["apiServer"]["extraArgs"].items()
    ]
    return _set_patch(config, patch)


MISWIRED = [
    # (transform, what real kind/kubeadm does (the double), what the backend reports)
    (
        drop_policy_mount,
        r"BootError",
        r"(?s)`kind create cluster` failed.*wait-control-plane.*"
        r"last lines of its log.*policy\.yaml: no such file or directory",
    ),
    (
        wrong_mount_path,
        r"BootError",
        r"(?s)`kind create cluster` failed.*policy\.yaml: no such file",
    ),
    (
        drop_log_volume,
        r"BackendError",
        r"(?s)not provably live: no audit event for the probe.*"
        r"Neither the host .* nor the node .* receives audit events.*extraVolumes",
    ),
    (
        versioned_v1beta4,
        r"BackendError",
        r"(?s)does not run the audit flags we asked for:.*"
        r"--audit-policy-file: expected '/etc/kubernetes/kaudit/policy.yaml', running '<not set>'"
        r".*dropped silently",
    ),
    (
        list_form_args,
        r"BootError",
        r"(?s)failed to init node with kubeadm.*cannot unmarshal "
        r"array into Go struct field APIServer.apiServer.extraArgs of type map\[string\]string",
    ),
]


@pytest.mark.parametrize(
    ("transform", "error", "message"), MISWIRED, ids=[m[0].__name__ for m in MISWIRED]
)
def test_kind_double_miswired_config_fails_like_kind_and_is_reported(
    double_env: dict[str, str], transform: Any, error: str, message: str
) -> None:
    """Preflight off: the double fails the way kind/kubeadm would; the backend says why."""
    backend = KindBackend(node_image=IMAGE_131, config_transform=transform, preflight=False)
    with pytest.raises((BackendError, BootError)) as exc:
        backend.start(ClusterSpec(policy=POLICY))
    assert type(exc.value).__name__ == error
    assert __import__("re").search(message, str(exc.value)), str(exc.value)
    assert kind("get", "clusters").stdout == ""  # nothing left running


@pytest.mark.parametrize(
    "transform", [m[0] for m in MISWIRED], ids=[m[0].__name__ for m in MISWIRED]
)
def test_kind_double_preflight_catches_miswiring_without_booting(
    double_env: dict[str, str], transform: Any
) -> None:
    backend = KindBackend(node_image=IMAGE_131, config_transform=transform)
    with pytest.raises(BackendError, match="would boot a cluster that does not audit as asked"):
        backend.start(ClusterSpec(policy=POLICY))
    assert kind("get", "clusters").stdout == ""


def test_kind_double_cli_subset_behaves_like_kind(double_env: dict[str, str]) -> None:
    """What the double promises about kind's CLI (docs/kind.md)."""
    none = kind("get", "clusters")
    assert none.returncode == 0 and none.stdout == "" and "No kind clusters found." in none.stderr
    assert kind("delete", "cluster", "--name", "absent").returncode == 0  # idempotent
    created = kind("create", "cluster", "--name", "plain", "--wait", "1s")  # no --kubeconfig
    assert created.returncode == 0, created.stderr
    home_config = yaml.safe_load((Path.home() / ".kube" / "config").read_text())
    assert home_config["current-context"] == "kind-plain"  # the side effect kaudit avoids
    again = kind("create", "cluster", "--name", "plain")
    assert 'node(s) already exist for a cluster with the name "plain"' in again.stderr
    assert kind("get", "kubeconfig", "--name", "plain").stdout.count("https://127.0.0.1:") == 1
    assert (
        kind("get", "kubeconfig", "--name", "plain", "--internal").stdout.count(
            "https://plain-control-plane:6443"
        )
        == 1
    )
    assert kind("get", "nodes", "--name", "plain").stdout.split() == ["plain-control-plane"]
    ps = subprocess.run(
        ["docker", "ps", "--filter", "label=io.x-k8s.kind.cluster=plain", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ps.stdout.split() == ["plain-control-plane"]
    assert kind("delete", "cluster", "--name", "plain").returncode == 0
    assert "kind-plain" not in (Path.home() / ".kube" / "config").read_text()
    bad = kind(
        "create",
        "cluster",
        "--config",
        "-",
        stdin="kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnode: []\n",
    )
    assert "field node not found in type v1alpha4.Cluster" in bad.stderr and bad.returncode == 1


def test_kind_double_config_dump_writes_the_generated_config(
    double_env: dict[str, str], tmp_path: Path
) -> None:
    dump = tmp_path / "kind.yaml"
    backend = KindBackend(config_dump=dump, config_transform=drop_policy_mount)
    with pytest.raises(BackendError):
        backend.start(ClusterSpec(policy=POLICY))
    assert yaml.safe_load(dump.read_text())["kind"] == "Cluster"

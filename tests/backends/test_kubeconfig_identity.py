"""Who a kubeconfig authenticates as, and kubeconfig lists merged like ``KUBECONFIG=a:b``.

The end-to-end tests run the real kube-apiserver (local backend) with a static token file
and attach to it with the ``existing`` backend: the admin identity must be the one the
server gives the token, however the kubeconfig entry is named. The SelfSubjectReview path
needs Kubernetes >= 1.26 and our apiserver is 1.20, so that path is checked against a
recorded server answer (a stand-in for the HTTP call).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pytest_kaudit.backends import _probe
from pytest_kaudit.backends._kubeconfig_read import credentials_from_kubeconfig, kubeconfig_paths
from pytest_kaudit.backends.base import ClusterHandle, ClusterSpec, Credentials
from pytest_kaudit.backends.existing import ExistingBackend
from pytest_kaudit.backends.local import LocalBackend
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.events.log import FileLogSource
from pytest_kaudit.policy import Policy

POLICY = Policy.from_yaml("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
TOKEN = "kaudit-test-token-0123456789"
TOKEN_USER = "token-admin"


def write(path: Path, doc: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def token_cluster(
    control_plane_binaries: ControlPlaneBinaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterHandle]:
    """A real kube-apiserver that also accepts a static token for ``token-admin``."""
    base = tmp_path_factory.mktemp("token-cluster")
    tokens = base / "tokens.csv"
    tokens.write_text(f'{TOKEN},{TOKEN_USER},uid-1,"system:masters,token-team"\n')
    backend = LocalBackend(base_dir=base)
    handle = backend.start(ClusterSpec(POLICY, flags={"token-auth-file": str(tokens)}))
    try:
        yield handle
    finally:
        backend.stop(handle)


def _log_path(handle: ClusterHandle) -> str:
    source = handle.log_source
    assert isinstance(source, FileLogSource)
    return str(source.path)


def _cluster_doc(handle: ClusterHandle) -> dict[str, object]:
    assert handle.ca_file is not None
    return {"name": "real", "cluster": {"server": handle.server,
                                        "certificate-authority": str(handle.ca_file)}}


def test_token_admin_is_who_the_server_says_not_the_entry_name(
    token_cluster: ClusterHandle, tmp_path: Path
) -> None:
    kubeconfig = write(tmp_path / "kubeconfig", {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "real", "user": "my-laptop-entry"}}],
        "clusters": [_cluster_doc(token_cluster)],
        "users": [{"name": "my-laptop-entry", "user": {"token": TOKEN}}],
    })
    backend = ExistingBackend(kubeconfig, log_path=_log_path(token_cluster))
    handle = backend.start(ClusterSpec(policy=None))
    try:
        # 1.20 serves no SelfSubjectReview: the identity comes from the probe's audit event
        assert handle.admin.user == TOKEN_USER
        assert "token-team" in handle.admin.groups
        assert handle.admin.token == TOKEN
    finally:
        backend.stop(handle)


def test_kubeconfig_list_is_merged_like_kubectl(token_cluster: ClusterHandle, tmp_path: Path) -> None:
    """``KUBECONFIG=a:b``: the context and cluster from one file, the user from the other."""
    first = write(tmp_path / "first.yaml", {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "real", "user": "admin"}}],
        "clusters": [_cluster_doc(token_cluster)],
    })
    second_dir = tmp_path / "elsewhere"
    second_dir.mkdir()
    (second_dir / "token").write_text(TOKEN)
    second = write(second_dir / "second.yaml", {
        "apiVersion": "v1", "kind": "Config", "current-context": "not-this-one",
        "clusters": [{"name": "real", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "admin", "user": {"tokenFile": "token"}}],  # relative to second
    })
    backend = ExistingBackend(f"{first}{os.pathsep}{second}", log_path=_log_path(token_cluster))
    handle = backend.start(ClusterSpec(policy=None))
    try:
        assert handle.server == token_cluster.server  # first file's cluster wins
        assert handle.admin.user == TOKEN_USER
        assert handle.version == token_cluster.version
        assert stat.S_IMODE(handle.kubeconfig.stat().st_mode) == 0o600
        merged = yaml.safe_load(handle.kubeconfig.read_text())
        assert merged["clusters"][0]["cluster"]["server"] == token_cluster.server
    finally:
        backend.stop(handle)


def test_kubeconfig_paths_split_a_kubeconfig_list() -> None:
    assert kubeconfig_paths(f"/a{os.pathsep}{os.pathsep}/b") == [Path("/a"), Path("/b")]
    assert kubeconfig_paths(Path("/a:b")) == [Path("/a:b")]  # a Path is one file


def test_first_file_wins_for_each_name_and_missing_files_are_skipped(tmp_path: Path) -> None:
    first = write(tmp_path / "a", {
        "current-context": "one",
        "contexts": [{"name": "one", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://first:6443"}}],
        "users": [{"name": "u", "user": {"token": "first"}}],
    })
    second = write(tmp_path / "b", {
        "current-context": "two",
        "contexts": [{"name": "two", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://second:6443"}}],
        "users": [{"name": "u", "user": {"token": "second"}}],
    })
    access = credentials_from_kubeconfig([tmp_path / "missing", first, second], None, tmp_path)
    assert (access.server, access.admin.token) == ("https://first:6443", "first")
    other = credentials_from_kubeconfig([first, second], "two", tmp_path)
    assert other.server == "https://first:6443"  # context from b, cluster "k" from a


def test_exec_plugin_token_comes_from_the_kubernetes_client_loader(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1',"
        " 'kind': 'ExecCredential', 'status': {'token': 'from-plugin'}}))\n"
    )
    kubeconfig = write(tmp_path / "kubeconfig", {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://h:6443"}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable, "args": [str(plugin)],
        }}}],
    })
    access = credentials_from_kubeconfig(kubeconfig, None, tmp_path / "work")
    assert access.admin.token == "from-plugin"


# A SelfSubjectReview answer as kube-apiserver 1.28+ returns it (HTTP 201).
RECORDED_REVIEW = {
    "kind": "SelfSubjectReview",
    "apiVersion": "authentication.k8s.io/v1",
    "metadata": {"creationTimestamp": None},
    "status": {"userInfo": {"username": "kubernetes-admin",
                            "groups": ["kubeadm:cluster-admins", "system:authenticated"]}},
}


@pytest.mark.parametrize("served", ["v1", "v1beta1", "v1alpha1"])
def test_self_subject_review_answers_before_any_log_probe(
    monkeypatch: pytest.MonkeyPatch, served: str
) -> None:
    asked: list[str] = []

    def recorded(server: str, path: str, ctx: object, **kw: object) -> tuple[int, bytes]:
        """Stand-in for the HTTP call: serves only one SelfSubjectReview version."""
        asked.append(path)
        if path == f"/apis/authentication.k8s.io/{served}/selfsubjectreviews":
            body = json.loads(kw["body"])  # type: ignore[arg-type]
            assert body == {"apiVersion": f"authentication.k8s.io/{served}",
                            "kind": "SelfSubjectReview"}
            assert kw["method"] == "POST"
            return 201, json.dumps(RECORDED_REVIEW).encode()
        return 404, b"404 page not found"

    monkeypatch.setattr(_probe, "request", recorded)
    monkeypatch.setattr(_probe, "logged_identity", lambda *a, **k: pytest.fail("log probed"))
    identity = _probe.whoami("https://h:6443", None, Credentials("entry", token="t"),
                             FileLogSource(Path("/nonexistent")), timeout=1)
    assert identity == ("kubernetes-admin", ("kubeadm:cluster-admins", "system:authenticated"))
    assert asked[-1].endswith(f"/{served}/selfsubjectreviews")

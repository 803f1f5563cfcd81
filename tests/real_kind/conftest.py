"""Fixtures for tests against REAL kind: the `kind` CLI, a real container engine, a real
kubeadm-made cluster with a kubelet and a controller-manager.

These tests need a node image that runs here (`KAUDIT_KIND_NODE_IMAGE`, e.g. the tag that
`clusters/kind/provision` prints), `kind` on PATH and an engine that answers `docker info`.
Without them they are skipped, except under `KAUDIT_REQUIRE_REAL_KIND=1` (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

#: The label kind puts on every node container: its value is the cluster name.
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.real_kind)


def kind_containers(prefix: str = "kaudit-") -> dict[str, str]:
    """Every kind node container of clusters whose name starts with ``prefix``: name -> cluster."""
    proc = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={KIND_CLUSTER_LABEL}",
         "--format", f'{{{{.Names}}}} {{{{.Label "{KIND_CLUSTER_LABEL}"}}}}'],
        capture_output=True, text=True, timeout=60, check=True,
    )
    found = {}
    for line in proc.stdout.splitlines():
        name, _, cluster = line.partition(" ")
        if cluster.startswith(prefix):
            found[name] = cluster
    return found


def _unavailable() -> str | None:
    if not os.environ.get("KAUDIT_KIND_NODE_IMAGE"):
        return "KAUDIT_KIND_NODE_IMAGE is not set (run clusters/kind/provision)"
    if shutil.which("kind") is None:
        return "no `kind` on PATH"
    if shutil.which("docker") is None:
        return "no `docker` CLI on PATH"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        return "no container engine answers `docker info`"
    return None


@pytest.fixture(scope="session")
def kind_node_image() -> str:
    """The node image real-kind tests boot; fail instead of skip under KAUDIT_REQUIRE_REAL_KIND."""
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("KAUDIT_REQUIRE_REAL_KIND"):
            pytest.fail(f"real kind is required here: {reason}", pytrace=False)
        pytest.skip(f"real kind unavailable: {reason}")
    return os.environ["KAUDIT_KIND_NODE_IMAGE"]


@pytest.fixture
def kind_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private kind state dir for this test; no `kaudit-*` node container may outlive it."""
    state = tmp_path / "kind-state"
    monkeypatch.setenv("KAUDIT_KIND_STATE_DIR", str(state))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    before = set(kind_containers())
    yield state
    left = {n: c for n, c in kind_containers().items() if n not in before}
    for cluster in set(left.values()):
        subprocess.run(["kind", "delete", "cluster", "--name", cluster,
                        "--kubeconfig", os.devnull], capture_output=True, timeout=180)
    assert not left, f"kind node containers left behind: {sorted(left)}"

"""Fixtures for backend tests: the kind/docker test doubles and the real control plane.

Everything that boots runs against ``tests/doubles/kind`` + ``tests/doubles/docker``, which
start the *real* etcd + kube-apiserver locally. A pass here is a pass against the doubles,
never evidence about real kind or k3s.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"


@pytest.fixture(scope="session")
def control_plane_binaries() -> object:
    """The real etcd + kube-apiserver the kind double boots; FAIL (not skip) when missing."""
    from pytest_kaudit.backends.local.binaries import find_binaries
    from pytest_kaudit.errors import BinaryNotFound

    try:
        return find_binaries()
    except BinaryNotFound as exc:
        pytest.fail(f"the kind double needs the real control plane binaries:\n{exc}", pytrace=False)


def _delete_all(env: dict[str, str]) -> None:
    """Kill every fake cluster of this state dir (its detached processes included)."""
    subprocess.run(
        [str(DOUBLES / "kind"), "delete", "clusters", "--all"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def double_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, control_plane_binaries: object
) -> Iterator[dict[str, str]]:
    """PATH with the doubles first; private state, HOME and kind state dirs; cleaned after."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    state = tmp_path / "double-state"
    kind_state = tmp_path / "kind-state"
    monkeypatch.setenv("PATH", f"{DOUBLES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KAUDIT_DOUBLE_STATE", str(state))
    monkeypatch.setenv("KAUDIT_KIND_STATE_DIR", str(kind_state))
    monkeypatch.setenv("HOME", str(home))
    # HOME moves, so pin the binaries found with the real HOME (provision cache) explicitly.
    monkeypatch.setenv("TEST_ASSET_KUBE_APISERVER", str(control_plane_binaries.apiserver))  # type: ignore[attr-defined]
    monkeypatch.setenv("TEST_ASSET_ETCD", str(control_plane_binaries.etcd))  # type: ignore[attr-defined]
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KIND_EXPERIMENTAL_PROVIDER", raising=False)
    monkeypatch.delenv("KAUDIT_DOUBLE_KIND_VERSION", raising=False)
    monkeypatch.delenv("KAUDIT_DOUBLE_DOCKER_DOWN", raising=False)
    env = dict(os.environ)
    try:
        yield env
    finally:
        _delete_all(dict(os.environ))
        leftovers = list((state / "clusters").glob("*")) if (state / "clusters").exists() else []
        assert not leftovers, f"fake clusters left behind: {leftovers}"

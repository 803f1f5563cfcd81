"""k3s backend units against a fake K3SContainer: command, volumes, waits, errors.

The real testcontainers path, with a real engine and a stand-in k3s image, is exercised in
test_k3s_testcontainers.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_kaudit.backends.base import ClusterSpec
from pytest_kaudit.backends.k3s import (
    READY_LINE,
    K3sBackend,
    k3s_command,
    k3s_volumes,
)
from pytest_kaudit.errors import BackendError, BootError, PolicyError
from pytest_kaudit.policy import Policy

POLICY = Policy.from_yaml("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")


class FakeK3SContainer:
    """Records what the backend configures on testcontainers' K3SContainer."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.command: Any = "server --disable traefik --tls-san=localhost"
        self.volumes: list[tuple[str, str, str]] = []
        self.started = self.stopped = False

    def get_container_host_ip(self) -> str:
        return "10.1.2.3"

    def with_command(self, command: Any) -> FakeK3SContainer:
        self.command = command
        return self

    def with_volume_mapping(self, host: str, container: str, mode: str = "ro") -> FakeK3SContainer:
        self.volumes.append((host, container, mode))
        return self

    def start(self) -> None:
        raise RuntimeError("fake: no Docker")

    def get_logs(self) -> tuple[bytes, bytes]:
        return b"k3s log line\n", b""

    def stop(self) -> None:
        self.stopped = True


def test_command_passes_audit_flags_as_kube_apiserver_args() -> None:
    spec = ClusterSpec(policy=POLICY, flags={"audit-log-maxbackup": "1"})
    assert k3s_command(spec, "10.1.2.3") == [
        "server",
        "--disable",
        "traefik",
        "--tls-san=10.1.2.3",
        "--kube-apiserver-arg=audit-log-path=/kaudit/log/audit.log",
        "--kube-apiserver-arg=audit-policy-file=/kaudit/policy/policy.yaml",
        "--kube-apiserver-arg=audit-log-maxbackup=1",
    ]
    assert "audit-policy-file" not in " ".join(k3s_command(ClusterSpec(policy=None), "h"))


def test_volumes_mount_policy_read_only_and_log_read_write(tmp_path: Path) -> None:
    assert k3s_volumes(tmp_path) == [
        (str(tmp_path / "policy"), "/kaudit/policy", "ro"),
        (str(tmp_path / "log"), "/kaudit/log", "rw"),
    ]


def test_configure_overrides_the_command_set_in_k3scontainer_init(tmp_path: Path) -> None:
    backend = K3sBackend(container_factory=FakeK3SContainer)
    container = backend.configure(FakeK3SContainer("img"), ClusterSpec(policy=POLICY), tmp_path)
    assert container.command[:4] == ["server", "--disable", "traefik", "--tls-san=10.1.2.3"]
    assert [v[1] for v in container.volumes] == ["/kaudit/policy", "/kaudit/log"]


def test_configure_waits_for_the_ready_line_with_a_strategy_that_sees_an_exit(
    tmp_path: Path,
) -> None:
    """K3SContainer's own log wait outlasts a dead container; the strategy stops at its exit."""
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    class Waiting(FakeK3SContainer):
        strategy: Any = None

        def waiting_for(self, strategy: Any) -> Waiting:
            self.strategy = strategy
            return self

    container = K3sBackend().configure(
        Waiting("img"), ClusterSpec(policy=POLICY, timeout=42), tmp_path
    )
    assert isinstance(container.strategy, LogMessageWaitStrategy)
    assert container.strategy._message.pattern == READY_LINE
    assert container.strategy._startup_timeout == 42


def test_ready_line_is_the_one_k3scontainer_waits_for() -> None:
    import inspect

    from testcontainers.community.k3s import K3SContainer

    assert f'"{READY_LINE}"' in inspect.getsource(K3SContainer._connect)


def test_prepare_writes_policy_and_precreates_readable_log(tmp_path: Path) -> None:
    K3sBackend().prepare(ClusterSpec(policy=POLICY), tmp_path)
    assert "kaudit:barrier" in (tmp_path / "policy" / "policy.yaml").read_text()
    assert oct((tmp_path / "log" / "audit.log").stat().st_mode & 0o777) == "0o644"


def test_failed_start_reports_container_logs_and_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakeK3SContainer] = []

    def factory(image: str) -> FakeK3SContainer:
        made.append(FakeK3SContainer(image))
        return made[-1]

    with pytest.raises(
        BackendError, match=r"(?s)k3s container failed to start: fake: no Docker.*k3s log line"
    ):
        K3sBackend(container_factory=factory).start(ClusterSpec(policy=POLICY))
    assert made[0].stopped


def test_policy_rejected_for_the_image_version_before_any_container() -> None:
    old = Policy.from_yaml(
        "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n",
        target_version=(1, 20),
    )
    with pytest.raises(PolicyError, match="v1.31"):
        K3sBackend(container_factory=lambda image: pytest.fail("no container expected")).start(
            ClusterSpec(policy=old)
        )


@pytest.mark.skipif(
    bool(os.environ.get("DOCKER_HOST")) or Path("/var/run/docker.sock").exists(),
    reason="only meaningful where no Docker engine is reachable",
)
def test_without_docker_the_error_says_so() -> None:
    with pytest.raises(BackendError, match="cannot reach a Docker engine"):
        K3sBackend().start(ClusterSpec(policy=POLICY))


def test_keep_warns_that_ryuk_removes_the_container(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TESTCONTAINERS_RYUK_DISABLED", raising=False)
    with caplog.at_level("WARNING", logger="pytest_kaudit.backends.k3s"):
        K3sBackend(keep=True, container_factory=FakeK3SContainer)
    assert "reaper (Ryuk) removes the k3s container" in caplog.text
    assert "TESTCONTAINERS_RYUK_DISABLED=true" in caplog.text
    caplog.clear()
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    with caplog.at_level("WARNING", logger="pytest_kaudit.backends.k3s"):
        K3sBackend(keep=True, container_factory=FakeK3SContainer)
        K3sBackend(container_factory=FakeK3SContainer)
    assert "Ryuk" not in caplog.text


class StartingK3SContainer(FakeK3SContainer):
    def start(self) -> None:
        self.started = True

    def config_yaml(self) -> str:
        return (
            "apiVersion: v1\nkind: Config\ncurrent-context: d\n"
            "contexts: [{name: d, context: {cluster: d, user: d}}]\n"
            "clusters: [{name: d, cluster: {server: 'https://127.0.0.1:1'}}]\n"
            "users: [{name: d, user: {token: t}}]\n"
        )


def test_apiserver_not_ready_is_a_boot_error_with_the_log_tail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_kaudit.backends import k3s

    def not_ready(*args: object, **kwargs: object) -> None:
        raise TimeoutError("not ready within 1s (last probe: /readyz: refused)")

    monkeypatch.setattr(k3s, "wait_ready", not_ready)
    made: list[StartingK3SContainer] = []

    def factory(image: str) -> StartingK3SContainer:
        made.append(StartingK3SContainer(image))
        return made[-1]

    with pytest.raises(
        BootError,
        match=r"(?s)kube-apiserver of the k3s container failed to start: not ready within 1s"
        r".*k3s log line",
    ):
        K3sBackend(container_factory=factory).start(ClusterSpec(policy=POLICY, timeout=1))
    assert made[0].stopped

"""The k3s backend through REAL testcontainers and a REAL Docker engine, with a STAND-IN image.

What is real here: testcontainers' ``K3SContainer`` code path (create, privileged start,
the log wait, ``docker exec cat`` of the kubeconfig and the client CA, port mapping,
stop), the Docker engine, etcd and kube-apiserver 1.20.2 (with the ServiceAccount admission
plugin on, as k3s has it), the audit log read through the bind mount, and client
certificates signed with the container's client CA.

What is NOT real: the k3s binary. No k3s image can be had on this machine, so the image is
built locally by ``tests/doubles/k3s-standin/build-image``: its ``/bin/k3s`` is a stand-in
that accepts ``k3s server`` with the arguments the backend passes and runs the real etcd
and kube-apiserver with them (see ``tests/doubles/k3s-standin/main.go``). A pass here is
not a pass against real k3s.

testcontainers' reaper (Ryuk) is disabled (``TESTCONTAINERS_RYUK_DISABLED=true``): its
image cannot be pulled here. The tests check themselves that no container is left.

Skipped without a Docker engine (or the binaries, or Go); FAIL instead under
``KAUDIT_REQUIRE_REAL_KIND=1`` (CI), where the engine is there.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
from cryptography import x509

from pytest_kaudit.backends import k3s as k3s_module
from pytest_kaudit.backends.base import BARRIER_USER, ClusterHandle, ClusterSpec, Credentials
from pytest_kaudit.backends.k3s import CONNECTION_MODE_ENV, RYUK_DISABLED_ENV, K3sBackend
from pytest_kaudit.errors import BackendError, BootError
from pytest_kaudit.events.log import AuditLog, LogSource
from pytest_kaudit.policy import Policy

REPO = Path(__file__).resolve().parents[2]
BUILD_IMAGE = REPO / "tests" / "doubles" / "k3s-standin" / "build-image"
#: Holds the stand-in's ServiceAccount controller back by this many seconds after /readyz.
SERVICE_ACCOUNT_DELAY_ENV = "K3S_STANDIN_SERVICEACCOUNT_DELAY"
SERVICE_ACCOUNT_DELAY_S = 8
#: The label testcontainers puts on every container it creates.
TC_LABEL = "org.testcontainers=true"

POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Request
    resources: [{group: "", resources: ["configmaps"]}]
  - level: Metadata
"""


def _unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no `docker` CLI on PATH"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        return "no container engine answers `docker info`"
    if shutil.which("go") is None:
        return "no Go toolchain to build the stand-in entrypoint"
    return None


@pytest.fixture(scope="session")
def standin_image() -> str:
    """Build (or reuse) the k3s stand-in image; fail instead of skip under CI's switch."""
    reason = _unavailable()
    if reason is None:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, str(BUILD_IMAGE)], capture_output=True,
                              text=True, timeout=600)
        if proc.returncode == 0:
            tag = proc.stdout.split()[-1]
            print(f"k3s stand-in image {tag} ready in {time.monotonic() - started:.1f}s")
            return tag
        reason = f"the stand-in image did not build:\n{proc.stderr[-2000:]}"
    if os.environ.get("KAUDIT_REQUIRE_REAL_KIND"):
        pytest.fail(f"a real Docker engine is required here: {reason}", pytrace=False)
    pytest.skip(f"k3s through testcontainers unavailable: {reason}")


def _connection_mode() -> str:
    """docker_host unless the user chose: the engine runs on this host and publishes here."""
    return os.environ.get(CONNECTION_MODE_ENV) or "docker_host"


@pytest.fixture
def testcontainers_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ryuk off, and the connection mode set, in the environment and in testcontainers' config.

    testcontainers reads both once (at import, or on first use), so the config object is
    patched too.
    """
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    monkeypatch.setenv(RYUK_DISABLED_ENV, "true")
    monkeypatch.setenv(CONNECTION_MODE_ENV, _connection_mode())
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)
    monkeypatch.setattr(testcontainers_config, "connection_mode_override",
                        ConnectionMode(_connection_mode()))


def containers_of(image: str) -> set[str]:
    """Ids of every container, running or not, that testcontainers made from ``image``."""
    proc = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={TC_LABEL}",
         "--filter", f"ancestor={image}"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return set(proc.stdout.split())


def _call(handle: ClusterHandle, creds: Credentials, method: str, path: str,
          body: dict[str, object] | None = None) -> tuple[int, str, dict[str, object]]:
    """One request as ``creds`` with a fresh Audit-ID; returns (status, audit id, body)."""
    ctx = ssl.create_default_context(cafile=str(handle.ca_file))
    assert creds.cert_file is not None and creds.key_file is not None
    ctx.load_cert_chain(str(creds.cert_file), str(creds.key_file))
    audit_id = f"kaudit-k3s-{uuid.uuid4().hex[:12]}"
    req = urllib.request.Request(
        handle.server + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Audit-ID": audit_id, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            return resp.status, audit_id, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, audit_id, json.loads(exc.read() or b"{}")


def _wait_event(source: LogSource, audit_id: str, timeout: float = 20.0) -> dict[str, str]:
    """``audit_id``'s event (level, user, groups) once it is in the log, polled with a deadline."""
    reader = AuditLog(source.follow(from_start=True))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for event in reader.poll():
                if event.audit_id == audit_id:
                    return {"level": str(getattr(event.level, "value", event.level)),
                            "user": event.user, "groups": ",".join(event.groups)}
            time.sleep(0.2)
    finally:
        reader.close()
    raise AssertionError(f"no event for {audit_id} in {source.description} within {timeout}s")


def _late_service_accounts(image: str) -> object:
    """testcontainers' K3SContainer, with the stand-in's ServiceAccount controller held back.

    Readiness must then wait for ``default/default``; a backend that raced it would let the
    pod create below fail with 403 ``serviceaccount "default" not found``.
    """
    container = k3s_module._default_container_factory(image)
    return container.with_env(SERVICE_ACCOUNT_DELAY_ENV, f"{SERVICE_ACCOUNT_DELAY_S}s")


class Cluster:
    def __init__(self, backend: K3sBackend, handle: ClusterHandle, image: str) -> None:
        self.backend, self.handle, self.image = backend, handle, image


@pytest.fixture(scope="module")
def cluster(standin_image: str) -> Iterator[Cluster]:
    """One stand-in k3s container for the module; afterwards no container of it may remain."""
    with pytest.MonkeyPatch.context() as mp:
        from testcontainers.core.config import ConnectionMode, testcontainers_config

        mp.setenv(RYUK_DISABLED_ENV, "true")
        mp.setattr(testcontainers_config, "ryuk_disabled", True)
        mp.setattr(testcontainers_config, "connection_mode_override",
                   ConnectionMode(_connection_mode()))
        before = containers_of(standin_image)
        backend = K3sBackend(image=standin_image, container_factory=_late_service_accounts)
        started = time.monotonic()
        handle = backend.start(ClusterSpec(policy=Policy.from_yaml(POLICY), timeout=120))
        print(f"k3s (stand-in image) start through testcontainers: "
              f"{time.monotonic() - started:.1f}s")
        box = Cluster(backend, handle, standin_image)
        try:
            yield box
        finally:
            backend.stop(box.handle)
            left = containers_of(standin_image) - before
            for cid in left:
                subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)
            assert not left, f"k3s containers left behind: {sorted(left)}"


def test_k3s_backend_real_testcontainers_with_standin_image_starts_with_policy_live(
    cluster: Cluster,
) -> None:
    """The container was made by testcontainers (its labels), and start proved the policy."""
    handle = cluster.handle
    assert containers_of(cluster.image), "no testcontainers-labelled container is running"
    assert handle.backend == "k3s" and handle.version == (1, 20)
    assert handle.has_barrier_rule  # start() returned only after the barrier event was seen
    assert handle.apiserver_flags["audit-policy-file"] == "/kaudit/policy/policy.yaml"
    # the barrier event reached the host through the bind mount of the log directory
    assert handle.workdir is not None
    assert BARRIER_USER in (handle.workdir / "log" / "audit.log").read_text()


def test_k3s_backend_real_testcontainers_with_standin_image_logs_at_the_policy_level(
    cluster: Cluster,
) -> None:
    handle = cluster.handle
    status, audit_id, _ = _call(handle, handle.admin, "GET",
                                "/api/v1/namespaces/default/configmaps/absent")
    assert status == 404
    assert _wait_event(handle.log_source, audit_id)["level"] == "Request"
    status, audit_id, _ = _call(handle, handle.admin, "GET",
                                "/api/v1/namespaces/default/secrets/absent")
    assert status == 404
    assert _wait_event(handle.log_source, audit_id)["level"] == "Metadata"


def test_k3s_backend_real_testcontainers_with_standin_image_mints_users_with_the_client_ca(
    cluster: Cluster,
) -> None:
    """A minted certificate is signed by the container's client CA and authenticates as the user."""
    handle = cluster.handle
    assert handle.mint_credentials is not None
    alice = handle.mint_credentials("alice", ("devs",))
    assert alice.cert_file is not None
    container = cluster.backend._containers[handle.name]
    ca_pem = k3s_module._exec(container, f"{k3s_module.CLIENT_CA}.crt")
    ca = x509.load_pem_x509_certificate(ca_pem)
    cert = x509.load_pem_x509_certificate(alice.cert_file.read_bytes())
    cert.verify_directly_issued_by(ca)
    status, audit_id, _ = _call(handle, alice, "GET", "/api/v1/namespaces/default/configmaps")
    assert status == 403  # authenticated as alice, who has no RBAC grant
    event = _wait_event(handle.log_source, audit_id)
    assert event["user"] == "alice" and "devs" in event["groups"].split(",")


def test_k3s_backend_real_testcontainers_with_standin_image_admits_a_pod_at_once(
    cluster: Cluster,
) -> None:
    """Readiness waited for default/default with its token Secret (ServiceAccount plugin on)."""
    pod: dict[str, object] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ready-check"},
           "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}
    handle = cluster.handle
    status, _, body = _call(handle, handle.admin, "POST", "/api/v1/namespaces/default/pods", pod)
    assert status == 201, f"pod create right after start answered {status}: {body.get('message')}"


@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_k3s_backend_real_testcontainers_with_standin_image_stop_leaves_no_container(
    standin_image: str, testcontainers_env: None,
) -> None:
    """A second cluster, stopped: its container is gone (docker ps -a, testcontainers label)."""
    before = containers_of(standin_image)
    backend = K3sBackend(image=standin_image)
    handle = backend.start(ClusterSpec(policy=None, timeout=120))
    try:
        running = containers_of(standin_image) - before
        assert len(running) == 1
    finally:
        backend.stop(handle)
    assert containers_of(standin_image) - before == set()
    assert handle.workdir is not None and not handle.workdir.exists()


def test_k3s_backend_real_testcontainers_with_standin_image_keep_leaves_the_container(
    standin_image: str, testcontainers_env: None,
) -> None:
    """With keep (and Ryuk off) stop() leaves the container running, as the README says."""
    before = containers_of(standin_image)
    backend = K3sBackend(image=standin_image, keep=True)
    handle = backend.start(ClusterSpec(policy=None, timeout=120))
    kept = containers_of(standin_image) - before
    try:
        backend.stop(handle)
        assert len(kept) == 1 and kept <= containers_of(standin_image)
        status = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Status}}", *kept],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()
        assert status == "running"
    finally:
        for cid in containers_of(standin_image) - before:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)
        if handle.workdir is not None:
            shutil.rmtree(handle.workdir, ignore_errors=True)


def test_k3s_backend_real_testcontainers_with_standin_image_bad_flag_fails_with_apiserver_error(
    standin_image: str, testcontainers_env: None,
) -> None:
    """A flag kube-apiserver refuses at start fails it with its message; no container is left."""
    before = containers_of(standin_image)
    backend = K3sBackend(image=standin_image)
    started = time.monotonic()
    try:
        with pytest.raises(BootError) as failed:
            backend.start(ClusterSpec(policy=None, flags={"tls-cert-file": "/absent/serving.crt"},
                                      timeout=120))
    finally:
        left = containers_of(standin_image) - before
        for cid in left:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)
    print(f"refused flag reported after {time.monotonic() - started:.1f}s")
    message = str(failed.value)
    assert "/absent/serving.crt" in message  # kube-apiserver's own error, from the log
    # noticed when the container exited, not after testcontainers' log wait timed out
    assert "Container exited" in message, message
    assert not left, f"k3s containers left behind: {sorted(left)}"


def test_k3s_backend_real_testcontainers_gateway_mode_error_names_the_way_out(
    standin_image: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside a container testcontainers picks gateway_ip, where K3SContainer() cannot be built.

    The error must say so and name TESTCONTAINERS_CONNECTION_MODE, not claim that no
    Docker engine answers (it does).
    """
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    monkeypatch.setattr(testcontainers_config, "connection_mode_override",
                        ConnectionMode.gateway_ip)
    with pytest.raises(BackendError) as failed:
        k3s_module._default_container_factory(standin_image)
    message = str(failed.value)
    assert f"{CONNECTION_MODE_ENV}=docker_host" in message
    assert "cannot reach a Docker engine" not in message


def test_k3s_backend_real_testcontainers_with_standin_image_runs_the_example_suite(
    standin_image: str, tmp_path: Path,
) -> None:
    """The example suite, in a pytest subprocess, with --kaudit-backend=k3s and the stand-in."""
    before = containers_of(standin_image)
    env = {**os.environ, RYUK_DISABLED_ENV: "true", CONNECTION_MODE_ENV: _connection_mode()}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "examples", "-p", "no:cacheprovider", "-q",
         "--kaudit-backend=k3s", f"--kaudit-k3s-image={standin_image}",
         f"--junitxml={tmp_path / 'junit.xml'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
    assert proc.returncode == 0, tail
    suite = ElementTree.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "6", "failures": "0", "errors": "0", "skipped": "0"}, tail
    assert containers_of(standin_image) - before == set()

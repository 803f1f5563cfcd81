"""The ``k3s`` backend: a k3s server container (testcontainers' ``K3SContainer``).

k3s runs kube-apiserver inside its own process, so the audit flags are plain
``--kube-apiserver-arg=audit-*`` paths inside the container (no kubeadm volume layer).
The policy and log directories are bind-mounted; the log is pre-created 0644 so it stays
readable on a rootful engine. k3s runs kube-apiserver with ``--anonymous-auth=false``, so
every probe authenticates as the admin of the container's kubeconfig.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_kaudit.backends import _owned
from pytest_kaudit.backends._clientcert import CertMinter
from pytest_kaudit.backends._kubeconfig_read import credentials_from_kubeconfig
from pytest_kaudit.backends._private import write_private
from pytest_kaudit.backends._probe import (
    prove_policy_live,
    server_version,
    wait_ready,
    wait_service_account,
)
from pytest_kaudit.backends.base import (
    BARRIER_USER,
    Backend,
    ClusterHandle,
    ClusterSpec,
    validate_spec,
)
from pytest_kaudit.errors import BackendError, BootError
from pytest_kaudit.events.log import FileLogSource

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "rancher/k3s:v1.31.4-k3s1"
CONTAINER_POLICY_DIR = "/kaudit/policy"
CONTAINER_LOG_DIR = "/kaudit/log"
#: k3s signs client certificates with this CA (the serving CA is server-ca.*).
CLIENT_CA = "/var/lib/rancher/k3s/server/tls/client-ca"
#: testcontainers' switch for its reaper (Ryuk), which removes containers at process exit.
RYUK_DISABLED_ENV = "TESTCONTAINERS_RYUK_DISABLED"
#: The k3s log line K3SContainer waits for before it returns from start().
READY_LINE = "Node controller sync successful"
#: testcontainers' choice of how to address containers (docker_host, gateway_ip, bridge_ip).
CONNECTION_MODE_ENV = "TESTCONTAINERS_CONNECTION_MODE"


def apiserver_args(spec: ClusterSpec) -> dict[str, str]:
    """The kube-apiserver flags k3s is asked to pass: our audit paths, then the user's."""
    args = {"audit-log-path": f"{CONTAINER_LOG_DIR}/{_owned.LOG_FILE}"}
    if spec.policy is not None:
        args["audit-policy-file"] = f"{CONTAINER_POLICY_DIR}/{_owned.POLICY_FILE}"
    args.update({k.lstrip("-"): str(v) for k, v in spec.flags.items()})
    return args


def k3s_command(spec: ClusterSpec, host: str) -> list[str]:
    """The ``k3s server`` argv: testcontainers' defaults plus one arg per apiserver flag.

    ``--tls-san=<host>`` is kept so the certificate is valid for a remote DOCKER_HOST.
    """
    return [
        "server",
        "--disable",
        "traefik",
        f"--tls-san={host}",
        *(f"--kube-apiserver-arg={k}={v}" for k, v in apiserver_args(spec).items()),
    ]


def k3s_volumes(workdir: Path) -> list[tuple[str, str, str]]:
    """(host, container, mode) bind mounts: policy read-only, log read-write."""
    return [
        (str(workdir / "policy"), CONTAINER_POLICY_DIR, "ro"),
        (str(workdir / "log"), CONTAINER_LOG_DIR, "rw"),
    ]


def _default_container_factory(image: str) -> Any:
    try:
        from testcontainers.community.k3s import K3SContainer  # testcontainers >= 4.15
    except ImportError:
        try:
            from testcontainers.k3s import K3SContainer  # <= 4.14
        except ImportError:
            raise BackendError(
                "the k3s backend needs testcontainers: pip install 'pytest-kaudit[k3s]'"
            ) from None
    try:
        return K3SContainer(image=image)  # talks to the Docker API already
    except Exception as exc:  # docker.errors.DockerException and friends
        if type(exc).__name__ == "ContainerStartException":
            raise BackendError(_connection_mode_help(exc)) from None
        raise BackendError(
            f"the k3s backend cannot reach a Docker engine: {exc}\n"
            "Start Docker (or set DOCKER_HOST), or use --kaudit-backend=local."
        ) from None


def _ready_line_strategy(timeout: float) -> Any:
    """testcontainers' log wait for :data:`READY_LINE` that fails once the container exits.

    None with testcontainers older than its wait strategies (4.13); K3SContainer's own wait
    then applies alone.
    """
    try:
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy
    except ImportError:
        return None
    return LogMessageWaitStrategy(READY_LINE).with_startup_timeout(int(timeout))


def _connection_mode_help(exc: Exception) -> str:
    """Why K3SContainer() failed although the engine answers, and the way out.

    Inside a container (``/.dockerenv``) with a local engine socket, testcontainers picks the
    ``gateway_ip`` connection mode, whose host address exists only once a container runs;
    K3SContainer asks for it in its constructor (testcontainers-python#861).
    """
    return (
        f"testcontainers cannot build its K3SContainer here: {exc}. It runs inside a "
        "container, so testcontainers addresses containers through a gateway or bridge IP, "
        "which K3SContainer needs before its container exists (testcontainers-python#861). "
        f"If the engine publishes ports on this host, set {CONNECTION_MODE_ENV}=docker_host."
    )


class K3sBackend(Backend):
    """One k3s container per cluster.

    Args:
        image: k3s image (docker tags use ``-k3s1``, not ``+k3s1``).
        reuse: accepted for option symmetry; testcontainers cannot reuse a container
            (testcontainers-python#109), so a new one is always started (logged).
        keep: leave the container running on stop (remove it yourself with docker rm -f).
            testcontainers' reaper (Ryuk) still removes it when the test process exits,
            unless ``TESTCONTAINERS_RYUK_DISABLED=true`` is set (a warning says so).
        container_factory: builds the container from the image (tests pass a fake).
    """

    name = "k3s"

    def __init__(
        self,
        image: str | None = None,
        *,
        reuse: bool = False,
        keep: bool = False,
        container_factory: Callable[[str], Any] | None = None,
    ) -> None:
        self.image = image or DEFAULT_IMAGE
        self.reuse = reuse
        self.keep = keep
        if reuse:
            log.warning(
                "k3s backend: reuse is not supported (testcontainers cannot reuse "
                "containers); every run starts a new k3s container"
            )
        if keep and os.environ.get(RYUK_DISABLED_ENV, "").strip().lower() != "true":
            log.warning(
                "k3s backend: keep has no lasting effect: testcontainers' reaper (Ryuk) "
                "removes the k3s container when this process exits; set "
                "%s=true to really keep it (then remove it yourself with docker rm -f)",
                RYUK_DISABLED_ENV,
            )
        self.container_factory = container_factory or _default_container_factory
        self._containers: dict[str, Any] = {}

    def target_version(self) -> tuple[int, int] | None:
        """Kubernetes minor from the image tag, if it has one."""
        return _owned.image_tag_version(self.image)

    def configure(self, container: Any, spec: ClusterSpec, workdir: Path) -> Any:
        """Override K3SContainer's command (set in its __init__) and add our mounts.

        Also wait for k3s's ready line with a strategy that stops when the container exits:
        K3SContainer's own wait keeps polling the log of a dead container until its timeout
        (120 s by default), so a refused apiserver flag would be reported only then.
        """
        container.with_command(k3s_command(spec, container.get_container_host_ip()))
        for host, target, mode in k3s_volumes(workdir):
            container.with_volume_mapping(host, target, mode)
        strategy = _ready_line_strategy(spec.timeout)
        if strategy is not None and hasattr(container, "waiting_for"):
            container.waiting_for(strategy)
        return container

    def prepare(self, spec: ClusterSpec, workdir: Path) -> None:
        """Write the policy; pre-create the log 0644 (k3s would create it 0600 as root)."""
        (workdir / "policy").mkdir(mode=0o755)
        (workdir / "log").mkdir(mode=0o755)
        (workdir / "policy" / _owned.POLICY_FILE).write_text(_owned.render_policy(spec))
        _owned.create_readable_log(workdir / "log" / _owned.LOG_FILE)

    def start(self, spec: ClusterSpec) -> ClusterHandle:
        """Start the container, then prove the policy live with the probe event."""
        validate_spec(spec, self.target_version() or (1, 37))
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="kaudit-k3s-"))
        workdir.chmod(0o700)
        container = None
        try:
            self.prepare(spec, workdir)
            container = self.configure(self.container_factory(self.image), spec, workdir)
            try:
                with warnings.catch_warnings():
                    # K3SContainer's own log wait is deprecated in testcontainers >= 4.13;
                    # not the user's to fix, and an error under -W error::DeprecationWarning
                    warnings.filterwarnings(
                        "ignore", "The wait_for_logs function", DeprecationWarning
                    )
                    container.start()
            except Exception as exc:  # docker errors, wait timeout
                raise BootError("k3s container", str(exc), _logs(container)) from None
            self._containers[workdir.name] = container
            return self._handle(container, spec, workdir, started)
        except BaseException:
            if container is not None:
                _stop(container)
            self._containers.pop(workdir.name, None)
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    def _handle(
        self, container: Any, spec: ClusterSpec, workdir: Path, started: float
    ) -> ClusterHandle:
        client_dir = workdir / "client"
        client_dir.mkdir(mode=0o700)
        kubeconfig = write_private(client_dir / "kubeconfig", container.config_yaml().encode())
        server, ca_file, admin, insecure = credentials_from_kubeconfig(
            kubeconfig, None, client_dir
        )
        try:
            # k3s refuses anonymous requests (--anonymous-auth=false): probe as the admin
            wait_ready(server, ca_file, timeout=spec.timeout, insecure=insecure, creds=admin)
        except TimeoutError as exc:
            raise BootError(
                "kube-apiserver of the k3s container", str(exc), _logs(container)
            ) from None
        minter = CertMinter.from_pem(
            _exec(container, f"{CLIENT_CA}.crt"),
            _exec(container, f"{CLIENT_CA}.key"),
            client_dir / "users",
        )
        source = FileLogSource(workdir / "log" / _owned.LOG_FILE)
        if spec.policy is not None:
            try:
                prove_policy_live(
                    server,
                    ca_file,
                    minter.mint(BARRIER_USER, ()),
                    source,
                    path=_owned.generation_path(_owned.policy_generation(spec)),
                    expected_level="Request",
                    timeout=30,
                    insecure=insecure,
                )
            except TimeoutError as exc:
                raise BackendError(f"k3s: the audit policy is not provably live: {exc}") from None
        version = server_version(server, ca_file, admin, insecure=insecure)
        try:
            wait_service_account(
                server, ca_file, admin, version=version, timeout=spec.timeout, insecure=insecure
            )
        except TimeoutError as exc:
            raise BackendError(f"k3s cluster is not ready for pods: {exc}") from None
        return ClusterHandle(
            backend=self.name,
            name=workdir.name,
            server=server,
            ca_file=ca_file,
            admin=admin,
            kubeconfig=kubeconfig,
            log_source=source,
            apiserver_flags=apiserver_args(spec),
            version=version,
            spec=spec,
            mint_credentials=minter.mint,
            insecure_skip_tls_verify=insecure,
            has_barrier_rule=spec.policy is not None,
            workdir=workdir,
            boot_seconds=time.monotonic() - started,
            details={"image": self.image},
        )

    def reconfigure(self, handle: ClusterHandle, spec: ClusterSpec) -> ClusterHandle | None:
        """k3s reads the flags and policy only at start: a new configuration, a new container."""
        return None

    def stop(self, handle: ClusterHandle) -> None:
        """Stop and remove the container, then the private directory (unless ``keep``)."""
        if self.keep:
            log.info("keeping k3s container of %s", handle.name)
            return
        container = self._containers.pop(handle.name, None)
        if container is not None:
            _stop(container)
        if handle.workdir is not None:
            shutil.rmtree(handle.workdir, ignore_errors=True)


def _exec(container: Any, path: str) -> bytes:
    code, output = container.exec(["cat", path])
    if code != 0:
        raise BackendError(f"cannot read {path} in the k3s container (exit {code})")
    return output if isinstance(output, bytes) else str(output).encode()


def _logs(container: Any) -> str:
    try:
        out, err = container.get_logs()
        text = (out or b"").decode("utf-8", "replace") + (err or b"").decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-25:])
    except Exception:  # the container may not exist at all
        return ""


def _stop(container: Any) -> None:
    try:
        container.stop()
    except Exception:
        log.debug("stopping k3s container", exc_info=True)


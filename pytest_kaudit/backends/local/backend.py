"""The ``local`` backend: etcd and kube-apiserver as child processes, as envtest runs them.

No container runtime; boots in seconds. Each cluster owns a private 0700 directory holding
its PKI, the policy file the apiserver reads, the audit log and the processes' output; the
directory is removed on stop.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_kaudit.backends._owner import claim, reap_abandoned
from pytest_kaudit.backends.base import (
    Backend,
    ClusterHandle,
    ClusterSpec,
    owned_policy_document,
    validate_spec,
)
from pytest_kaudit.backends.kubeconfig import write_kubeconfig
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries, find_binaries
from pytest_kaudit.backends.local.executors import (
    ApiServerExecutor,
    EtcdExecutor,
    free_port,
    tail,
)
from pytest_kaudit.backends.local.pki import ClusterPKI
from pytest_kaudit.backends.local.warm import DEFAULT_IDLE_MINUTES, WarmPlane
from pytest_kaudit.backends.local.warm import NAME as WARM_NAME
from pytest_kaudit.errors import BootError, KauditError
from pytest_kaudit.events.log import FileLogSource

log = logging.getLogger(__name__)

#: Flags the backend owns; a user value for these would break the cluster's wiring.
OWNED_FLAGS = frozenset({
    "etcd-servers", "bind-address", "secure-port", "tls-cert-file", "tls-private-key-file",
    "client-ca-file", "service-account-key-file", "service-account-signing-key-file",
    "audit-policy-file", "cert-dir",
})
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3


def has_default_route(route_table: Path = Path("/proc/net/route")) -> bool:
    """Whether the host has a default IPv4 route (kube-apiserver needs one to pick an address)."""
    try:
        rows = route_table.read_text().splitlines()[1:]
    except OSError:
        return True  # not Linux: let the apiserver decide
    return any(row.split()[1:2] == ["00000000"] for row in rows if row.strip())


def apiserver_flags(
    binaries: ControlPlaneBinaries,
    *,
    etcd_url: str,
    port: int,
    pki: ClusterPKI,
    policy_file: Path,
    log_path: str,
    user_flags: dict[str, str],
) -> dict[str, str]:
    """The complete kube-apiserver flag set: our wiring, then the user's flags on top.

    Version-dependent flags are chosen by asking the binary (``--help``), as envtest does:
    ``--insecure-port`` exists only before 1.24 and must not be passed after.
    """
    flags = {
        "etcd-servers": etcd_url,
        "bind-address": "127.0.0.1",
        "secure-port": str(port),
        "tls-cert-file": str(pki.serving_cert_file),
        "tls-private-key-file": str(pki.serving_key_file),
        "client-ca-file": str(pki.ca_file),
        "authorization-mode": "RBAC",
        "service-account-issuer": "https://kubernetes.default.svc",
        "service-account-key-file": str(pki.sa_public_file),
        "service-account-signing-key-file": str(pki.sa_private_file),
        "service-cluster-ip-range": "10.0.0.0/24",
        # No controller-manager creates the `default` ServiceAccount; pods would be refused.
        "disable-admission-plugins": "ServiceAccount",
        "allow-privileged": "true",
        "audit-policy-file": str(policy_file),
        "audit-log-path": log_path,
    }
    if binaries.supports("insecure-port"):
        flags["insecure-port"] = "0"
    if not has_default_route():
        flags["advertise-address"] = "127.0.0.1"
        flags["endpoint-reconciler-type"] = "none"
    enabled = user_flags.get("enable-admission-plugins", "").split(",")
    if "ServiceAccount" in enabled and "disable-admission-plugins" not in user_flags:
        # the user wants it (the apiserver refuses a plugin both enabled and disabled); the
        # plugin's housekeeping then creates each namespace's `default` ServiceAccount
        del flags["disable-admission-plugins"]
    flags.update(user_flags)
    return flags


def refuse_unparsable_flags(binaries: ControlPlaneBinaries, flags: dict[str, str]) -> None:
    """Let the apiserver binary parse the user's flags, starting nothing, before any boot.

    ``kube-apiserver <flags> --version`` parses every flag first and then only prints its
    version, so an unknown name or a value of the wrong type is refused in the binary's own
    words, for its own version, in a fraction of a second (deprecated flags, hidden from
    ``--help``, still parse).

    Raises:
        KauditError: the binary refused them.
    """
    if not flags:
        return
    argv = [str(binaries.apiserver), *(f"--{k}={v}" for k, v in flags.items()), "--version"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("could not pre-check the flags: %s", exc)
        return  # the boot reports whatever is wrong
    if proc.returncode == 0:
        return
    errors = [line.removeprefix("Error: ") for line in proc.stderr.splitlines()
              if line.startswith("Error: ")] or proc.stderr.strip().splitlines()[-3:]
    raise KauditError("\n".join([
        f"kube-apiserver {binaries.version_text} refuses these flags (checked before booting; "
        "nothing was started):", *(f"  {e}" for e in errors),
        "  (from --kaudit-apiserver-flag / the ini key kaudit_apiserver_flag / "
        "@pytest.mark.kaudit(flags=...))"]))


def refuse_owned_flags(spec: ClusterSpec) -> None:
    """Refuse flags the backend wires itself (checked before the binaries are even located).

    Raises:
        KauditError: naming them.
    """
    taken = sorted(OWNED_FLAGS & set(spec.flags))
    if taken:
        raise KauditError(
            f"the local backend sets --{', --'.join(taken)} itself (it wires the cluster "
            "and its policy file); remove them from --kaudit-apiserver-flag / the marker")


def check_spec(binaries: ControlPlaneBinaries, spec: ClusterSpec) -> None:
    """Refuse, before anything boots, a spec these binaries would not run.

    Raises:
        KauditError / PolicyError: flags the backend owns, or a policy or flags the
            apiserver would refuse.
    """
    refuse_owned_flags(spec)
    validate_spec(spec, binaries.version)
    refuse_unparsable_flags(binaries, dict(spec.flags))


#: Audit modes in which each event is written before the request's response is sent.
_SYNCHRONOUS_AUDIT_MODES = frozenset({"blocking", "blocking-strict"})


def needs_graceful_stop(spec: ClusterSpec) -> bool:
    """Whether a stop must let the apiserver flush: it may buffer events the user keeps."""
    flags = spec.flags
    if flags.get("audit-log-mode", "blocking") not in _SYNCHRONOUS_AUDIT_MODES:
        return True
    return any(name.startswith("audit-webhook-") for name in flags)


def reap_stale_workdirs(base: Path) -> list[Path]:
    """Remove cluster directories whose owning pytest died without cleaning up (SIGKILL).

    Their etcd/kube-apiserver children got SIGTERM from the kernel when the owner died
    (parent-death signal); only the directories remain.
    """
    return reap_abandoned(base.glob("kaudit-local-*"))


def _attempt_log(name: str, attempt: int) -> str:
    """One log file per start attempt, so a retry never reads an earlier attempt's words."""
    return f"{name}.log" if attempt == 1 else f"{name}-attempt{attempt}.log"


class _Early:
    """A boot running in a thread, and its outcome.

    The thread outlives the boot: the children's parent-death signal fires when the *thread*
    that forked them ends, so it idles until the backend has stopped its clusters (``closed``)
    or the process exits.
    """

    def __init__(self, spec: ClusterSpec, closed: threading.Event) -> None:
        self.spec = spec
        self._closed = closed
        self.thread: threading.Thread | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._stop_when_up: Callable[[ClusterHandle], None] | None = None
        self._handle: ClusterHandle | None = None
        self._error: BaseException | None = None

    def run(self, start: Callable[[ClusterSpec], ClusterHandle]) -> None:
        try:
            self._handle = start(self.spec)
        except BaseException as exc:  # handed to the thread that asks for the result
            self._error = exc
        finally:
            with self._lock:
                self._done.set()
                stop = self._stop_when_up
            if stop is not None and self._handle is not None:
                stop(self._handle)
        self._closed.wait()

    def discard(self, stop: Callable[[ClusterHandle], None]) -> None:
        """Nobody will take this cluster: stop it now, or as soon as it is up."""
        with self._lock:
            if not self._done.is_set():
                self._stop_when_up = stop
                return
        if self._handle is not None:
            stop(self._handle)

    def result(self) -> ClusterHandle:
        """Wait for the boot; its handle, or its exception re-raised here."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._handle is not None
        return self._handle


@dataclass
class _Running:
    etcd: EtcdExecutor
    apiserver: ApiServerExecutor | None  # None until the apiserver's first start attempt
    workdir: Path


class LocalBackend(Backend):
    """Runs each cluster as an etcd + kube-apiserver pair of child processes."""

    name = "local"

    def __init__(self, *, apiserver_bin: str | None = None, etcd_bin: str | None = None,
                 base_dir: Path | None = None, reuse: bool = False,
                 warm_dir: Path | None = None,
                 idle_minutes: float = DEFAULT_IDLE_MINUTES) -> None:
        """``reuse``: run on the warm plane (:mod:`.warm`, in ``warm_dir``, default the
        cache) that outlives the run and stops itself after ``idle_minutes`` unused."""
        self.apiserver_bin = apiserver_bin
        self.etcd_bin = etcd_bin
        self.base_dir = base_dir
        self.reuse = reuse
        self.warm_dir = warm_dir
        self.idle_minutes = idle_minutes
        #: What the warm plane did for this run, for the terminal summary.
        self.notes: list[str] = []
        self._warm: WarmPlane | None = None
        self._running: dict[str, _Running] = {}
        self._early: dict[str, _Early] = {}
        self._closed = threading.Event()  # set once stop_all has run: prestart threads end
        self._binaries: ControlPlaneBinaries | None = None

    @property
    def binaries(self) -> ControlPlaneBinaries:
        """The binaries in use (located once, on first need)."""
        if self._binaries is None:
            self._binaries = find_binaries(self.apiserver_bin, self.etcd_bin)
        return self._binaries

    def prestart(self, spec: ClusterSpec) -> None:
        """Begin booting ``spec``'s cluster in a thread; :meth:`start` of that spec takes it.

        Called once the run's tests are known, so the boot overlaps what pytest still does
        before the first test's set-up. Errors surface from :meth:`start`, as if raised there.
        """
        if spec.key in self._early:
            return
        self._closed.clear()
        early = _Early(spec, self._closed)
        early.thread = threading.Thread(target=early.run, args=(self._start_now,),
                                        name="kaudit-prestart", daemon=True)
        self._early[spec.key] = early
        early.thread.start()

    def keep_prestarts(self, keys: set[str]) -> None:
        """Stop boots begun for configurations (spec keys) that no selected test uses."""
        for key in [k for k in self._early if k not in keys]:
            self._early.pop(key).discard(self.stop)

    def start(self, spec: ClusterSpec) -> ClusterHandle:
        """Validate ``spec``, boot etcd and kube-apiserver, and return the handle."""
        early = self._early.pop(spec.key, None)
        if early is not None:
            return early.result()
        return self._start_now(spec)

    def _start_now(self, spec: ClusterSpec) -> ClusterHandle:
        refuse_owned_flags(spec)
        binaries = self.binaries
        check_spec(binaries, spec)
        if self.reuse and spec.policy is not None:
            handle = self._attach_warm(spec, binaries)
            if handle is not None:
                return handle
        reap_stale_workdirs(Path(self.base_dir or tempfile.gettempdir()))
        workdir = Path(tempfile.mkdtemp(prefix="kaudit-local-", dir=self.base_dir))
        workdir.chmod(0o700)
        claim(workdir)
        try:
            return self._start_in(workdir, spec, binaries)
        except BaseException:
            self._cleanup(workdir.name, workdir)
            raise

    def _start_in(self, workdir: Path, spec: ClusterSpec,
                  binaries: ControlPlaneBinaries) -> ClusterHandle:
        started = time.monotonic()
        (workdir / "etcd").mkdir(mode=0o700)
        etcd_extra = ["--unsafe-no-fsync=true"] if binaries.etcd_supports("unsafe-no-fsync") else []

        def new_etcd(attempt: int) -> EtcdExecutor:
            executor = EtcdExecutor(binaries.etcd, workdir / "etcd" / f"data-{attempt}",
                                    workdir / _attempt_log("etcd", attempt),
                                    timeout=spec.timeout, extra=etcd_extra)
            self._running[workdir.name] = _Running(executor, None, workdir)
            return executor

        etcd = new_etcd(1)
        etcd.spawn()  # etcd needs nothing else: it boots while the PKI is made
        pki = ClusterPKI.create(workdir / "pki")
        admin = pki.issue_client("kaudit-admin", ("system:masters",))
        policy_file = workdir / "policy" / "audit-policy.json"
        policy_file.parent.mkdir(mode=0o700)
        has_barrier = spec.policy is not None
        if spec.policy is not None:
            policy_file.write_text(json.dumps(owned_policy_document(spec.policy), indent=1))
        user_flags = dict(spec.flags)
        log_path = user_flags.pop("audit-log-path", str(workdir / "audit" / "audit.log"))
        if log_path != "-":
            Path(log_path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if attempt > 1:
                etcd = new_etcd(attempt)
            try:
                etcd.start_or_explain("etcd")
                break
            except BootError:
                etcd.close_log()
                if attempt < _PORT_ATTEMPTS and etcd.port_in_use():
                    log.info("an etcd port was taken; retrying with others")
                    continue
                raise
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = free_port()
            flags = apiserver_flags(
                binaries, etcd_url=etcd.url, port=port, pki=pki, policy_file=policy_file,
                log_path=log_path, user_flags=user_flags,
            )
            if spec.policy is None:
                flags.pop("audit-policy-file")
            apiserver = ApiServerExecutor(
                [str(binaries.apiserver), *(f"--{k}={v}" for k, v in flags.items())],
                workdir / _attempt_log("kube-apiserver", attempt),
                url=f"https://127.0.0.1:{port}", ca_file=pki.ca_file,
                cert_file=admin.cert_file, key_file=admin.key_file,  # type: ignore[arg-type]
                timeout=max(1.0, spec.timeout - (time.monotonic() - started)),
            )
            self._running[workdir.name].apiserver = apiserver
            try:
                apiserver.start_or_explain("kube-apiserver")
                break
            except BootError:
                apiserver.close_log()
                if attempt < _PORT_ATTEMPTS and apiserver.port_in_use():
                    log.info("port %d was taken; retrying with another", port)
                    continue
                raise
        log.info("local control plane %s ready in %.1fs", workdir.name,
                 time.monotonic() - started)
        kubeconfig = write_kubeconfig(workdir / "kubeconfig", server=apiserver.url,
                                      ca_file=pki.ca_file, creds=admin)
        source = (FileLogSource(apiserver.stdout_file) if log_path == "-"
                  else FileLogSource(log_path))
        return ClusterHandle(
            backend=self.name,
            name=workdir.name,
            server=apiserver.url,
            ca_file=pki.ca_file,
            admin=admin,
            kubeconfig=kubeconfig,
            log_source=source,
            log_is_mixed=log_path == "-",
            apiserver_flags=flags,
            version=binaries.version,
            spec=spec,
            mint_credentials=pki.issue_client,
            has_barrier_rule=has_barrier,
            service_account_controller=False,  # no kube-controller-manager runs here
            workdir=workdir,
            details={
                "apiserver": f"{binaries.apiserver} ({binaries.version_text})",
                "etcd": str(binaries.etcd),
                "apiserver log": str(apiserver.log_file),
                "apiserver pid": str(apiserver.process.pid if apiserver.process else ""),
                "etcd pid": str(etcd.process.pid if etcd.process else ""),
            },
            boot_seconds=time.monotonic() - started,
        )

    def _attach_warm(self, spec: ClusterSpec,
                     binaries: ControlPlaneBinaries) -> ClusterHandle | None:
        """The warm plane's handle for ``spec``, or None when this run cannot have it."""
        if self._warm is not None:  # the plane serves this run's first configuration only
            self.notes.append(f"the warm plane runs this session's first configuration; "
                              f"configuration {spec.key} boots a cluster of its own")
            return None
        plane = WarmPlane(binaries, directory=self.warm_dir, idle_minutes=self.idle_minutes)
        started = time.monotonic()
        attached = plane.attach(spec, timeout=spec.timeout)
        if attached is None:
            plane.release()
            self.notes.append("the warm plane is in use by another run with another "
                              "configuration; this run boots a cluster of its own")
            return None
        handle, note = attached
        self._warm = plane
        seconds = time.monotonic() - started
        handle.boot_seconds = seconds
        handle.details["warm plane note"] = note
        self.notes.append(f"{note} in {plane.directory} ({seconds:.2f}s)")
        return handle

    def reconfigure(self, handle: ClusterHandle, spec: ClusterSpec) -> ClusterHandle | None:
        """Local clusters boot in seconds: a new configuration gets a new cluster."""
        return None

    def is_alive(self, handle: ClusterHandle) -> bool:
        """Whether both processes of the cluster still run."""
        if handle.name == WARM_NAME:
            return self._warm is not None and self._warm.is_alive()
        running = self._running.get(handle.name)
        return bool(running and running.apiserver and running.etcd.is_alive()
                    and running.apiserver.is_alive())

    def apiserver_log_tail(self, handle: ClusterHandle, lines: int = 25) -> str:
        """The last lines the apiserver wrote to stderr (for crash reports)."""
        if handle.name == WARM_NAME:
            return tail(Path(handle.details["apiserver log"]), lines)
        running = self._running.get(handle.name)
        return tail(running.apiserver.log_file, lines) if running and running.apiserver else ""

    def stop(self, handle: ClusterHandle) -> None:
        """Stop the cluster and remove its directory.

        The fixtures have read every event they wait for when a cluster is stopped, and in
        the default ``blocking`` audit mode each event is written before its response is
        sent, so the pair is killed without a drain. A log the user asked to keep that may
        hold buffered events (``--audit-log-mode=batch``, a webhook) gets a graceful stop.
        """
        if handle.name == WARM_NAME:  # it keeps running for the next run
            self._release_warm()
            return
        self._cleanup(handle.name, handle.workdir, graceful=needs_graceful_stop(handle.spec))

    def _release_warm(self) -> None:
        if self._warm is not None:
            self._warm.release()
            self._warm = None

    def stop_all(self) -> None:
        """Stop every cluster this backend started (session end, interrupted runs)."""
        for early in list(self._early.values()):  # a prestart nobody took: let it finish
            try:
                early.result()
            except BaseException:  # noqa: BLE001 - its own cleanup ran; only its end matters
                log.debug("prestarted boot failed", exc_info=True)
        self._early.clear()
        self._release_warm()
        for name, running in list(self._running.items()):
            self._cleanup(name, running.workdir)
        self._closed.set()

    def _cleanup(self, name: str, workdir: Path | None, *, graceful: bool = False) -> None:
        running = self._running.pop(name, None)
        if running is not None:
            for executor in (running.apiserver, running.etcd):  # the reverse order hangs
                if executor is None:
                    continue
                try:
                    if graceful:
                        executor._timeout = _STOP_TIMEOUT  # one deadline, then SIGKILL
                        executor.stop()
                    else:
                        executor.kill_now()
                except Exception:  # a crashed process exits non-zero; still clean the rest
                    log.debug("stopping %s", executor, exc_info=True)
                    executor.kill()
                finally:
                    executor.close_log()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

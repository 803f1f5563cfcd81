"""A warm local control plane: one etcd + kube-apiserver pair that outlives the pytest run.

It is owned by a state directory in the cache (``<cache>/warm``, 0700, keys 0600):

* ``state.json``: pids, ports, the binaries' identity, the policy (source, hash) and flags;
* ``lock``: ``flock``-ed shared by every run using the plane, exclusive while one changes it;
* ``pki/``, ``kubeconfig``, ``policy.json``, ``audit/audit.log``, ``etcd/``, the logs;
* ``last-used``: its mtime is the idle clock of the watchdog, a small detached process that
  stops the plane once nobody holds the lock and it was unused for the idle time.

Nothing in the state is trusted: a pid must still run *our* binary with *our* directory on
its command line (``/proc/<pid>/cmdline``; pids are reused), the binaries must be the ones
recorded, and the apiserver must answer ``/readyz`` over TLS verified by our CA (another
program may hold the port). Whatever fails is replaced, and the run says why.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from pytest_kaudit.backends import _owned
from pytest_kaudit.backends._http import wait_for
from pytest_kaudit.backends._probe import BOOTSTRAP_OBJECT_CHECKS, prove_policy_live, wait_ready
from pytest_kaudit.backends._process import pid_alive
from pytest_kaudit.backends.base import BARRIER_USER, ClusterHandle, ClusterSpec, Credentials
from pytest_kaudit.backends.kubeconfig import write_kubeconfig
from pytest_kaudit.backends.local.binaries import (
    ControlPlaneBinaries,
    binary_identity,
    provision_cache,
)
from pytest_kaudit.backends.local.executors import etcd_healthy, free_port, tail
from pytest_kaudit.backends.local.pki import ClusterPKI
from pytest_kaudit.errors import BackendError, BootError
from pytest_kaudit.events.log import FileLogSource

log = logging.getLogger(__name__)

NAME = "kaudit-warm"
DEFAULT_IDLE_MINUTES = 15.0
_STATE = "state.json"
_LOCK = "lock"
_LAST_USED = "last-used"
_WATCHDOG_PID = "watchdog.pid"
#: How long a run waits for other runs using the plane with another configuration to finish
#: before it boots a cluster of its own instead.
_BUSY_GRACE = 3.0
_POLL = 0.05
_PROBE_TIMEOUT = 30.0
_CA_MARGIN = dt.timedelta(days=1)


def warm_dir() -> Path:
    """Where the warm plane lives: ``<cache>/warm`` (``$KAUDIT_CACHE_DIR`` moves it)."""
    return provision_cache() / "warm"


@dataclass
class PlaneState:
    """What ``state.json`` records about the running pair."""

    binaries: dict[str, str]
    etcd_pid: int
    etcd_client_port: int
    etcd_peer_port: int
    etcd_started: float
    apiserver_pid: int = 0
    port: int = 0
    apiserver_started: float = 0.0
    spec_key: str = ""
    policy_source: str = ""
    policy_sha256: str = ""
    flags: dict[str, str] = field(default_factory=dict)
    apiserver_flags: dict[str, str] = field(default_factory=dict)
    version: tuple[int, int] = (0, 0)
    version_text: str = ""
    #: Names this plane (one etcd's life): a watchdog serves the plane it was started for,
    #: even when the directory is deleted and made anew under the same inode number.
    plane_id: str = ""

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client_port}"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def etcd_marker(directory: Path) -> str:
    """The argument that tells a plane's etcd from any other: its data directory."""
    return f"--data-dir={directory / 'etcd' / 'data'}"


def apiserver_marker(directory: Path) -> str:
    """The argument that tells a plane's kube-apiserver from any other: its policy file."""
    return f"--audit-policy-file={directory / 'policy.json'}"


def cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` ([] when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def is_ours(pid: int, binary: Path, marker: str) -> bool:
    """Whether ``pid`` runs ``binary`` with ``marker`` among its arguments (pids are reused)."""
    argv = cmdline(pid)
    return bool(argv) and argv[0] == str(binary) and marker in argv[1:] and pid_alive(pid)


def port_free(port: int) -> bool:
    """Whether 127.0.0.1:``port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _pids_with_argument(markers: tuple[str, ...]) -> list[int]:
    """Processes (other than this one) with one of ``markers`` among their arguments."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            if any(marker in cmdline(int(entry.name))[1:] for marker in markers):
                found.append(int(entry.name))
    return found


def _kill_marked(markers: tuple[str, ...]) -> None:
    """SIGKILL every process carrying one of ``markers``: a plane's processes that no state
    records (a run interrupted between starting its apiserver and recording it leaves one)."""
    for pid in _pids_with_argument(markers):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _kill(pid: int, binary: Path, marker: str, children: dict[int, subprocess.Popen[bytes]],
          timeout: float = 10.0) -> None:
    """SIGKILL ``pid`` if it is still ours, and wait until it is gone."""
    if not is_ours(pid, binary, marker):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    child = children.pop(pid, None)
    if child is not None:
        child.wait(timeout)
        return
    with contextlib.suppress(TimeoutError):  # not our child: init reaps it
        wait_for(lambda: None if pid_alive(pid) else True, timeout=timeout, on_timeout=str,
                 poll=_POLL)


class WarmPlane:
    """The warm plane in ``directory``: attach to it, change it, stop it."""

    def __init__(self, binaries: ControlPlaneBinaries | None = None, *,
                 directory: Path | None = None,
                 idle_minutes: float = DEFAULT_IDLE_MINUTES) -> None:
        """``binaries`` are needed to start or attach; ``status`` and ``down`` use those the
        state recorded."""
        self._binaries = binaries
        self.directory = directory or warm_dir()
        self.idle_minutes = idle_minutes
        self._lock_file: IO[bytes] | None = None
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def binaries(self) -> ControlPlaneBinaries:
        if self._binaries is None:
            raise BackendError("the warm plane needs the control-plane binaries to start")
        return self._binaries

    # -- paths --------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.directory / _STATE

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (0600) ``kaudit up`` prints."""
        return self.directory / "kubeconfig"

    @property
    def policy_file(self) -> Path:
        return self.directory / "policy.json"

    @property
    def audit_log(self) -> Path:
        return self.directory / "audit" / "audit.log"

    @property
    def _etcd_data(self) -> Path:
        return self.directory / "etcd" / "data"

    def _etcd_marker(self) -> str:
        return etcd_marker(self.directory)

    def _apiserver_marker(self) -> str:
        return apiserver_marker(self.directory)

    # -- locking ------------------------------------------------------------------------------

    def _open_lock(self) -> IO[bytes]:
        if self._lock_file is None:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.directory.chmod(0o700)
            fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            self._lock_file = os.fdopen(fd, "r+b")
        return self._lock_file

    def _try_lock(self, kind: int) -> bool:
        try:
            fcntl.flock(self._open_lock(), kind | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        """Stop using the plane: it keeps running, its idle clock starts now."""
        if self._lock_file is not None:
            self._touch()
            self._lock_file.close()  # drops the flock
            self._lock_file = None

    def _touch(self) -> None:
        with contextlib.suppress(OSError):
            (self.directory / _LAST_USED).touch()

    # -- state --------------------------------------------------------------------------------

    def read_state(self) -> PlaneState | None:
        """The recorded state, or None when there is none or it cannot be read."""
        try:
            data = json.loads(self.state_file.read_text())
            data["version"] = tuple(data.get("version", (0, 0)))
            return PlaneState(**data)
        except (OSError, ValueError, TypeError):
            return None

    def _write_state(self, state: PlaneState) -> None:
        _write_atomic(self.state_file, json.dumps(asdict(state), indent=1))

    def _binaries_identity(self) -> dict[str, str]:
        return {"kube-apiserver": binary_identity(self.binaries.apiserver),
                "etcd": binary_identity(self.binaries.etcd)}

    def _etcd_problem(self, state: PlaneState) -> str | None:
        """Why the recorded etcd cannot be used (None: it can)."""
        if state.binaries != self._binaries_identity():
            return "the etcd or kube-apiserver binary changed"
        if not is_ours(state.etcd_pid, self.binaries.etcd, self._etcd_marker()):
            return f"its etcd (pid {state.etcd_pid}) is gone"
        if not etcd_healthy(state.etcd_url):
            return f"its etcd (pid {state.etcd_pid}) does not answer on {state.etcd_url}"
        return None

    def _apiserver_problem(self, state: PlaneState, pki: ClusterPKI) -> str | None:
        if not is_ours(state.apiserver_pid, self.binaries.apiserver, self._apiserver_marker()):
            return f"its kube-apiserver (pid {state.apiserver_pid}) is gone"
        try:  # recorded only once ready: its bootstrap objects exist or are on their way
            wait_ready(state.server, pki.ca_file, timeout=0.5, creds=self._admin(pki),
                       exclude=BOOTSTRAP_OBJECT_CHECKS)
        except TimeoutError:
            return f"port {state.port} does not answer as its kube-apiserver"
        return None

    # -- attach -------------------------------------------------------------------------------

    def attach(self, spec: ClusterSpec, *, timeout: float) -> tuple[ClusterHandle, str] | None:
        """Use the plane for ``spec``: attach, switch its apiserver, or (re)start it.

        Returns the handle and a note saying what was done, holding the shared lock until
        :meth:`release`; None when other runs use the plane with another configuration.

        Raises:
            BootError / BackendError: the plane could not be started.
        """
        deadline = time.monotonic() + timeout
        busy_since: float | None = None
        while True:
            if self._try_lock(fcntl.LOCK_SH):
                state = self.read_state()
                if state is not None and state.spec_key == spec.key:
                    pki = self._pki_or_none()
                    if pki is not None and self._etcd_problem(state) is None \
                            and self._apiserver_problem(state, pki) is None:
                        self._touch()
                        return self._handle(state, pki, spec), "attached to the warm plane"
                fcntl.flock(self._open_lock(), fcntl.LOCK_UN)
                if self._try_lock(fcntl.LOCK_EX):
                    try:
                        handle, note = self._converge(spec, deadline)
                    except BaseException:
                        fcntl.flock(self._open_lock(), fcntl.LOCK_UN)
                        raise
                    fcntl.flock(self._open_lock(), fcntl.LOCK_SH)  # others may attach now
                    return handle, note
                busy_since = busy_since or time.monotonic()
                if time.monotonic() - busy_since > _BUSY_GRACE:
                    return None  # others run tests on it with another configuration
            if time.monotonic() > deadline:
                raise BackendError(f"the warm control plane in {self.directory} stayed locked "
                                   f"for {timeout:.0f}s (another run is starting it)")
            time.sleep(_POLL)

    def _pki_or_none(self) -> ClusterPKI | None:
        """The plane's PKI; None when unreadable or its CA expires within :data:`_CA_MARGIN`
        (a plane in use for days outlives its certificates' validity)."""
        try:
            pki = ClusterPKI.load(self.directory / "pki")
        except (OSError, ValueError):
            return None
        expires = getattr(pki.ca_cert, "not_valid_after_utc", None)  # cryptography >= 42
        if expires is None:
            expires = pki.ca_cert.not_valid_after.replace(tzinfo=dt.timezone.utc)
        return pki if expires - dt.datetime.now(dt.timezone.utc) > _CA_MARGIN else None

    def _admin(self, pki: ClusterPKI) -> Credentials:
        return pki.issue_client("kaudit-admin", ("system:masters",))

    def _converge(self, spec: ClusterSpec, deadline: float) -> tuple[ClusterHandle, str]:
        """Under the exclusive lock: make the plane run ``spec``, as cheaply as it can."""
        started = time.monotonic()
        state = self.read_state()
        pki = self._pki_or_none()
        why_etcd = ("no warm plane ran here" if state is None and not self.state_file.exists()
                    else "its state could not be read" if state is None
                    else "its PKI is unreadable or expires soon" if pki is None
                    else self._etcd_problem(state))
        spawned: list[int] = []
        try:
            if why_etcd is not None or state is None or pki is None:
                self._replace_all(state)
                pki = ClusterPKI.create(self.directory / "pki")
                state = self._start_etcd(deadline, spawned)
                note = f"started a warm plane ({why_etcd})"
            else:
                why_api = self._apiserver_problem(state, pki)
                if why_api is None and state.spec_key == spec.key:
                    self._touch()
                    return self._handle(state, pki, spec), "attached to the warm plane"
                note = (f"restarted its kube-apiserver, etcd kept ({why_api})" if why_api
                        else "switched its kube-apiserver to this run's policy and flags "
                             "(etcd kept)")
                _kill(state.apiserver_pid, self.binaries.apiserver, self._apiserver_marker(),
                      self._children)
                _kill_marked((self._apiserver_marker(),))  # and any no state recorded
            if not is_ours(_watchdog_pid(self.directory), Path(sys.executable),
                           state.plane_id):
                self._spawn_watchdog(state.plane_id)
            # With etcd kept and the same flags, an apiserver of these binaries already made
            # the bootstrap objects; the audit policy plays no part in them.
            bootstrapped = why_etcd is None and bool(state.spec_key) \
                and state.flags == dict(spec.flags)
            state = self._start_apiserver(state, pki, spec, deadline, spawned,
                                          bootstrapped=bootstrapped)
            self._prove_policy(state, pki, spec)
        except BaseException:
            for pid in spawned:  # a half-made plane is not left running (Ctrl-C, failures)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                child = self._children.pop(pid, None)
                if child is not None:
                    child.wait()
            with contextlib.suppress(OSError):
                self.state_file.unlink()
            raise
        self._write_state(state)
        self._touch()
        log.info("warm plane: %s in %.2fs", note, time.monotonic() - started)
        return self._handle(state, pki, spec), note

    def _replace_all(self, state: PlaneState | None) -> None:
        """Stop what is left of an old plane (only processes proven ours) and clear its files."""
        if state is not None:  # the binaries it recorded: they may differ from this run's
            _kill(state.apiserver_pid, _recorded(state, "kube-apiserver"),
                  self._apiserver_marker(), self._children)
            _kill(state.etcd_pid, _recorded(state, "etcd"), self._etcd_marker(), self._children)
        # A plane whose state was deleted under it still runs with this directory's markers;
        # under the exclusive lock no live plane can be using them, so such processes are
        # orphans (the watchdog may not have read their pids before the state went).
        _kill_marked((self._apiserver_marker(), self._etcd_marker()))
        for entry in self.directory.iterdir():
            if entry.name in (_LOCK, _WATCHDOG_PID):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        """A child in its own session, not tied to this process: it outlives the run."""
        fd = os.open(self.directory / log_name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as out:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     start_new_session=True, close_fds=True)
        self._children[child.pid] = child
        return child

    def _start_etcd(self, deadline: float, spawned: list[int]) -> PlaneState:
        self._etcd_data.parent.mkdir(mode=0o700, exist_ok=True)
        client, peer = free_port(), free_port()
        url = f"http://127.0.0.1:{client}"
        extra = (["--unsafe-no-fsync=true"] if self.binaries.etcd_supports("unsafe-no-fsync")
                 else [])
        child = self._spawn([
            str(self.binaries.etcd), self._etcd_marker(),
            f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}", *extra,
        ], "etcd.log")
        spawned.append(child.pid)

        def healthy() -> bool | None:
            if etcd_healthy(url):
                return True
            if child.poll() is not None:
                raise BootError("etcd", f"exited with code {child.returncode}",
                                tail(self.directory / "etcd.log", 40))
            return None

        try:
            wait_for(healthy, timeout=max(0.0, deadline - time.monotonic()), on_timeout=str,
                     poll=_POLL)
        except TimeoutError:
            log_tail = tail(self.directory / "etcd.log")
            raise BootError("etcd", "not ready in time", log_tail) from None
        return PlaneState(binaries=self._binaries_identity(), etcd_pid=child.pid,
                          etcd_client_port=client, etcd_peer_port=peer, etcd_started=time.time(),
                          plane_id=secrets.token_hex(8))

    def _start_apiserver(self, state: PlaneState, pki: ClusterPKI, spec: ClusterSpec,
                         deadline: float, spawned: list[int], *,
                         bootstrapped: bool = False) -> PlaneState:
        from pytest_kaudit.backends.local.backend import apiserver_flags

        assert spec.policy is not None
        document = _owned.policy_document(spec.policy, _owned.policy_generation(spec))
        _write_atomic(self.policy_file, json.dumps(document, indent=1))
        user_flags = dict(spec.flags)
        log_path = user_flags.pop("audit-log-path", str(self.audit_log))
        if log_path != "-":
            Path(log_path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        port = state.port if state.port and port_free(state.port) else free_port()
        flags = apiserver_flags(self.binaries, etcd_url=state.etcd_url, port=port, pki=pki,
                                policy_file=self.policy_file, log_path=log_path,
                                user_flags=user_flags)
        log_file = self.directory / "kube-apiserver.log"
        with contextlib.suppress(OSError):
            log_file.unlink()  # the tail shown on failure is this start's only
        child = self._spawn([str(self.binaries.apiserver),
                             *(f"--{k}={v}" for k, v in flags.items())], log_file.name)
        spawned.append(child.pid)
        admin = self._admin(pki)
        server = f"https://127.0.0.1:{port}"

        def exited() -> str | None:
            return None if child.poll() is None else f"exited with code {child.returncode}"

        try:
            wait_ready(server, pki.ca_file, timeout=max(1.0, deadline - time.monotonic()),
                       still_running=exited, creds=admin,
                       exclude=BOOTSTRAP_OBJECT_CHECKS if bootstrapped else ())
        except TimeoutError as exc:
            raise BootError("kube-apiserver", str(exc), tail(log_file, 40)) from None
        write_kubeconfig(self.kubeconfig, server=server, ca_file=pki.ca_file, creds=admin)
        state.apiserver_pid, state.port = child.pid, port
        state.apiserver_started = time.time()
        state.spec_key = spec.key
        state.policy_source = spec.policy.source or "<inline policy>"
        state.policy_sha256 = hashlib.sha256(spec.policy.text.encode()).hexdigest()
        state.flags = dict(spec.flags)
        state.apiserver_flags = flags
        state.version = self.binaries.version
        state.version_text = self.binaries.version_text
        return state

    def _prove_policy(self, state: PlaneState, pki: ClusterPKI, spec: ClusterSpec) -> None:
        """Before any test: the probe the kind backend uses, logged at this policy's level."""
        log_path = state.apiserver_flags.get("audit-log-path", str(self.audit_log))
        if log_path == "-":
            return  # the log is the apiserver's stdout, mixed with other output
        try:
            prove_policy_live(state.server, pki.ca_file, pki.issue_client(BARRIER_USER, ()),
                              FileLogSource(log_path),
                              path=_owned.generation_path(_owned.policy_generation(spec)),
                              expected_level="Request", timeout=_PROBE_TIMEOUT)
        except TimeoutError as exc:
            raise BackendError(f"warm control plane: the new audit policy is not provably "
                               f"live: {exc}") from None

    def _handle(self, state: PlaneState, pki: ClusterPKI, spec: ClusterSpec) -> ClusterHandle:
        log_path = state.apiserver_flags.get("audit-log-path", str(self.audit_log))
        mixed = log_path == "-"
        source = FileLogSource(self.directory / "kube-apiserver.log" if mixed else log_path)
        return ClusterHandle(
            backend="local", name=NAME, server=state.server, ca_file=pki.ca_file,
            admin=self._admin(pki), kubeconfig=self.kubeconfig, log_source=source,
            log_is_mixed=mixed, apiserver_flags=dict(state.apiserver_flags),
            version=state.version, spec=spec, mint_credentials=pki.issue_client,
            has_barrier_rule=True, service_account_controller=False, workdir=None,
            details={"warm plane": str(self.directory),
                     "apiserver": f"{self.binaries.apiserver} ({state.version_text})",
                     "apiserver log": str(self.directory / "kube-apiserver.log"),
                     "apiserver pid": str(state.apiserver_pid),
                     "etcd pid": str(state.etcd_pid)},
        )

    # -- watchdog, status, down -----------------------------------------------------------------

    def _spawn_watchdog(self, plane_id: str) -> None:
        """A watchdog for this plane; one left from an earlier plane here stops by itself."""
        argv = [sys.executable, "-m", "pytest_kaudit.backends.local.warm", "watch",
                str(self.directory), str(self.idle_minutes * 60), plane_id]
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True,
                                 close_fds=True)
        self._children[child.pid] = child
        _write_atomic(self.directory / _WATCHDOG_PID, str(child.pid))

    def is_alive(self) -> bool:
        """Whether both processes recorded in the state still run as ours."""
        state = self.read_state()
        return state is not None and is_ours(
            state.etcd_pid, _recorded(state, "etcd"), self._etcd_marker()) and is_ours(
            state.apiserver_pid, _recorded(state, "kube-apiserver"), self._apiserver_marker())

    def down(self, *, timeout: float = 30.0) -> bool:
        """Stop the plane (waiting for runs using it) and remove its directory.

        Returns whether there was a plane to stop.
        """
        if not self.directory.exists():
            return False
        try:
            wait_for(lambda: self._try_lock(fcntl.LOCK_EX) or None, timeout=timeout,
                     on_timeout=str, poll=_POLL)
        except TimeoutError:
            raise BackendError(f"the warm control plane in {self.directory} is in use by "
                               "a running test session; try again when it has finished") from None
        state = self.read_state()
        if state is not None:
            _kill(state.apiserver_pid, _recorded(state, "kube-apiserver"),
                  self._apiserver_marker(), self._children)
            _kill(state.etcd_pid, _recorded(state, "etcd"), self._etcd_marker(), self._children)
        _kill_marked((self._apiserver_marker(), self._etcd_marker()))  # unrecorded ones too
        watchdog = _watchdog_pid(self.directory)
        _kill(watchdog, Path(sys.executable), str(self.directory), self._children)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.release()
        return True

    def status_lines(self) -> list[str]:
        """What runs, since when, with which policy, and the log's size."""
        state = self.read_state()
        if state is None:
            return [f"no warm control plane in {self.directory}"]
        alive = self.is_alive()
        log_path = Path(state.apiserver_flags.get("audit-log-path", str(self.audit_log)))
        try:
            size = f"{log_path.stat().st_size} bytes"
        except OSError:
            size = "missing"
        return [
            f"warm control plane in {self.directory}: "
            + ("running" if alive else "NOT running (the next use replaces it)"),
            f"  etcd pid {state.etcd_pid} since {_when(state.etcd_started)}, {state.etcd_url}",
            f"  kube-apiserver {state.version_text} pid {state.apiserver_pid} since "
            f"{_when(state.apiserver_started)}, {state.server}",
            f"  policy {state.policy_source} (sha256 {state.policy_sha256[:16]})",
            "  flags " + (" ".join(f"--{k}={v}" for k, v in sorted(state.flags.items()))
                          or "(none)"),
            f"  audit log {log_path} ({size})",
            f"  export KUBECONFIG={self.kubeconfig}",
        ]


def _recorded(state: PlaneState, name: str) -> Path:
    """The path of binary ``name`` as the state recorded it (its identity's first part)."""
    return Path(state.binaries.get(name, "").rsplit(":", 2)[0])


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _watchdog_pid(directory: Path) -> int:
    try:
        return int((directory / _WATCHDOG_PID).read_text())
    except (OSError, ValueError):
        return 0


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with contextlib.suppress(Exception):
        yield


def _identity(directory: Path) -> tuple[int, int] | None:
    """The directory's (device, inode), or None when it is gone."""
    try:
        info = directory.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _kill_known(known: list[tuple[int, str]]) -> None:
    """SIGKILL each (pid, marker) that still runs with its marker (pids are reused)."""
    for pid, marker in known:
        if marker in cmdline(pid)[1:]:
            with _quiet():
                os.kill(pid, signal.SIGKILL)


def watch(directory: Path, idle_seconds: float, plane_id: str, *, period: float = 2.0) -> None:
    """The watchdog: stop the plane once it was unused for ``idle_seconds`` and nobody holds
    its lock; kill its processes if its state directory disappears or holds another plane."""
    known: list[tuple[int, str]] = []
    watched = _identity(directory)
    while True:
        if _identity(directory) != watched:
            # Deleted under us (and perhaps made anew by a later run, which starts its own
            # watchdog): the processes this one knew are orphans now.
            _kill_known(known)
            if not known and not directory.exists():  # gone before their pids were read
                _kill_marked((etcd_marker(directory), apiserver_marker(directory)))
            return
        try:
            data = json.loads((directory / _STATE).read_text())
            if data.get("plane_id") != plane_id:
                # Another plane lives here now (the directory was deleted and made anew, or
                # the plane replaced): the processes this watchdog knew are orphans.
                _kill_known(known)
                return
            known = [(int(data["etcd_pid"]), etcd_marker(directory)),
                     (int(data["apiserver_pid"]), apiserver_marker(directory))]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # being rewritten
        try:
            idle = time.time() - (directory / _LAST_USED).stat().st_mtime
        except OSError:
            idle = 0.0
        if idle > idle_seconds:
            with (directory / _LOCK).open("rb") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass  # a run uses it
                else:
                    _kill_known(known)
                    _kill_marked((etcd_marker(directory), apiserver_marker(directory)))
                    shutil.rmtree(directory, ignore_errors=True)
                    return
        time.sleep(period)


if __name__ == "__main__":  # the watchdog process: python -m ... watch DIR IDLE_SECONDS
    if len(sys.argv) == 5 and sys.argv[1] == "watch":
        watch(Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4])

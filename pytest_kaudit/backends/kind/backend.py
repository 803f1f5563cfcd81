"""The lifecycle of kind clusters whose kube-apiserver runs the test's audit policy.

The cluster config comes from :mod:`.config` (portable kubeadm patch, mounted policy and
log directories), checked by :mod:`.preflight`. Around ``kind create cluster`` this module
adds what kind does not:
early errors (no engine, no kind, old kind, a policy the apiserver would reject), its own
kubeconfig (``~/.kube/config`` is never touched), proof that the policy is live (a probe
event in the log), reuse and keep, in-place policy changes by restarting the apiserver
static pod, and apiserver logs in every boot error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_kaudit.backends._clientcert import CertMinter
from pytest_kaudit.backends._guard import Guard
from pytest_kaudit.backends._http import wait_for
from pytest_kaudit.backends._kubeconfig_read import credentials_from_kubeconfig
from pytest_kaudit.backends._logsources import container_file_source
from pytest_kaudit.backends._owned import create_readable_log
from pytest_kaudit.backends._owner import claim, owner_of
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
from pytest_kaudit.backends.kind import config as kc
from pytest_kaudit.backends.kind.diagnostics import (
    apiserver_log_tail,
    diagnose_log,
    flags_from_manifest,
    tail_lines,
)
from pytest_kaudit.backends.kind.engine import (
    check_engine,
    exec_in,
    find_container_cli,
    read_file_in,
)
from pytest_kaudit.backends.kind.preflight import check_running_flags, checked_config
from pytest_kaudit.backends.kind.schema import KindConfigError, load_kind_config
from pytest_kaudit.backends.kind.tools import find_kind, kind_version, run_tool
from pytest_kaudit.errors import BackendError, BootError
from pytest_kaudit.events.log import FileLogSource, LogSource

log = logging.getLogger(__name__)

_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
_CA_CERT = "/etc/kubernetes/pki/ca.crt"
_CA_KEY = "/etc/kubernetes/pki/ca.key"
_PROBE_TIMEOUT = 30.0
_NEWEST = (1, 37)


def default_state_dir() -> Path:
    """Where kind clusters keep their host directories (persistent, so ``reuse`` works)."""
    if os.environ.get("KAUDIT_KIND_STATE_DIR"):
        return Path(os.environ["KAUDIT_KIND_STATE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-kaudit" / "kind"


def load_base_config(
    value: Mapping[str, Any] | str | os.PathLike[str] | None,
) -> dict[str, Any] | None:
    """A user's kind config given as a mapping or a YAML file path."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    path = Path(value)
    try:
        return load_kind_config(path.read_text(), str(path))
    except OSError as exc:
        raise BackendError(f"cannot read the base kind config {path}: {exc.strerror}") from None
    except KindConfigError as exc:
        raise BackendError(f"the base kind config is not one kind accepts:\n{exc}") from None


class KindBackend(Backend):
    """Clusters made by the ``kind`` CLI (Docker, or Podman/nerdctl via KIND_EXPERIMENTAL_PROVIDER).

    Args:
        kind_bin: path of ``kind``; default ``$KIND_PATH``, then ``PATH``.
        docker_bin: the engine CLI used for ``exec`` into nodes; default from the provider.
        node_image: e.g. ``kindest/node:v1.31.12@sha256:…``; default: kind's own default.
        base_config: the user's kind config (mapping or file) our settings are merged into.
        reuse: reuse a running cluster of the same name created for the same configuration.
        keep: leave the cluster running on stop (pair with ``reuse`` for fast local loops).
        name: cluster name; default ``kaudit-<config key>`` (plus a random suffix unless reusing).
        state_dir: where host directories live; default ``~/.cache/pytest-kaudit/kind``.
        clean_stale: also delete ``kaudit-*`` clusters that have no owner record here (else
            only report them). Clusters this plugin made on this host whose run is gone and
            that were not kept are always deleted.
        config_transform: last edit of the generated config dict, for what a base config
            cannot express; the result is still checked unless ``preflight=False``.
        preflight: statically check that the policy and log reach the apiserver before booting.
        create_timeout: seconds allowed for ``kind create cluster``.
        config_dump: also write the generated kind config to this path (to inspect or reuse).
    """

    name = "kind"

    def __init__(
        self,
        kind_bin: str | None = None,
        docker_bin: str | None = None,
        node_image: str | None = None,
        base_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        reuse: bool = False,  # noqa: FBT001, FBT002 - the agreed constructor signature
        keep: bool = False,  # noqa: FBT001, FBT002
        name: str | None = None,
        *,
        state_dir: Path | None = None,
        clean_stale: bool = False,
        config_transform: kc.ConfigTransform | None = None,
        preflight: bool = True,
        create_timeout: float = 300.0,
        config_dump: Path | None = None,
    ) -> None:
        self.kind_bin = kind_bin
        self.docker_bin = docker_bin
        self.node_image = node_image
        self.base_config = load_base_config(base_config)
        self.reuse = reuse
        self.keep = keep
        self.cluster_name = name
        self.state_dir = state_dir
        self.clean_stale = clean_stale
        self.config_transform = config_transform
        self.preflight = preflight
        self.create_timeout = create_timeout
        self.config_dump = config_dump
        self._kind: Path | None = None
        self._cli: Path | None = None
        self._kind_version: tuple[int, int, int] | None = None
        self._guards: dict[str, Guard] = {}

    # ------------------------------------------------------------------ tools

    def _tools(self) -> tuple[Path, Path, tuple[int, int, int]]:
        """kind, the engine CLI and kind's version; checked once, before any boot."""
        if self._kind is None or self._cli is None or self._kind_version is None:
            kind = find_kind(self.kind_bin)
            cli = find_container_cli(self.docker_bin)
            check_engine(cli)
            self._kind, self._cli, self._kind_version = kind, cli, kind_version(kind)
        return self._kind, self._cli, self._kind_version

    def _kind_run(
        self,
        *args: str,
        timeout: float = 120,
        stdin: str | None = None,
        check: bool = True,
        guard: Guard | None = None,
    ) -> subprocess.CompletedProcess[str]:
        kind, _, _ = self._tools()
        return run_tool([str(kind), *args], timeout=timeout, stdin=stdin, check=check, guard=guard)

    def clusters(self) -> list[str]:
        """Names of all kind clusters on this engine."""
        out = self._kind_run("get", "clusters", timeout=60).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    # ------------------------------------------------------------------ versions and config

    def target_version(self) -> tuple[int, int] | None:
        """Kubernetes minor the node image runs (from its tag or kind's default)."""
        _, _, kind_version = self._tools()
        return kc.node_image_version(self.node_image) or kc.default_node_version(kind_version)

    def _kubeadm_target(self) -> tuple[int, int]:
        """The Kubernetes minor to pick kind's kubeadm API version by, guessed when unknown.

        An unknown image from a kind release with v1beta4 support is almost surely its own,
        newer default (>= 1.36); from older releases v1beta3 is generated either way.
        """
        known = self.target_version()
        if known is not None:
            return known
        _, _, kind_version = self._tools()
        return _NEWEST if kind_version >= kc.KIND_V1BETA4_RELEASE else (1, 35)

    def _root(self) -> Path:
        root = self.state_dir or default_state_dir()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return root

    def _pick_name(self, spec: ClusterSpec) -> str:
        if self.cluster_name:
            name = self.cluster_name
        elif self.reuse:
            name = kc.default_cluster_name(spec)
        else:
            name = kc.default_cluster_name(spec, unique=secrets.token_hex(3))
        try:
            kc.check_cluster_name(name)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        return name

    def cluster_config(self, spec: ClusterSpec, name: str, dirs: kc.HostDirs) -> dict[str, Any]:
        """The config passed to ``kind create cluster`` (after transform and checks).

        Raises:
            BackendError: the preflight check found the policy or log not reaching the apiserver.
        """
        _, _, kind_version = self._tools()
        return checked_config(
            spec,
            name,
            dirs,
            kind_version=kind_version,
            kubeadm=kc.kubeadm_api_version(kind_version, self._kubeadm_target()),
            node_image=self.node_image,
            base_config=self.base_config,
            transform=self.config_transform,
            dump=self.config_dump,
            preflight=self.preflight,
        )

    # ------------------------------------------------------------------ stale clusters

    def stale_clusters(self) -> list[str]:
        """``kaudit-*`` clusters whose creating run is gone and that were not kept.

        Normally the guard process deletes a cluster when its run dies; this catches what a
        guard could not (the machine rebooted, the guard was killed too).
        """
        stale = []
        root = self._root()
        for name in self.clusters():
            if not name.startswith(kc.CLUSTER_PREFIX):
                continue
            owner = owner_of(root / name)
            if owner is None or owner.abandoned:  # no record: not ours to judge; report it
                stale.append(name)
        return stale

    def _handle_stale(self, current: str) -> list[str]:
        stale = [n for n in self.stale_clusters() if n != current]
        for name in stale:
            if self.clean_stale or owner_of(self._root() / name) is not None:
                log.warning("deleting kind cluster %s left by a crashed run", name)
                self._delete(name, self._root() / name)
            else:
                log.warning(
                    "kind cluster %s looks left over from a crashed run; delete it with "
                    "`kind delete cluster --name %s` (or clean_stale=True)",
                    name,
                    name,
                )
        return stale

    # ------------------------------------------------------------------ lifecycle

    def start(self, spec: ClusterSpec) -> ClusterHandle:
        """Create (or reuse) a cluster for ``spec`` and return once its policy is provably live."""
        started = time.monotonic()
        kind, cli, kind_version = self._tools()
        # A rejected policy fails now, not after a minute of booting; an image of unknown
        # version is checked against the newest apiserver we model.
        validate_spec(spec, self.target_version() or _NEWEST)
        name = self._pick_name(spec)
        stale = self._handle_stale(name)
        cluster_dir = self._root() / name
        dirs = kc.host_dirs(cluster_dir)
        config = self.cluster_config(spec, name, dirs)
        key = kc.config_key(spec, node_image=self.node_image, base_config=self.base_config)
        node = f"{name}-control-plane"
        reused = False
        if name in self.clusters():
            if self.reuse and self._node_key(cli, node) == key:
                reused = True
                log.info("reusing kind cluster %s (same configuration)", name)
            elif self.reuse or owner_of(cluster_dir) is not None:
                log.info("kind cluster %s exists with another configuration; re-creating", name)
                self._delete(name, cluster_dir)
            else:
                raise BackendError(
                    f"a kind cluster named {name!r} already exists and was not made by this "
                    "plugin for this configuration; pass reuse=True to take it over, or delete "
                    f"it: kind delete cluster --name {name}"
                )
        if not reused:
            self._prepare_dirs(cluster_dir, dirs, spec, key)
        claim(cluster_dir, keep=self.keep)
        if not self.keep:
            self._guard(name, cluster_dir)
        try:
            if not reused:
                self._create(name, cluster_dir, config)
            handle = self._ready(spec, name, cluster_dir, dirs, started)
        except BaseException:
            if not self.keep:
                self._delete(name, cluster_dir)
            raise
        handle.details.update(
            {
                "kind": f"{kind} (v{'.'.join(map(str, kind_version))})",
                "engine": str(cli),
                "node image": self.node_image or "kind default",
                "reused": str(reused).lower(),
                "config key": key,
            }
        )
        if stale:
            handle.details["stale clusters"] = ", ".join(stale)
        return handle

    def _guard(self, name: str, cluster_dir: Path) -> None:
        """Start the process that deletes ``name`` if this process dies without doing so."""
        kind, _, _ = self._tools()
        if name not in self._guards:
            self._guards[name] = Guard(
                [str(kind), "delete", "cluster", "--name", name, "--kubeconfig", os.devnull],
                rmtree=cluster_dir,
            )

    def _node_key(self, cli: Path, node: str) -> str | None:
        proc = exec_in(cli, node, ["cat", f"{kc.NODE_POLICY_DIR}/{kc.META_FILE}"], timeout=30)
        if proc.returncode != 0:
            return None
        try:
            return str(json.loads(proc.stdout).get("key"))
        except ValueError:
            return None

    def _prepare_dirs(
        self, cluster_dir: Path, dirs: kc.HostDirs, spec: ClusterSpec, key: str
    ) -> None:
        """Policy dir with the policy and meta file; log dir with the log pre-created 0644.

        kube-apiserver (root in the node) creates a missing log 0600, unreadable for us on a
        rootful engine, and never changes the mode of an existing file.
        """
        cluster_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        cluster_dir.chmod(0o700)
        for sub in (dirs.policy_dir, dirs.log_dir):
            sub.mkdir(mode=0o755, exist_ok=True)
        self._write_policy(dirs, spec, key)
        create_readable_log(dirs.log_file, truncate=True)

    def _write_policy(self, dirs: kc.HostDirs, spec: ClusterSpec, key: str) -> None:
        """Replace policy and meta atomically (rename in the mounted directory)."""
        for filename, text in (
            (kc.POLICY_FILE, kc.render_policy(spec)),
            (
                kc.META_FILE,
                json.dumps(
                    {
                        "key": key,
                        "generation": kc.policy_generation(spec),
                        "flags": dict(spec.flags),
                    }
                ),
            ),
        ):
            tmp = dirs.policy_dir / f".{filename}.tmp"
            tmp.write_text(text)
            tmp.chmod(0o644)
            tmp.replace(dirs.policy_dir / filename)

    def _create(self, name: str, cluster_dir: Path, config: dict[str, Any]) -> None:
        kubeconfig = cluster_dir / "kind-kubeconfig"
        proc = self._kind_run(
            "create",
            "cluster",
            "--name",
            name,
            "--config",
            "-",
            "--kubeconfig",
            str(kubeconfig),
            "--retain",
            timeout=self.create_timeout,
            stdin=kc.dump_kind_config(config),
            check=False,
            guard=self._guards.get(name),
        )
        if proc.returncode != 0:
            log_tail, where = self._apiserver_log_tail(name, cluster_dir)
            raise BootError(
                f"kind cluster {name}",
                "`kind create cluster` failed:\n" + tail_lines(proc.stderr, 30),
                log_tail,
                where,
            )

    def _ready(
        self, spec: ClusterSpec, name: str, cluster_dir: Path, dirs: kc.HostDirs, started: float
    ) -> ClusterHandle:
        """Kubeconfig, /readyz, the flags actually in force, and the probe event."""
        _, cli, _ = self._tools()
        node = f"{name}-control-plane"
        workdir = cluster_dir / "client"
        workdir.mkdir(mode=0o700, exist_ok=True)
        kubeconfig_text = self._kind_run("get", "kubeconfig", "--name", name, timeout=60).stdout
        kubeconfig = write_private(workdir / "kubeconfig", kubeconfig_text.encode())
        server, ca_file, admin, _ = credentials_from_kubeconfig(kubeconfig, None, workdir)
        try:
            wait_ready(server, ca_file, timeout=spec.timeout)
        except TimeoutError as exc:
            tail, where = self._apiserver_log_tail(name, cluster_dir)
            raise BootError(
                f"kube-apiserver of kind cluster {name}", str(exc), tail, where
            ) from None
        flags = flags_from_manifest(read_file_in(cli, node, _MANIFEST))
        self._check_flags(flags, spec, name)
        minter = CertMinter.from_pem(
            read_file_in(cli, node, _CA_CERT), read_file_in(cli, node, _CA_KEY), workdir / "users"
        )
        source = self._log_source(spec, dirs, cli, node, flags)
        details = {"node": node, "state dir": str(cluster_dir), "log": source.description}
        if spec.policy is not None:
            result = self._prove(spec, server, ca_file, minter, source, name, dirs, cli, node)
            details["probe seconds"] = f"{result:.2f}"
        version = server_version(server, ca_file, admin)
        try:
            waited = wait_service_account(
                server, ca_file, admin, version=version, timeout=spec.timeout
            )
        except TimeoutError as exc:
            raise BackendError(f"kind cluster {name} is not ready for pods: {exc}") from None
        details["service account seconds"] = f"{waited:.2f}"
        boot_seconds = time.monotonic() - started
        return ClusterHandle(
            backend=self.name,
            name=name,
            server=server,
            ca_file=ca_file,
            admin=admin,
            kubeconfig=kubeconfig,
            log_source=source,
            apiserver_flags=flags,
            version=version,
            spec=spec,
            mint_credentials=minter.mint,
            has_barrier_rule=spec.policy is not None,
            workdir=cluster_dir,
            boot_seconds=boot_seconds,
            details=details,
        )

    def _check_flags(self, flags: Mapping[str, str], spec: ClusterSpec, name: str) -> None:
        _, _, kind_version = self._tools()
        kubeadm = kc.kubeadm_api_version(kind_version, self._kubeadm_target())
        check_running_flags(flags, spec, name, kubeadm=kubeadm)

    def _log_source(
        self, spec: ClusterSpec, dirs: kc.HostDirs, cli: Path, node: str, flags: Mapping[str, str]
    ) -> LogSource:
        """The host mount when readable (fast), else ``<engine> exec <node> tail -c +N``."""
        node_path = flags.get("audit-log-path", kc.NODE_LOG_PATH)
        if node_path == kc.NODE_LOG_PATH and os.access(dirs.log_file, os.R_OK):
            return FileLogSource(dirs.log_file)
        log.info(
            "audit log %s not readable on the host; reading it via %s exec", dirs.log_file, cli.name
        )
        return container_file_source([str(cli)], node, node_path)

    def _prove(
        self,
        spec: ClusterSpec,
        server: str,
        ca_file: Path | None,
        minter: CertMinter,
        source: LogSource,
        name: str,
        dirs: kc.HostDirs,
        cli: Path,
        node: str,
    ) -> float:
        barrier = minter.mint(BARRIER_USER, ())
        path = kc.generation_path(kc.policy_generation(spec))
        try:
            result = prove_policy_live(
                server,
                ca_file,
                barrier,
                source,
                path=path,
                expected_level="Request",
                timeout=_PROBE_TIMEOUT,
            )
        except TimeoutError as exc:
            raise BackendError(
                f"kind cluster {name}: the audit policy is not provably live: {exc}\n"
                + diagnose_log(dirs, cli, node)
            ) from None
        return result.seconds

    def _apiserver_log_tail(self, name: str, cluster_dir: Path) -> tuple[str, str | None]:
        kind, _, _ = self._tools()
        return apiserver_log_tail(kind, name, cluster_dir)

    def reconfigure(self, handle: ClusterHandle, spec: ClusterSpec) -> ClusterHandle | None:
        """Apply a new policy in place (apiserver static pod restart), or re-create for new flags.

        A policy-only change rewrites the policy in the mounted directory and restarts the
        apiserver pod through crictl (the kubelet re-creates it and the new process reads the
        new file), then waits for the probe of the new policy generation. Changed flags
        change the kubeadm config, so the cluster is re-created.
        """
        if handle.backend != self.name or handle.workdir is None:
            return None
        _, cli, _ = self._tools()
        if dict(spec.flags) != dict(handle.spec.flags) or (spec.policy is None) != (
            handle.spec.policy is None
        ):
            log.info("kind cluster %s: flags changed, re-creating", handle.name)
            self.stop(handle, force=True)
            return self.start(spec)
        validate_spec(spec, self.target_version() or _NEWEST)
        started = time.monotonic()
        dirs = kc.host_dirs(handle.workdir)
        key = kc.config_key(spec, node_image=self.node_image, base_config=self.base_config)
        self._write_policy(dirs, spec, key)
        node = f"{handle.name}-control-plane"
        self._restart_apiserver(cli, node)
        try:
            wait_ready(
                handle.server,
                handle.ca_file,
                timeout=spec.timeout,
                insecure=handle.insecure_skip_tls_verify,
            )
        except TimeoutError as exc:
            tail, where = self._apiserver_log_tail(handle.name, handle.workdir)
            raise BootError(
                f"kube-apiserver of kind cluster {handle.name} after the policy change",
                str(exc),
                tail,
                where,
            ) from None
        assert handle.mint_credentials is not None
        minter_mint = handle.mint_credentials
        barrier = minter_mint(BARRIER_USER, ())
        path = kc.generation_path(kc.policy_generation(spec))
        try:
            prove_policy_live(
                handle.server,
                handle.ca_file,
                barrier,
                handle.log_source,
                path=path,
                expected_level="Request",
                timeout=_PROBE_TIMEOUT,
                insecure=handle.insecure_skip_tls_verify,
            )
        except TimeoutError as exc:
            raise BackendError(f"kind cluster {handle.name}: new policy not live: {exc}") from None
        details = dict(handle.details)
        details["reconfigure seconds"] = f"{time.monotonic() - started:.2f}"
        details["config key"] = key
        return dataclasses.replace(handle, spec=spec, details=details)

    def _restart_apiserver(self, cli: Path, node: str) -> None:
        """Stop and remove the apiserver pod sandbox; the kubelet re-creates the static pod."""
        proc = exec_in(cli, node, ["crictl", "pods", "--name", "kube-apiserver", "-q"], timeout=60)
        ids = proc.stdout.decode().split()
        if proc.returncode != 0 or not ids:
            raise BackendError(
                f"cannot find the kube-apiserver pod in {node} via crictl: "
                f"{proc.stderr.decode('utf-8', 'replace').strip()}"
            )
        for pod in ids:
            for verb in ("stopp", "rmp"):
                step = exec_in(cli, node, ["crictl", verb, pod], timeout=120)
                if step.returncode != 0:
                    raise BackendError(
                        f"`crictl {verb} {pod}` failed in {node}: "
                        f"{step.stderr.decode('utf-8', 'replace').strip()}"
                    )

    def stop(self, handle: ClusterHandle, *, force: bool = False) -> None:
        """Delete the cluster and its host directories, unless ``keep`` (then leave both)."""
        if self.keep and not force:
            log.info(
                "keeping kind cluster %s (delete: kind delete cluster --name %s)",
                handle.name,
                handle.name,
            )
            return
        self._delete(handle.name, handle.workdir)

    def _nodes(self, name: str) -> list[str]:
        """The node containers of cluster ``name`` (``kind get nodes``)."""
        proc = self._kind_run("get", "nodes", "--name", name, timeout=60, check=False)
        return proc.stdout.split() if proc.returncode == 0 else []

    def _delete(self, name: str, cluster_dir: Path | None) -> None:
        kubeconfig = (cluster_dir / "kind-kubeconfig") if cluster_dir else None
        args = ["delete", "cluster", "--name", name]
        if kubeconfig is not None:
            args += ["--kubeconfig", str(kubeconfig)]
        else:  # never let kind edit ~/.kube/config
            args += ["--kubeconfig", os.devnull]
        try:
            # A node whose create request was in flight when a create was interrupted can
            # appear after the delete listed the nodes: delete until none is left.
            self._kind_run(*args, timeout=180)

            def gone() -> bool | None:
                if not self._nodes(name):
                    return True
                self._kind_run(*args, timeout=180)
                return None

            with contextlib.suppress(TimeoutError):  # what is left, the guard may still get
                wait_for(gone, timeout=60, on_timeout=str, poll=0.5)
        finally:
            if cluster_dir is not None:
                shutil.rmtree(cluster_dir, ignore_errors=True)
            guard = self._guards.pop(name, None)
            if guard is not None:
                guard.release()

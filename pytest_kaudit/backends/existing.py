"""The ``existing`` backend: a cluster somebody else runs, reached through a kubeconfig.

Nothing is started or stopped. The policy is whatever the cluster runs (point ``policy`` at
a copy so expectations can explain their predictions); there is no barrier rule, and no CA
key, so per-user clients fall back to impersonation by the admin. The audit log is read from
a local file, from a command (``ssh node sudo cat …``, ``docker exec …``), or from the
apiserver pod's stdout when it runs with ``--audit-log-path=-``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pytest_kaudit.backends._kubeconfig_read import credentials_from_kubeconfig, kubeconfig_paths
from pytest_kaudit.backends._logsources import CommandLogSource
from pytest_kaudit.backends._probe import server_version, wait_ready, whoami
from pytest_kaudit.backends.base import Backend, ClusterHandle, ClusterSpec, Credentials
from pytest_kaudit.backends.kubeconfig import write_kubeconfig
from pytest_kaudit.errors import BackendError
from pytest_kaudit.events.log import FileLogSource, LogSource

log = logging.getLogger(__name__)

#: Seconds to wait for the identity probe's audit event.
_WHOAMI_TIMEOUT = 10.0


class ExistingBackend(Backend):
    """Use a running cluster as is.

    Args:
        kubeconfig: path of the kubeconfig (client certificate, token or exec plugin), or
            several separated by ``os.pathsep``, merged as kubectl merges ``KUBECONFIG``.
        context: context to use; default the file's current-context.
        log_path: the audit log as a file readable on this host.
        log_command: a command printing the log (string or argv); ``{offset}`` /
            ``{offset1}`` placeholders make reads incremental (``tail -c +{offset1} …``).
        log_pod: ``namespace/pod[/container]`` of the apiserver, read with ``kubectl logs``,
            when the cluster runs ``--audit-log-path=-`` (non-JSON lines are skipped).
        policy: path of a copy of the cluster's audit policy, for explanations.
    """

    name = "existing"

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str],
        context: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        log_command: str | Sequence[str] | None = None,
        policy: str | os.PathLike[str] | None = None,
        *,
        log_pod: str | None = None,
        kubectl_bin: str = "kubectl",
    ) -> None:
        given = [x for x in (log_path, log_command, log_pod) if x]
        if len(given) != 1:
            raise BackendError(
                "the existing backend needs exactly one way to read the audit log: "
                "log_path (a file on this host), log_command (e.g. 'ssh node sudo tail -c "
                "+{offset1} /var/log/kubernetes/audit.log') or log_pod (namespace/pod of the "
                f"apiserver with --audit-log-path=-); got {len(given)}"
            )
        #: The kubeconfig files: a string lists several like ``KUBECONFIG`` (``a:b``).
        self.kubeconfig_files = kubeconfig_paths(kubeconfig)
        if not self.kubeconfig_files:
            raise BackendError(f"the existing backend got no kubeconfig file in {kubeconfig!r}")
        self.kubeconfig = self.kubeconfig_files[0]
        #: The one file kubectl and clients get: ``kubeconfig``, or the list merged into one.
        self._client_kubeconfig = self.kubeconfig
        self.context = context
        self.log_path = Path(log_path) if log_path else None
        self.log_command = (
            shlex.split(log_command)
            if isinstance(log_command, str)
            else list(log_command)
            if log_command
            else None
        )
        self.log_pod = log_pod
        self.kubectl_bin = kubectl_bin
        self.policy_path = Path(policy) if policy else None

    def log_source(self) -> tuple[LogSource, bool]:
        """The configured log source and whether it interleaves non-audit output."""
        if self.log_path is not None:
            return FileLogSource(self.log_path), False
        if self.log_command is not None:
            return CommandLogSource(self.log_command), False
        assert self.log_pod is not None
        parts = self.log_pod.split("/")
        if len(parts) not in (2, 3):
            raise BackendError(f"log_pod {self.log_pod!r}: expected namespace/pod[/container]")
        argv = [self.kubectl_bin, "--kubeconfig", str(self._client_kubeconfig)]
        if self.context:
            argv += ["--context", self.context]
        argv += ["logs", "-n", parts[0], parts[1]]
        if len(parts) == 3:
            argv += ["-c", parts[2]]
        return CommandLogSource(
            argv, json_only=True, description=f"kubectl logs {self.log_pod}"
        ), True

    def start(self, spec: ClusterSpec) -> ClusterHandle:
        """Check the cluster answers and the log is readable; nothing is booted."""
        policy = spec.policy
        if self.policy_path is not None:  # bad input fails before any waiting
            from pytest_kaudit.policy import Policy

            policy = Policy.load(self.policy_path)
        workdir = Path(tempfile.mkdtemp(prefix="kaudit-existing-"))
        workdir.chmod(0o700)
        try:
            server, ca_file, admin, insecure = credentials_from_kubeconfig(
                self.kubeconfig_files, self.context, workdir
            )
            if len(self.kubeconfig_files) > 1:  # one file for clients and kubectl
                self._client_kubeconfig = write_kubeconfig(
                    workdir / "kubeconfig", server=server, ca_file=ca_file, creds=admin,
                    insecure_skip_tls_verify=insecure,
                )
            try:
                wait_ready(server, ca_file, timeout=spec.timeout, insecure=insecure)
            except TimeoutError as exc:
                raise BackendError(
                    f"the existing cluster at {server} is not ready: {exc}"
                ) from None
            source, mixed = self.log_source()
            follower = source.follow(from_start=False)  # fails now if the log is unreadable
            follower.close()
            if self.log_path is not None and not os.access(self.log_path, os.R_OK):
                raise BackendError(f"audit log {self.log_path} is not readable by this user")
            if admin.cert_file is None:
                admin = self._authenticated(server, ca_file, admin, source, insecure)
            return ClusterHandle(
                backend=self.name,
                name=self.context or server,
                server=server,
                ca_file=ca_file,
                admin=admin,
                kubeconfig=self._client_kubeconfig,
                log_source=source,
                log_is_mixed=mixed,
                apiserver_flags={},
                version=server_version(server, ca_file, admin, insecure=insecure),
                spec=ClusterSpec(policy=policy, flags=dict(spec.flags), timeout=spec.timeout),
                mint_credentials=None,
                insecure_skip_tls_verify=insecure,
                has_barrier_rule=False,
                workdir=workdir,
                details={"kubeconfig": os.pathsep.join(map(str, self.kubeconfig_files)),
                         "log": source.description},
            )
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    def _authenticated(
        self,
        server: str,
        ca_file: Path | None,
        admin: Credentials,
        source: LogSource,
        insecure: bool,  # noqa: FBT001
    ) -> Credentials:
        """A token's real user: the kubeconfig entry's name is only a label for it."""
        identity = whoami(
            server, ca_file, admin, source, timeout=_WHOAMI_TIMEOUT, insecure=insecure
        )
        if identity is None:
            log.warning(
                "cannot tell which user the token of kubeconfig user %r authenticates as "
                "(no SelfSubjectReview API, and the probe request was not in the audit "
                "log); using that name",
                admin.user,
            )
            return admin
        user, groups = identity
        return dataclasses.replace(admin, user=user, groups=groups)

    def reconfigure(self, handle: ClusterHandle, spec: ClusterSpec) -> ClusterHandle | None:
        """The policy of a cluster we do not own cannot be changed."""
        return None

    def stop(self, handle: ClusterHandle) -> None:
        """Only our private copies of the credentials are removed; the cluster stays."""
        if handle.workdir is not None:
            shutil.rmtree(handle.workdir, ignore_errors=True)

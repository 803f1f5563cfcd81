"""The contract every cluster backend (local, kind, k3s, existing) fulfils.

A backend turns a :class:`ClusterSpec` (the policy and apiserver flags a test asked for)
into a running cluster described by a :class:`ClusterHandle`. Fixtures, expectations and
the log reader only ever see the handle, so they never branch on the backend.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pytest_kaudit.events.log import LogSource
    from pytest_kaudit.policy import Policy

#: The user the barrier requests authenticate as. The policy written to owned clusters gets
#: one extra rule at index 0 that logs this user's requests at Metadata, so a barrier request
#: is always audited; no other request can match that rule.
BARRIER_USER = "kaudit:barrier"


@dataclass(frozen=True)
class ClusterSpec:
    """What a test asked for: the audit policy and the kube-apiserver flags.

    ``flags`` are the user's extra apiserver flags, names without leading dashes
    (``{"audit-log-maxsize": "1"}``); the backend owns ``audit-policy-file`` and
    ``audit-log-path`` unless the user sets them (``audit-log-path=-`` for stdout).
    """

    policy: Policy | None
    flags: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 60.0

    @property
    def key(self) -> str:
        """Identity of the configuration: equal keys can share one running cluster."""
        text = self.policy.text if self.policy is not None else ""
        blob = json.dumps({"policy": text, "flags": sorted(self.flags.items())})
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Credentials:
    """How to authenticate as one user: a client certificate, a bearer token, or both."""

    user: str
    groups: tuple[str, ...] = ()
    cert_file: Path | None = None
    key_file: Path | None = None
    token: str | None = field(default=None, repr=False)


@dataclass
class ClusterHandle:
    """A running cluster as the fixtures see it, whatever backend made it."""

    backend: str
    name: str
    server: str                     # https://127.0.0.1:PORT
    ca_file: Path | None            # serving CA; None = the system trust store
    admin: Credentials              # cluster admin (system:masters)
    kubeconfig: Path                # admin kubeconfig (0600), never ~/.kube/config
    log_source: LogSource           # where the audit log is read from
    apiserver_flags: dict[str, str]  # every flag the apiserver was started with
    version: tuple[int, int]        # apiserver (major, minor)
    spec: ClusterSpec
    #: Issues credentials for any user/groups (client certs signed by the cluster's CA).
    #: None when the backend cannot, e.g. `existing` without the CA key: then the
    #: fixture falls back to impersonation headers sent by the admin.
    mint_credentials: Callable[[str, tuple[str, ...]], Credentials] | None = None
    #: Skip TLS verification (only when the user's kubeconfig says insecure-skip-tls-verify).
    insecure_skip_tls_verify: bool = False
    #: The log stream interleaves other output (``--audit-log-path=-``: apiserver stdout).
    log_is_mixed: bool = False
    #: True when the policy in force carries the barrier rule (see BARRIER_USER).
    has_barrier_rule: bool = False
    #: True when a controller (kube-controller-manager's ServiceAccount controller) creates
    #: each namespace's ``default`` ServiceAccount, so the plugin waits for it; False where
    #: none runs (the local backend), and the plugin then creates it itself.
    service_account_controller: bool = True
    workdir: Path | None = None     # private 0700 directory owned by this cluster, if any
    #: Seconds from ``start()`` to a cluster proven ready (None: attached, not booted by us).
    boot_seconds: float | None = None
    details: dict[str, str] = field(default_factory=dict)  # backend-specific, for reports


@runtime_checkable
class Backend(Protocol):
    """Lifecycle of clusters of one kind. Implementations live in their own module.

    Everything the cluster pool calls is declared here. Backends subclass this protocol
    explicitly, so they inherit the defaults of the optional members (``is_alive``,
    ``apiserver_log_tail``, ``stop_all``) and mypy checks their signatures.
    """

    name: str

    def start(self, spec: ClusterSpec) -> ClusterHandle:
        """Boot a cluster for ``spec`` and return once the audit policy is provably live."""
        ...

    def reconfigure(self, handle: ClusterHandle, spec: ClusterSpec) -> ClusterHandle | None:
        """Apply a new policy/flags to a running cluster, or return None if it cannot."""
        ...

    def stop(self, handle: ClusterHandle) -> None:
        """Tear the cluster down; must be safe to call twice and after a crash."""
        ...

    def is_alive(self, handle: ClusterHandle) -> bool:
        """Whether a cluster handed out earlier still runs (checked before each reuse)."""
        return True

    def apiserver_log_tail(self, handle: ClusterHandle, lines: int = 25) -> str:
        """The last lines of the apiserver's own log, quoted when a cluster died."""
        return ""

    def stop_all(self) -> None:
        """Stop anything this backend started that no handle describes (Ctrl-C mid-boot)."""
        return None


def owned_policy_document(policy: Policy) -> dict[str, object]:
    """The policy document written for clusters we own: the user's rules behind the barrier rule.

    The barrier rule only matches requests authenticated as :data:`BARRIER_USER`, so the
    decision for every other request is exactly the user's policy.
    """
    document = dict(policy.to_dict())
    rules = list(document.get("rules") or [])
    barrier = {"level": "Metadata", "users": [BARRIER_USER]}
    document["rules"] = [barrier, *rules]
    return document


def validate_spec(spec: ClusterSpec, version: tuple[int, int]) -> None:
    """Check the policy and flags against the apiserver ``version`` before anything boots.

    Raises:
        PolicyError: the policy or the flags would be rejected by that kube-apiserver.
    """
    from pytest_kaudit.errors import PolicyError
    from pytest_kaudit.policy import Policy, validate_flags

    problems = []
    if spec.policy is not None:
        try:
            Policy.from_yaml(spec.policy.text, source=spec.policy.source,
                             strict=False, target_version=version)
        except PolicyError as exc:
            problems += [p for p in exc.problems if p.severity == "error"]
    problems += [p for p in validate_flags(dict(spec.flags), target_version=version)
                 if p.severity == "error"]
    if problems:
        raise PolicyError(problems, headline=(
            f"refusing to boot kube-apiserver v{version[0]}.{version[1]}: "
            "it would reject this configuration"))

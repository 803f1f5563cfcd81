"""Readiness, policy-liveness and identity probes over HTTPS, shared by the backends.

"Ready" is not enough for an audit test: the apiserver must also be writing *this* policy's
decisions to the log we read. :func:`prove_policy_live` sends the generation probe (see
``_owned.generation_rule``) and waits for its event, so a stale policy, a log path that
is not mounted, or a patch kind dropped is detected at start, not as a baffling test failure.
:func:`whoami` asks the server which user a credential authenticates as.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

from pytest_kaudit.backends._http import request, ssl_context, wait_for
from pytest_kaudit.backends.base import Credentials
from pytest_kaudit.errors import AuditLogError
from pytest_kaudit.events.log import AuditLog, LogSource
from pytest_kaudit.events.model import AuditEvent

T = TypeVar("T")

#: From this version the ServiceAccount admission plugin mounts a bound token volume and no
#: longer needs a token Secret on the account (BoundServiceAccountTokenVolume on by default).
SECRETLESS_SERVICE_ACCOUNTS = (1, 21)

#: Readiness checks of post-start hooks that only create or reconcile bootstrap objects in
#: etcd (the RBAC roles and bindings, the system PriorityClasses). Each hook waits a full
#: second before its first attempt (``wait.Poll(1*time.Second, ...)`` in kubernetes
#: ``pkg/registry/rbac/rest/storage_rbac.go`` and ``pkg/registry/scheduling/rest/
#: storage_scheduling.go``), so an apiserver restarted on an etcd where an identical apiserver
#: already made those objects is ready for tests a second before ``/readyz`` says so.
BOOTSTRAP_OBJECT_CHECKS = ("poststarthook/rbac/bootstrap-roles",
                           "poststarthook/scheduling/bootstrap-system-priority-classes")


def wait_ready(
    server: str,
    ca_file: Path | None,
    *,
    timeout: float,
    still_running: Callable[[], str | None] | None = None,
    insecure: bool = False,
    creds: Credentials | None = None,
    exclude: tuple[str, ...] = (),
) -> None:
    """Poll ``/readyz`` until 200 within ``timeout`` seconds.

    Args:
        still_running: called between polls; returns a reason string when waiting is
            pointless (e.g. the apiserver crash-loops), which aborts at once.
        insecure: skip TLS verification (see :func:`ssl_context`).
        creds: authenticate the probe; needed where anonymous requests are refused
            (k3s runs kube-apiserver with ``--anonymous-auth=false``: ``/readyz`` is 401).
        exclude: readiness checks not waited for (``/readyz?exclude=NAME``, all versions
            this plugin supports), e.g. :data:`BOOTSTRAP_OBJECT_CHECKS`.

    Raises:
        TimeoutError: with the last status or connection error seen.
    """
    ctx = ssl_context(ca_file, creds, insecure=insecure)
    last = "no answer yet"
    path = "/readyz" + (f"?{urlencode([('exclude', name) for name in exclude])}"
                        if exclude else "")

    def ready() -> bool | None:
        nonlocal last
        try:
            status, body = request(server, path, ctx, creds=creds, timeout=2.0)
            if status == 200:
                return True
            last = f"/readyz answered {status}: {body[:200].decode('utf-8', 'replace')}"
        except OSError as exc:
            last = f"/readyz: {exc}"
        if still_running is not None:
            reason = still_running()
            if reason:
                raise TimeoutError(f"{reason} (last probe: {last})")
        return None

    wait_for(ready, timeout=timeout,
             on_timeout=lambda: f"not ready within {timeout:.0f}s (last probe: {last})")


def server_version(
    server: str, ca_file: Path | None, creds: Credentials, *, insecure: bool = False
) -> tuple[int, int]:
    """(major, minor) from ``/version`` (``"20+"`` style minors are accepted)."""
    ctx = ssl_context(ca_file, creds, insecure=insecure)
    status, body = request(server, "/version", ctx, creds=creds)
    if status != 200:
        raise OSError(f"/version answered {status}")
    info = json.loads(body)
    return int(str(info["major"]).rstrip("+")), int(str(info["minor"]).rstrip("+"))


@dataclass(frozen=True)
class ProbeResult:
    """What the liveness probe saw: the event's level, and how long it took to appear."""

    audit_id: str
    level: str
    seconds: float


def prove_policy_live(
    server: str,
    ca_file: Path | None,
    creds: Credentials,
    source: LogSource,
    *,
    path: str,
    expected_level: str,
    timeout: float,
    insecure: bool = False,
) -> ProbeResult:
    """Send a probe as ``creds`` to ``path`` and wait for its event at ``expected_level``.

    Re-sends the probe every second (a request racing the apiserver's start may be lost).

    Raises:
        TimeoutError: the event never appeared, or appeared at another level (stale policy);
            the message says which.
    """
    started = time.monotonic()
    seen_level: str | None = None

    def at_level(event: AuditEvent) -> ProbeResult | None:
        nonlocal seen_level
        level = str(getattr(event.level, "value", event.level))
        if level == expected_level:
            return ProbeResult(event.audit_id, expected_level, time.monotonic() - started)
        seen_level = level
        return None

    def why(sent: int, last_error: str) -> str:
        if seen_level is not None:
            return (
                f"the probe {path} was logged at level {seen_level}, not "
                f"{expected_level}: the apiserver still runs an older policy"
            )
        detail = f" ({last_error})" if last_error else ""
        return (
            f"no audit event for the probe {path} appeared in {source.description} "
            f"within {timeout:.0f}s ({sent} probes sent){detail}"
        )

    return _probe_until_logged(
        server, ssl_context(ca_file, creds, insecure=insecure), creds, source,
        prefix="kaudit-probe-", path=lambda _: path, timeout=timeout, seen=at_level, why=why,
    )


def _probe_until_logged(
    server: str,
    ctx: ssl.SSLContext,
    creds: Credentials,
    source: LogSource,
    *,
    prefix: str,
    path: Callable[[str], str],
    timeout: float,
    seen: Callable[[AuditEvent], T | None],
    why: Callable[[int, str], str],
) -> T:
    """Send a request with a fresh Audit-ID every second until ``seen`` accepts its event.

    Re-sending covers a request racing the apiserver's start (it may never be logged).

    Raises:
        TimeoutError: ``why(probes sent, last error)``.
    """
    reader = AuditLog(source.follow(from_start=False))
    sent: set[str] = set()
    last_error = ""
    next_send = 0.0

    def logged() -> T | None:
        nonlocal last_error, next_send
        now = time.monotonic()
        if now >= next_send:
            audit_id = f"{prefix}{uuid.uuid4()}"
            try:
                request(server, path(audit_id), ctx, creds=creds, headers={"Audit-ID": audit_id})
                sent.add(audit_id)
            except OSError as exc:
                last_error = f"probe request failed: {exc}"
            next_send = now + 1.0
        try:
            events = reader.poll()
        except AuditLogError as exc:
            events, last_error = [], str(exc)
        for event in events:
            if event.audit_id in sent:
                result = seen(event)
                if result is not None:
                    return result
        return None

    try:
        return wait_for(logged, timeout=timeout, on_timeout=lambda: why(len(sent), last_error))
    finally:
        reader.close()


def service_account_admits_pods(*, has_token_secret: bool, version: tuple[int, int]) -> bool:
    """Whether an existing ``default`` ServiceAccount lets the admission plugin admit pods.

    Before 1.21 the plugin mounts the account's token Secret, so it needs one referenced.
    """
    return has_token_secret or version >= SECRETLESS_SERVICE_ACCOUNTS


def wait_service_account(
    server: str,
    ca_file: Path | None,
    creds: Credentials,
    *,
    namespace: str = "default",
    version: tuple[int, int],
    timeout: float,
    insecure: bool = False,
) -> float:
    """Wait until ``namespace``'s ``default`` ServiceAccount can admit pods; return the wait.

    With the ServiceAccount admission plugin on (kube-apiserver's default), a pod is refused
    with 403 ``serviceaccount "default" not found`` until the controller-manager has created
    that account, which can be many seconds after ``/readyz`` answers. Before 1.21 (bound
    service-account token volumes off by default) the plugin also needs the account's token
    Secret, which the token controller adds a moment later. See docs/cluster-readiness.md.

    Raises:
        TimeoutError: the account did not become usable; the message has the last answer.
    """
    started = time.monotonic()
    ctx = ssl_context(ca_file, creds, insecure=insecure)
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    last = "no answer yet"

    def usable() -> float | None:
        nonlocal last
        try:
            status, body = request(server, path, ctx, creds=creds, timeout=2.0)
            if status == 200 and service_account_admits_pods(
                has_token_secret=bool(json.loads(body).get("secrets")), version=version
            ):
                return time.monotonic() - started
            last = (
                f"{path} has no token Secret yet"
                if status == 200
                else f"{path} answered {status}: {body[:200].decode('utf-8', 'replace')}"
            )
        except (OSError, ValueError) as exc:
            last = f"{path}: {exc}"
        return None

    return wait_for(
        usable,
        timeout=timeout,
        on_timeout=lambda: (
            f"the ServiceAccount {namespace}/default was not usable within {timeout:.0f}s "
            f"(is the controller-manager running?); last answer: {last}"
        ),
    )


#: SelfSubjectReview's group versions, newest first: v1 from Kubernetes 1.28, v1beta1 from
#: 1.27, v1alpha1 from 1.26 (kubernetes pkg/apis/authentication, "SelfSubjectReview").
SELF_SUBJECT_REVIEW_VERSIONS = ("v1", "v1beta1", "v1alpha1")
#: Non-resource path of the identity probe; unique per request, so a catch-all rule logs it.
WHOAMI_PATH_PREFIX = "/kaudit-whoami/"


def self_subject_review(
    server: str, ca_file: Path | None, creds: Credentials, *, insecure: bool = False
) -> tuple[str, tuple[str, ...]] | None:
    """Who the server says ``creds`` are (user, groups), where it serves SelfSubjectReview.

    Any authenticated user may create a SelfSubjectReview (no RBAC rule needed). None when
    no version is served (before 1.26, or the feature gate is off).

    Raises:
        OSError: the server did not answer.
    """
    ctx = ssl_context(ca_file, creds, insecure=insecure)
    for version in SELF_SUBJECT_REVIEW_VERSIONS:
        group = f"authentication.k8s.io/{version}"
        body = json.dumps({"apiVersion": group, "kind": "SelfSubjectReview"}).encode()
        status, answer = request(
            server,
            f"/apis/{group}/selfsubjectreviews",
            ctx,
            creds=creds,
            method="POST",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        if status in (200, 201):
            try:
                info = json.loads(answer)["status"]["userInfo"]
                return str(info["username"]), tuple(str(g) for g in info.get("groups") or ())
            except (ValueError, KeyError, TypeError):
                return None
    return None


def logged_identity(
    server: str,
    ca_file: Path | None,
    creds: Credentials,
    source: LogSource,
    *,
    timeout: float,
    insecure: bool = False,
) -> tuple[str, tuple[str, ...]] | None:
    """Who the audit log says sent a request as ``creds`` (user, groups); None if unlogged.

    The request carries a unique Audit-ID, so its event is found whatever else is logged;
    any policy that logs the request (at any level but None) names the authenticated user.
    """
    def named(event: AuditEvent) -> tuple[str, tuple[str, ...]] | None:
        return (event.user, tuple(event.groups)) if event.user else None

    try:
        return _probe_until_logged(
            server, ssl_context(ca_file, creds, insecure=insecure), creds, source,
            prefix="kaudit-whoami-", path=lambda audit_id: WHOAMI_PATH_PREFIX + audit_id,
            timeout=timeout, seen=named, why=lambda sent, error: error,
        )
    except TimeoutError:
        return None


def whoami(
    server: str,
    ca_file: Path | None,
    creds: Credentials,
    source: LogSource,
    *,
    timeout: float,
    insecure: bool = False,
) -> tuple[str, tuple[str, ...]] | None:
    """The identity the server gives ``creds``: SelfSubjectReview where served, else the log."""
    try:
        review = self_subject_review(server, ca_file, creds, insecure=insecure)
    except OSError:
        return None  # no answer at all: a probe would not be logged either
    return review or logged_identity(
        server, ca_file, creds, source, timeout=timeout, insecure=insecure
    )

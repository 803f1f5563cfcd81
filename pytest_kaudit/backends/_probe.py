"""Readiness and policy-liveness probes over HTTPS, shared by the container backends.

"Ready" is not enough for an audit test: the apiserver must also be writing *this* policy's
decisions to the log we read. :func:`prove_policy_live` sends the generation probe (see
``kind_config.generation_rule``) and waits for its event, so a stale policy, a log path that
is not mounted, or a patch kind dropped is detected at start, not as a baffling test failure.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_kaudit.backends.base import Credentials
from pytest_kaudit.errors import AuditLogError
from pytest_kaudit.events.log import AuditLog, LogSource

_POLL = 0.1

#: From this version the ServiceAccount admission plugin mounts a bound token volume and no
#: longer needs a token Secret on the account (BoundServiceAccountTokenVolume on by default).
SECRETLESS_SERVICE_ACCOUNTS = (1, 21)


def ssl_context(
    ca_file: Path | None, creds: Credentials | None = None, *, insecure: bool = False
) -> ssl.SSLContext:
    """TLS context with an optional client cert, verifying the server against ``ca_file``.

    ``ca_file=None`` verifies with the system trust store. Verification is turned off only
    when ``insecure`` is true (the user's kubeconfig says ``insecure-skip-tls-verify``).
    """
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if creds is not None and creds.cert_file is not None and creds.key_file is not None:
        ctx.load_cert_chain(str(creds.cert_file), str(creds.key_file))
    return ctx


def request(
    server: str,
    path: str,
    ctx: ssl.SSLContext,
    *,
    creds: Credentials | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """GET ``path``; returns (status, body) for any HTTP status, raises OSError otherwise."""
    req = urllib.request.Request(server.rstrip("/") + path, headers=dict(headers or {}))
    if creds is not None and creds.token:
        req.add_header("Authorization", f"Bearer {creds.token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_ready(
    server: str,
    ca_file: Path | None,
    *,
    timeout: float,
    still_running: Callable[[], str | None] | None = None,
    insecure: bool = False,
    creds: Credentials | None = None,
) -> None:
    """Poll ``/readyz`` until 200 within ``timeout`` seconds.

    Args:
        still_running: called between polls; returns a reason string when waiting is
            pointless (e.g. the apiserver crash-loops), which aborts at once.
        insecure: skip TLS verification (see :func:`ssl_context`).
        creds: authenticate the probe; needed where anonymous requests are refused
            (k3s runs kube-apiserver with ``--anonymous-auth=false``: ``/readyz`` is 401).

    Raises:
        TimeoutError: with the last status or connection error seen.
    """
    ctx = ssl_context(ca_file, creds, insecure=insecure)
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            status, body = request(server, "/readyz", ctx, creds=creds, timeout=2.0)
            if status == 200:
                return
            last = f"/readyz answered {status}: {body[:200].decode('utf-8', 'replace')}"
        except OSError as exc:
            last = f"/readyz: {exc}"
        if still_running is not None:
            reason = still_running()
            if reason:
                raise TimeoutError(f"{reason} (last probe: {last})")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not ready within {timeout:.0f}s (last probe: {last})")
        time.sleep(_POLL)


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
    deadline = started + timeout
    ctx = ssl_context(ca_file, creds, insecure=insecure)
    reader = AuditLog(source.follow(from_start=False))
    seen_level: str | None = None
    sent: set[str] = set()
    last_error = ""
    next_send = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= next_send:
                audit_id = f"kaudit-probe-{uuid.uuid4()}"
                try:
                    request(server, path, ctx, creds=creds, headers={"Audit-ID": audit_id})
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
                    if (
                        str(event.level) == expected_level
                        or getattr(event.level, "value", None) == expected_level
                    ):
                        return ProbeResult(
                            event.audit_id, expected_level, time.monotonic() - started
                        )
                    seen_level = str(getattr(event.level, "value", event.level))
            if time.monotonic() >= deadline:
                if seen_level is not None:
                    raise TimeoutError(
                        f"the probe {path} was logged at level {seen_level}, not "
                        f"{expected_level}: the apiserver still runs an older policy"
                    )
                detail = f" ({last_error})" if last_error else ""
                raise TimeoutError(
                    f"no audit event for the probe {path} appeared in {source.description} "
                    f"within {timeout:.0f}s ({len(sent)} probes sent){detail}"
                )
            time.sleep(_POLL)
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
    deadline = started + timeout
    ctx = ssl_context(ca_file, creds, insecure=insecure)
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    last = "no answer yet"
    while True:
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
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"the ServiceAccount {namespace}/default was not usable within {timeout:.0f}s "
                f"(is the controller-manager running?); last answer: {last}"
            )
        time.sleep(_POLL)

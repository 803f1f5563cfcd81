"""Send described requests through the fixture's attributed clients, then read what was logged.

A :class:`TrafficSession` is a :class:`~pytest_kaudit.fixture.KAudit` (the same Audit-ID
prefix, clients, log cursor and barrier the ``kaudit`` fixture uses) plus a way to send a
:class:`RequestSpec` as exactly that request. After :meth:`TrafficSession.settle`, every
request sent earlier is in the log (the barrier argument of ``not_logged``), so
:meth:`TrafficSession.events_of` returns all of a request's events, or none when the policy
does not log it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import kubernetes.client

from pytest_kaudit.backends.base import ClusterHandle, Credentials
from pytest_kaudit.client import make_client
from pytest_kaudit.events.model import AuditEvent
from pytest_kaudit.fixture import KAudit
from pytest_kaudit.policy import Policy, RequestAttributes
from pytest_kaudit.traffic.bodies import with_default_body
from pytest_kaudit.traffic.judge import Logged, disagreements, observe, predict
from pytest_kaudit.traffic.request import Identity, RequestSpec

#: Seconds one request may take (watches end by their own timeoutSeconds before this).
REQUEST_TIMEOUT = 30.0
_WORKERS = 8
_INVALID_TOKEN = "kaudit-invalid-token"  # noqa: S105 - deliberately rejected by the apiserver


@dataclass(frozen=True)
class Sent:
    """A request that was sent: its Audit-ID, HTTP status and checker attributes."""

    spec: RequestSpec
    audit_id: str
    status: int
    attributes: RequestAttributes
    impersonated: bool = False
    #: The response body, only when ``spec.keep_response`` (it may hold a credential).
    response: bytes | None = field(default=None, repr=False)

    @property
    def authorized(self) -> bool:
        """Past authentication and authorisation (the body was decoded)."""
        return self.status not in (401, 403)


@dataclass(frozen=True)
class Verdict:
    """One sent request judged: what was logged, what the engine predicted, and the events."""

    sent: Sent
    observed: Logged
    predicted: Logged | None
    events: tuple[AuditEvent, ...]

    @property
    def engine_disagreements(self) -> list[str]:
        """Empty when the real log agrees with the engine's prediction."""
        return [] if self.predicted is None else disagreements(self.predicted, self.observed)


class TrafficSession:
    """Attributed requests against one cluster, and their audit events."""

    def __init__(self, handle: ClusterHandle, policy: Policy | None, *,
                 name: str = "kaudit traffic", timeout: float = 10.0) -> None:
        self.handle = handle
        self.policy = policy
        self.kaudit = KAudit(handle, policy=policy, test_name=name, timeout=timeout)
        self._clients: dict[Identity, kubernetes.client.ApiClient] = {}
        self._extra_clients: list[kubernetes.client.ApiClient] = []
        self._lock = threading.Lock()

    # -- sending -----------------------------------------------------------------------------

    @property
    def can_mint(self) -> bool:
        """Whether requests authenticate as their user (else the admin impersonates)."""
        return self.handle.mint_credentials is not None

    def _client(self, identity: Identity) -> tuple[kubernetes.client.ApiClient, bool]:
        """The client for ``identity`` and whether it impersonates."""
        impersonates = identity.kind == "impersonated" or (
            identity.kind in ("user", "serviceaccount") and not self.can_mint)
        with self._lock:  # minting writes key and certificate files: once per identity
            api = self._clients.get(identity)
            if api is None:
                api = self._new_client(identity, impersonates=impersonates)
                self._clients[identity] = api
        return api, impersonates

    def _new_client(self, identity: Identity, *,
                    impersonates: bool) -> kubernetes.client.ApiClient:
        if identity.kind == "admin":
            api = self.kaudit.client
        elif identity.kind in ("user", "serviceaccount") and not impersonates:
            api = self.kaudit.client_for(identity.user, identity.groups)
        else:
            creds, imp = self._raw_credentials(identity, impersonates=impersonates)
            api = make_client(self.handle, creds, self.kaudit.ids,
                              user_agent="pytest-kaudit (traffic)", impersonate=imp)
            self._extra_clients.append(api)
        return api

    def _raw_credentials(self, identity: Identity, *, impersonates: bool
                         ) -> tuple[Credentials, tuple[str, tuple[str, ...]] | None]:
        if impersonates:
            return self.handle.admin, (identity.user, identity.groups)
        if identity.kind == "invalid":
            return Credentials(user="", token=_INVALID_TOKEN), None
        return Credentials(user=identity.user, groups=identity.groups), None  # anonymous

    def attributes(self, spec: RequestSpec) -> RequestAttributes:
        """The checker's view of ``spec`` as this cluster will authenticate it."""
        identity = spec.identity
        if identity.kind in ("user", "serviceaccount") and not self.can_mint:
            identity = Identity.impersonating(identity.user, identity.groups)
        return replace(spec, identity=identity).attributes(self.handle.admin)

    def send(self, spec: RequestSpec) -> Sent:
        """Send one request and return its record (HTTP errors are results, not exceptions)."""
        spec = with_default_body(spec)
        api, impersonates = self._client(spec.identity)
        audit_id = self.kaudit.ids.next_id()
        headers = {"Audit-ID": audit_id, "Accept": "application/json",
                   "User-Agent": "pytest-kaudit (traffic)"}
        if spec.has_body:
            headers["Content-Type"] = spec.content_type
        resp = api.rest_client.request(spec.method, self.handle.server + spec.url_path(),
                                       headers=headers, body=spec.encoded_body(),
                                       _request_timeout=REQUEST_TIMEOUT)  # type: ignore[no-untyped-call]
        data = resp.read()
        return Sent(spec=spec, audit_id=audit_id, status=int(resp.status),
                    attributes=self.attributes(spec), impersonated=impersonates,
                    response=bytes(data) if spec.keep_response else None)

    def send_all(self, specs: Iterable[RequestSpec], *, workers: int = _WORKERS) -> list[Sent]:
        """Send requests concurrently; the result keeps the input order."""
        items = list(specs)
        if len(items) <= 1 or workers <= 1:
            return [self.send(s) for s in items]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.send, items))

    # -- reading -----------------------------------------------------------------------------

    def settle(self) -> str:
        """Wait until every request sent so far is in the log (one barrier request)."""
        return self.kaudit.barrier(self.kaudit.default_timeout)

    def events_by_id(self) -> dict[str, list[AuditEvent]]:
        """Every event of this session's requests read so far, by auditID, in log order."""
        out: dict[str, list[AuditEvent]] = defaultdict(list)
        for event in self.kaudit.poll_events("test"):
            out[event.audit_id].append(event)
        return out

    def judge(self, sent: Sequence[Sent]) -> list[Verdict]:
        """Settle, then pair each sent request with its events and the engine's prediction."""
        self.settle()
        by_id = self.events_by_id()
        out = []
        for s in sent:
            events = tuple(by_id.get(s.audit_id, ()))
            predicted = None
            if self.policy is not None:
                predicted = predict(self.policy, s.attributes, sends_body=s.spec.has_body,
                                    status=s.status,
                                    impersonated_user=s.spec.identity.user
                                    if s.impersonated else None)
            out.append(Verdict(s, observe(events), predicted, events))
        return out

    def close(self) -> None:
        """Release every client and the log cursor."""
        for api in self._extra_clients:
            api.close()  # type: ignore[no-untyped-call]
        self.kaudit.close()

    def __enter__(self) -> TrafficSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

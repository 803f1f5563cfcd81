"""Kubernetes API clients whose every request is attributable to the test that sent it.

Each request gets an ``Audit-ID`` header ``<test prefix>-<n>``; kube-apiserver logs that value
verbatim as the event's ``auditID`` (all versions), so a test finds exactly its own events
however much background traffic the cluster has.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import kubernetes.client
import urllib3
from urllib3 import HTTPHeaderDict

from pytest_kaudit.backends.base import ClusterHandle, Credentials


@dataclass(frozen=True)
class SentRequest:
    """One request a test sent: enough to predict its audit decision."""

    audit_id: str
    method: str
    path: str  # path with query
    user: str
    groups: tuple[str, ...]
    has_body: bool
    impersonated: bool = False


class AuditIds:
    """Hands out unique Audit-IDs under one prefix and remembers the requests sent."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.sent: dict[str, SentRequest] = {}

    def next_id(self, label: str = "") -> str:
        """A fresh ID, e.g. ``kaudit-3f2a9c-7``."""
        with self._lock:
            n = next(self._counter)
        return f"{self.prefix}{label}-{n}"

    def record(self, request: SentRequest) -> None:
        """Remember a sent request by its Audit-ID."""
        self.sent[request.audit_id] = request


def _tag_requests(api_client: kubernetes.client.ApiClient, ids: AuditIds, creds: Credentials,
                  *, impersonate: tuple[str, tuple[str, ...]] | None) -> None:
    """Wrap the client's transport so each request carries a fresh Audit-ID.

    The REST client's ``request`` is the one funnel every generated API method and the watch
    helper go through, in old and new client releases alike.
    """
    rest = api_client.rest_client
    original: Callable[..., Any] = rest.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        headers = HTTPHeaderDict(kwargs.get("headers") or {})
        audit_id = headers.get("Audit-ID") or ids.next_id()
        headers["Audit-ID"] = audit_id
        if creds.token and "Authorization" not in headers:  # raw calls lack what API methods add
            headers["Authorization"] = f"Bearer {creds.token}"
        if impersonate is not None:
            headers["Impersonate-User"] = impersonate[0]
            for group in impersonate[1]:  # one header per group: the apiserver reads a list
                headers.add("Impersonate-Group", group)
        kwargs["headers"] = headers
        split = urlsplit(url)
        query = split.query or urlencode(kwargs.get("query_params") or [])
        path = split.path + (f"?{query}" if query else "")
        has_body = kwargs.get("body") is not None or (len(args) >= 3 and args[2] is not None)
        user, groups = impersonate if impersonate is not None else (creds.user, creds.groups)
        ids.record(SentRequest(audit_id, method.upper(), path, user, groups, has_body,
                               impersonated=impersonate is not None))
        return original(method, url, *args, **kwargs)

    setattr(rest, "request", request)  # noqa: B010 - shadow the bound method on this instance


class _KeptPools(urllib3.PoolManager):
    """Connections kept open across clients: a client's ``close`` (``clear``) leaves them."""

    def clear(self) -> None:
        """Kept: the :class:`Connections` that made this closes it."""

    def close_connections(self) -> None:
        super().clear()


class Connections:
    """Open HTTPS connections to one cluster, shared by every client with the same TLS set-up.

    Each test has clients of its own (its Audit-IDs, its user agent), but they send through
    connections the cluster's earlier tests opened, so a test's first request costs what any
    later one does: no new TLS context, no new handshake. Closed when the cluster stops.
    """

    def __init__(self) -> None:
        self._pools: dict[tuple[tuple[str, str], ...], _KeptPools] = {}
        self._lock = threading.Lock()

    def adopt(self, api_client: kubernetes.client.ApiClient) -> None:
        """Send ``api_client``'s requests through the shared connections for its TLS set-up."""
        rest = api_client.rest_client
        own: urllib3.PoolManager = rest.pool_manager
        if type(own) is not urllib3.PoolManager:  # a proxy's manager: left as it is
            return
        key = tuple(sorted((k, repr(v)) for k, v in own.connection_pool_kw.items()))
        with self._lock:
            if key not in self._pools:
                self._pools[key] = _KeptPools(headers=own.headers, **own.connection_pool_kw)
            rest.pool_manager = self._pools[key]

    def close(self) -> None:
        """Close every connection (the cluster is going away)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close_connections()


def make_client(handle: ClusterHandle, creds: Credentials, ids: AuditIds, *,
                user_agent: str, impersonate: tuple[str, tuple[str, ...]] | None = None,
                connections: Connections | None = None) -> kubernetes.client.ApiClient:
    """An ``ApiClient`` for ``handle`` authenticated by ``creds`` and tagging every request.

    With ``connections``, it sends through the cluster's shared connections.
    """
    cfg = kubernetes.client.Configuration()
    cfg.host = handle.server
    if handle.ca_file is not None:
        cfg.ssl_ca_cert = str(handle.ca_file)
    cfg.verify_ssl = not handle.insecure_skip_tls_verify  # no CA file: the system trust store
    if creds.cert_file is not None:
        cfg.cert_file = str(creds.cert_file)
        cfg.key_file = str(creds.key_file)
    if creds.token:
        cfg.api_key = {"authorization": f"Bearer {creds.token}"}
    client = kubernetes.client.ApiClient(cfg)
    client.user_agent = user_agent
    _tag_requests(client, ids, creds, impersonate=impersonate)
    if connections is not None:
        connections.adopt(client)
    return client

"""The plugin's own requests (namespaces and their ``default`` ServiceAccount), kept apart.

They go through a client whose Audit-IDs carry their own prefix, ``kaudit-hk-<token>-<n>``,
so they never count among a test's events, and each cluster's namespaces are made ready once
per session, not before every action.
"""

from __future__ import annotations

import time
import uuid

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from pytest_kaudit.backends._probe import service_account_admits_pods
from pytest_kaudit.backends.base import ClusterHandle
from pytest_kaudit.calls import call
from pytest_kaudit.client import AuditIds, Connections, make_client
from pytest_kaudit.errors import KauditError

#: Audit-ID prefix of every housekeeping request (see :meth:`Housekeeping.owns`).
PREFIX = "kaudit-hk-"
_POLL_INTERVAL = 0.1


class Housekeeping:
    """Readies namespaces on one cluster, as admin, under the housekeeping Audit-ID prefix."""

    def __init__(self, handle: ClusterHandle, *, timeout: float,
                 connections: Connections | None = None) -> None:
        self.handle = handle
        self._connections = connections
        self.timeout = timeout
        self.ids = AuditIds(f"{PREFIX}{uuid.uuid4().hex[:8]}")
        self._ready: set[str] = set()
        self._api: kubernetes.client.ApiClient | None = None

    @staticmethod
    def owns(audit_id: str) -> bool:
        """Whether an event's auditID is one of the plugin's housekeeping requests."""
        return audit_id.startswith(PREFIX)

    @property
    def api(self) -> kubernetes.client.ApiClient:
        """The housekeeping client (admin), created on first use."""
        if self._api is None:
            self._api = make_client(self.handle, self.handle.admin, self.ids,
                                    user_agent="pytest-kaudit housekeeping",
                                    connections=self._connections)
        return self._api

    def ensure_namespace(self, name: str) -> None:
        """Make namespace ``name`` exist with its ``default`` ServiceAccount (once per cluster).

        Where a controller creates ServiceAccounts, wait for it (a pod created before then is
        refused: ``serviceaccount "default" not found``); where none does, create it.
        """
        if name in self._ready:
            return
        try:
            call(self.api, "POST", "/api/v1/namespaces", kubernetes.client.V1Namespace,
                 body={"metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        if self.handle.service_account_controller:
            self._wait_for_default_service_account(name)
        else:
            try:
                call(self.api, "POST", f"/api/v1/namespaces/{name}/serviceaccounts",
                     kubernetes.client.V1ServiceAccount, body={"metadata": {"name": "default"}})
            except ApiException as exc:
                if exc.status != 409:
                    raise
        self._ready.add(name)

    def _wait_for_default_service_account(self, namespace: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                account = call(self.api, "GET",
                               f"/api/v1/namespaces/{namespace}/serviceaccounts/default",
                               kubernetes.client.V1ServiceAccount)
                if service_account_admits_pods(
                    has_token_secret=bool(account.secrets), version=self.handle.version
                ):
                    return
            except ApiException as exc:
                if exc.status != 404:
                    raise
            if time.monotonic() >= deadline:
                raise KauditError(
                    f'the "default" ServiceAccount of namespace {namespace} did not appear '
                    f"within {self.timeout:g}s; pods cannot be created there until it does. Is "
                    "kube-controller-manager (its ServiceAccount controller) running?")
            time.sleep(_POLL_INTERVAL)

    def forget(self, name: str) -> None:
        """Drop ``name`` from the ready set (e.g. after a test deleted the namespace)."""
        self._ready.discard(name)

    def close(self) -> None:
        """Release the client."""
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]
            self._api = None

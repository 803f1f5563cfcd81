"""The ``kaudit`` fixture's object: clients, actions, events and expectations for one test."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import kubernetes.client
import urllib3

from pytest_kaudit import actions
from pytest_kaudit.backends.base import BARRIER_USER, ClusterHandle, Credentials
from pytest_kaudit.client import AuditIds, Connections, SentRequest, make_client
from pytest_kaudit.errors import KauditError
from pytest_kaudit.events.attributes import attributes_from_event, attributes_from_fields
from pytest_kaudit.events.log import AuditLog
from pytest_kaudit.events.model import AuditEvent
from pytest_kaudit.expect.criteria import FIELDS, Criteria
from pytest_kaudit.expect.expectation import Expectation
from pytest_kaudit.expect.report import Prediction, describe_event
from pytest_kaudit.housekeeping import Housekeeping
from pytest_kaudit.policy import Decision, Level, Policy, RequestAttributes
from pytest_kaudit.policy.stages import emitted_stages

_AUTHENTICATED = "system:authenticated"
_BARRIER_PATH = "/version"
#: The filters a request we sent can be judged on before it is logged.
_REQUEST_FIELDS = ("verb", "resource", "subresource", "namespace", "name", "api_group", "user")


class KAudit:
    """One test's view of an audited cluster.

    Every request sent through :attr:`client` or :meth:`client_for` carries an Audit-ID with
    this test's prefix, and :meth:`events` / :meth:`expect` look only at those (``scope="window"``
    widens to everything logged while the test ran, e.g. kubectl calls).
    """

    def __init__(self, handle: ClusterHandle, *, policy: Policy | None, test_name: str,
                 timeout: float, housekeeping: Housekeeping | None = None,
                 connections: Connections | None = None) -> None:
        self.handle = handle
        #: The cluster's open connections, shared with the tests before and after this one.
        self._connections = connections
        #: The plugin's own requests (namespaces), kept out of this test's events; shared by
        #: every test on the cluster when the session passes one in.
        self.housekeeping = housekeeping or Housekeeping(handle, timeout=handle.spec.timeout)
        self._owns_housekeeping = housekeeping is None
        self.policy = policy
        self.default_timeout = timeout
        token = uuid.uuid4().hex[:8]
        self.token = token
        self.ids = AuditIds(f"kaudit-{token}")
        self._barrier_ids = AuditIds(f"kaudit-barrier-{token}")
        self._user_agent = f"pytest-kaudit ({test_name[-200:]})"
        self._log = AuditLog.tail(handle.log_source, mixed=handle.log_is_mixed)
        self._events: list[AuditEvent] = []
        self._clients: list[kubernetes.client.ApiClient] = []
        self._barrier_api: tuple[Credentials, kubernetes.client.ApiClient] | None = None
        self._started = time.time()

    # -- clients ---------------------------------------------------------------------------

    @cached_property
    def client(self) -> kubernetes.client.ApiClient:
        """An ``ApiClient`` acting as cluster admin (``system:masters``)."""
        return self._new_client(self.handle.admin, None)

    def client_for(self, user: str, groups: Sequence[str] = ()) -> kubernetes.client.ApiClient:
        """An ``ApiClient`` acting as ``user`` in ``groups``; RBAC denies it unless granted.

        Where the backend can mint client certificates, the client authenticates as that
        user, so the events' ``user`` is ``user``. Otherwise (``existing`` clusters) the admin
        impersonates it: ``user`` is then the admin and ``impersonated_user`` is ``user``.
        """
        groups = tuple(groups)
        if self.handle.mint_credentials is not None:
            return self._new_client(self.handle.mint_credentials(user, groups), None)
        return self._new_client(self.handle.admin, (user, groups))

    def _new_client(self, creds: Credentials,
                    impersonate: tuple[str, tuple[str, ...]] | None) -> kubernetes.client.ApiClient:
        api = make_client(self.handle, creds, self.ids, user_agent=self._user_agent,
                          impersonate=impersonate, connections=self._connections)
        self._clients.append(api)
        return api

    @cached_property
    def namespace(self) -> str:
        """A namespace of this test's own, created on first use."""
        name = f"kaudit-{self.token}"
        self.housekeeping.ensure_namespace(name)
        return name

    # -- actions ---------------------------------------------------------------------------

    def _api(self, as_user: str | None, groups: Sequence[str]) -> kubernetes.client.ApiClient:
        return self.client if as_user is None else self.client_for(as_user, groups)

    def ensure_namespace(self, name: str) -> str:
        """Make namespace ``name`` ready for use unless it is; return its name.

        Done by the plugin's housekeeping client, so none of it appears among this test's
        events, and only once per cluster: it exists, with its ``default`` ServiceAccount.
        """
        self._forget_deleted_namespaces()
        self.housekeeping.ensure_namespace(name)
        return name

    def _forget_deleted_namespaces(self) -> None:
        """Namespaces this test deleted must be made ready again before the next use."""
        for sent in self.ids.sent.values():
            parts = sent.path.split("?", 1)[0].strip("/").split("/")
            if sent.method == "DELETE" and parts[:3] == ["api", "v1", "namespaces"] \
                    and len(parts) == 4:
                self.housekeeping.forget(parts[3])

    def create_pod(self, name: str, namespace: str | None = None, *, as_user: str | None = None,
                   groups: Sequence[str] = (), **kwargs: Any) -> Any:
        """Create a pod (the namespace is created first if needed)."""
        ns = self._ns(namespace)
        return actions.create_pod(self._api(as_user, groups), name, ns, **kwargs)

    def delete_pod(self, name: str, namespace: str | None = None, *, as_user: str | None = None,
                   groups: Sequence[str] = ()) -> Any:
        """Delete a pod (with a DeleteOptions body, as kubectl sends)."""
        return actions.delete_pod(self._api(as_user, groups), name, self._ns(namespace))

    def create_secret(self, name: str, namespace: str | None = None, *,
                      string_data: dict[str, str] | None = None, as_user: str | None = None,
                      groups: Sequence[str] = ()) -> Any:
        """Create an Opaque secret."""
        return actions.create_secret(self._api(as_user, groups), name, self._ns(namespace),
                                     string_data)

    def read_secret(self, name: str, namespace: str | None = None, *, as_user: str | None = None,
                    groups: Sequence[str] = ()) -> Any:
        """Get a secret."""
        return actions.read_secret(self._api(as_user, groups), name, self._ns(namespace))

    def list_secrets(self, namespace: str | None = None, *, as_user: str | None = None,
                     groups: Sequence[str] = ()) -> Any:
        """List the secrets of a namespace."""
        return actions.list_secrets(self._api(as_user, groups), self._ns(namespace))

    def create_configmap(self, name: str, namespace: str | None = None, *,
                         data: dict[str, str] | None = None, as_user: str | None = None,
                         groups: Sequence[str] = ()) -> Any:
        """Create a ConfigMap."""
        return actions.create_configmap(self._api(as_user, groups), name, self._ns(namespace), data)

    def read_configmap(self, name: str, namespace: str | None = None, *,
                       as_user: str | None = None, groups: Sequence[str] = ()) -> Any:
        """Get a ConfigMap."""
        return actions.read_configmap(self._api(as_user, groups), name, self._ns(namespace))

    def patch_configmap(self, name: str, data: dict[str, str], namespace: str | None = None, *,
                        as_user: str | None = None, groups: Sequence[str] = ()) -> Any:
        """Merge-patch a ConfigMap's data."""
        return actions.patch_configmap(self._api(as_user, groups), name, self._ns(namespace),
                                       data)

    def list_pods(self, namespace: str | None = None, *, as_user: str | None = None,
                  groups: Sequence[str] = ()) -> Any:
        """List the pods of a namespace."""
        return actions.list_pods(self._api(as_user, groups), self._ns(namespace))

    def grant(self, user: str, verbs: Sequence[str], resources: Sequence[str], *,
              namespace: str | None = None, cluster_wide: bool = False,
              api_group: str = "") -> None:
        """Let ``user`` do ``verbs`` on ``resources`` (RBAC), so "allow" events can be tested.

        Namespaced in ``namespace`` (default: this test's), or cluster-wide.
        """
        ns = None if cluster_wide else self._ns(namespace)
        name = f"kaudit-{self.token}-{len(self.ids.sent)}"
        actions.grant(self.client, user, verbs=list(verbs), resources=list(resources),
                      namespace=ns, api_group=api_group, name=name)

    def watch(self, resource: str = "pods", namespace: str | None = None, *,
              timeout_seconds: int = 1, as_user: str | None = None,
              groups: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Watch ``resource`` until the server closes the watch after ``timeout_seconds``."""
        return actions.watch(self._api(as_user, groups), resource, self._ns(namespace),
                             timeout_seconds=timeout_seconds)

    def request(self, method: str, path: str, *, body: object = None,
                content_type: str = "application/json", as_user: str | None = None,
                groups: Sequence[str] = ()) -> int:
        """Send one request exactly as written (any verb, any path); return the HTTP status.

        For what no action covers: non-resource URLs, subresources, other kinds. A refused
        or not-found request is still audited, so its status is a result, not an error.
        """
        return actions.request(self._api(as_user, groups), method, path, body=body,
                               content_type=content_type)

    def _ns(self, namespace: str | None) -> str:
        return self.namespace if namespace is None else self.ensure_namespace(namespace)

    # -- events and expectations -------------------------------------------------------------

    def _read(self) -> None:
        self._events += self._log.poll()

    def poll_events(self, scope: str = "test") -> list[AuditEvent]:
        """Events logged so far: this test's requests (``test``) or all (``window``)."""
        self._read()
        if scope == "test":
            prefix = self.ids.prefix + "-"
            return [e for e in self._events if e.audit_id.startswith(prefix)]
        if scope == "window":
            barrier = self._barrier_ids.prefix
            return [e for e in self._events if not e.audit_id.startswith(barrier)
                    and not Housekeeping.owns(e.audit_id)]
        raise ValueError(f"scope must be 'test' or 'window', not {scope!r}")

    def events(self, *, scope: str = "test", **filters: Any) -> list[AuditEvent]:
        """Events logged so far that match ``filters`` (no waiting; see :meth:`expect`).

        Filters: verb, resource, subresource, namespace, name, api_group, user,
        impersonated_user, stage, level, code, decision, audit_id. A collection means "any of".
        """
        __tracebackhide__ = True
        criteria = Criteria.from_filters(filters)
        return [e for e in self.poll_events(scope) if criteria.match(e)]

    def expect(self, *, scope: str = "test", **filters: Any) -> Expectation:
        """An expectation over this test's events; finish it with ``.logged()`` or
        ``.not_logged()``.
        """
        __tracebackhide__ = True
        return Expectation(self, Criteria.from_filters(filters), scope=scope)

    @property
    def log_problems(self) -> list[str]:
        """Lines of the log that could not be decoded during this test."""
        return [str(p) for p in self._log.problems]

    # -- the EventWindow protocol (used by Expectation) --------------------------------------

    def barrier(self, timeout: float) -> str:
        """Send a request known to be logged and wait until its event is in the log.

        In blocking mode each event is written before its response completes, and in batch
        mode events are written in order, so once the barrier's event is visible every
        request this test sent earlier has been logged.
        """
        creds, path = self._barrier_request()
        audit_id = self._barrier_ids.next_id()
        headers = {"Audit-ID": audit_id, "User-Agent": self._user_agent}
        if creds.token:
            headers["Authorization"] = f"Bearer {creds.token}"
        # through the pool manager of a client for these credentials (its TLS set-up, the
        # cluster's shared connections), not its API methods: nothing is recorded as sent
        connection = self._barrier_client(creds).rest_client.pool_manager
        resp = connection.request("GET", self.handle.server + path, headers=headers,
                                  timeout=urllib3.Timeout(total=timeout), retries=False)
        if resp.status >= 400:
            raise KauditError(f"the barrier request {audit_id} (GET {path} as {creds.user}) "
                              f"was answered {resp.status} {resp.reason}")
        deadline = time.monotonic() + timeout
        while True:
            self._read()
            if any(e.audit_id == audit_id for e in self._events):
                return f"barrier request {audit_id} (GET {path} as {creds.user}) is in the log"
            if time.monotonic() >= deadline:
                raise KauditError(
                    f"the barrier request {audit_id} (GET {path} as {creds.user}) did not appear "
                    f"in the audit log ({self.handle.log_source.description}) within {timeout}s; "
                    "absence cannot be proven. Is the log path right and auditing enabled?"
                )
            time.sleep(0.01)

    def _barrier_client(self, creds: Credentials) -> kubernetes.client.ApiClient:
        if self._barrier_api is None or self._barrier_api[0] != creds:
            api = make_client(self.handle, creds, self._barrier_ids, user_agent=self._user_agent,
                              connections=self._connections)
            self._clients.append(api)
            self._barrier_api = (creds, api)
        return self._barrier_api[1]

    def _barrier_request(self) -> tuple[Credentials, str]:
        # GET /version is short-running: it can only ever log RequestReceived and ResponseComplete.
        emitted = emitted_stages(Level.METADATA, unauthenticated=False, long_running=False)
        if self.handle.has_barrier_rule and self.handle.mint_credentials is not None:
            if self.policy is not None and not emitted - self.policy.omit_stages:
                raise KauditError(
                    "cannot prove absence: the policy's omitStages drop both RequestReceived "
                    "and ResponseComplete for every request, so no barrier event is ever written")
            return self.handle.mint_credentials(BARRIER_USER, ()), _BARRIER_PATH
        # A cluster whose policy we do not control: use a request the policy logs.
        admin = self.handle.admin
        if self.policy is not None:
            decision = self.policy.evaluate(user=admin.user,
                                            groups=(*admin.groups, _AUTHENTICATED),
                                            verb="get", path=_BARRIER_PATH)
            if decision.level != Level.NONE and emitted - decision.omit_stages:
                return admin, _BARRIER_PATH
        raise KauditError(
            "cannot prove absence on this cluster: no barrier request is known to be logged. "
            "Give the cluster's policy with --kaudit-policy (the plugin then picks a logged "
            f"request), or make the policy log `get {_BARRIER_PATH}` by {admin.user}."
        )

    def policy_mismatches(self, events: Sequence[AuditEvent]) -> list[str]:
        """Events whose logged level differs from the policy's prediction, one line each."""
        if self.policy is None:
            return []
        out = []
        for event in events:
            decision = self.decide(event)
            if decision is not None and decision.level != event.level:
                rule = f"rules[{decision.rule_index}]" if decision.rule_index is not None \
                    else "no rule"
                out.append(f"{describe_event(event)}: the policy predicts "
                           f"{decision.level.value} ({rule})")
        return out

    def decide(self, event: AuditEvent) -> Decision | None:
        """The policy's decision for the request behind ``event``."""
        if self.policy is None:
            return None
        return self.policy.evaluate_attributes(attributes_from_event(event.raw))

    def request_had_body(self, audit_id: str) -> bool | None:
        """Whether our client sent a body with request ``audit_id``."""
        sent = self.ids.sent.get(audit_id)
        return sent.has_body if sent else None

    def attributes_of_sent(self, sent: SentRequest) -> RequestAttributes:
        """The attributes the apiserver's checker sees for a request this test sent."""
        user, groups = sent.user, sent.groups
        if sent.impersonated:  # the policy matches the authenticated caller, not the target
            user, groups = self.handle.admin.user, self.handle.admin.groups
        return RequestAttributes.from_http(sent.method, sent.path, user=user,
                                           groups=(*groups, _AUTHENTICATED))

    def predict(self, criteria: Criteria, events: Sequence[AuditEvent]) -> Prediction | None:
        """Decide the request the criteria describe: a matching request we sent, else the
        criteria.
        """
        if self.policy is None:
            return None
        for sent in self.ids.sent.values():
            attrs = self.attributes_of_sent(sent)
            if not criteria.difference(attrs, _REQUEST_FIELDS):
                words = f"{sent.method} {sent.path} by {sent.user} (auditID {sent.audit_id})"
                return self._prediction(attrs, words)
        user = criteria.get("user") or self.handle.admin.user
        groups = self.handle.admin.groups if user == self.handle.admin.user else ()
        fields = {k: criteria.get(k) or "" for k in
                  ("verb", "namespace", "resource", "subresource", "name", "api_group")}
        attrs = attributes_from_fields(user=user, groups=(*groups, _AUTHENTICATED),
                                       is_resource_request=bool(fields["resource"]), **fields)
        words = " ".join(x for x in (fields["verb"], fields["resource"],
                                     f"{fields['namespace']}/{fields['name']}".strip("/")) if x)
        return self._prediction(attrs, f"{words} by {user} (no such request was sent by this test)")

    def _prediction(self, attrs: RequestAttributes, words: str) -> Prediction:
        assert self.policy is not None
        decision = self.policy.evaluate_attributes(attrs)
        idx = decision.rule_index
        rule = self.policy.rules[idx] if idx is not None else None
        return Prediction(decision=decision, rule_summary=rule.summary() if rule else None,
                          rule_line=self.policy.rule_line(idx) if idx is not None else None,
                          policy_source=self.policy.source or "<inline policy>", request=words)

    def describe_scope(self, scope: str, count: int) -> str:
        """Where was searched, for failure messages."""
        which = (f"this test's requests (auditID {self.ids.prefix}-*)" if scope == "test"
                 else "everything logged while this test ran")
        elapsed = time.time() - self._started
        text = (f"{count} event(s) of {which} in {self.handle.log_source.description} "
                f"({self._log.bytes_read} bytes read since the test started {elapsed:.1f}s ago)")
        if self._log.problems:
            text += (f"; {len(self._log.problems)} line(s) could not be decoded "
                     "(listed in the 'kaudit audit events' report section)")
        return text

    def close(self) -> None:
        """Release clients and the log cursor."""
        self._forget_deleted_namespaces()
        for api in self._clients:
            api.close()  # type: ignore[no-untyped-call]
        if self._owns_housekeeping:
            self.housekeeping.close()
        self._log.close()

    def __repr__(self) -> str:
        return f"<KAudit {self.handle.backend}:{self.handle.name} prefix={self.ids.prefix}>"


__all__ = ["FIELDS", "KAudit"]

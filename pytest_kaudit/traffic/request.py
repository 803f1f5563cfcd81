"""A typed description of one API request: who sends it, what it targets, what body it carries.

A :class:`RequestSpec` is pure data. It knows how to become an HTTP request (method, path,
body, content type) and which attributes the apiserver's audit checker sees for it, so the
same description is both sent to a real apiserver and decided by the policy engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode

from pytest_kaudit.backends.base import Credentials
from pytest_kaudit.policy import RequestAttributes

IdentityKind = Literal["admin", "user", "serviceaccount", "anonymous", "invalid", "impersonated"]

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"

#: Verbs of resource requests and the HTTP method each is sent with.
VERB_METHODS = {
    "get": "GET", "list": "GET", "watch": "GET", "create": "POST", "update": "PUT",
    "patch": "PATCH", "delete": "DELETE", "deletecollection": "DELETE",
}
#: Verbs whose request names no object (the collection).
COLLECTION_VERBS = frozenset({"list", "watch", "deletecollection"})

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Identity:
    """Who sends a request, as the apiserver will authenticate it.

    ``admin`` is the cluster admin; ``user`` a human user (client certificate where the
    backend can mint one); ``serviceaccount`` authenticates with a service account's user name
    and groups; ``anonymous`` sends no credentials; ``invalid`` sends a token the apiserver
    rejects (401); ``impersonated`` is the admin impersonating ``user``/``groups``.
    """

    kind: IdentityKind
    user: str = ""
    groups: tuple[str, ...] = ()

    @classmethod
    def admin(cls) -> Identity:
        """The cluster admin."""
        return cls("admin")

    @classmethod
    def human(cls, user: str, groups: tuple[str, ...] = ()) -> Identity:
        """A user authenticated by its own credentials."""
        return cls("user", user, tuple(groups))

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Identity:
        """A service account: user ``system:serviceaccount:<ns>:<name>`` and its groups."""
        return cls("serviceaccount", f"system:serviceaccount:{namespace}:{name}",
                   ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"))

    @classmethod
    def anonymous(cls) -> Identity:
        """No credentials at all (``system:anonymous`` when anonymous auth is on)."""
        return cls("anonymous", ANONYMOUS_USER, (UNAUTHENTICATED,))

    @classmethod
    def invalid(cls) -> Identity:
        """A bearer token the apiserver rejects: a 401, logged with no user."""
        return cls("invalid")

    @classmethod
    def impersonating(cls, user: str, groups: tuple[str, ...] = ()) -> Identity:
        """The admin impersonating ``user``: the event records both."""
        return cls("impersonated", user, tuple(groups))

    def checker_user(self, admin: Credentials) -> tuple[str | None, tuple[str, ...]]:
        """The user and groups the audit checker matches (``None``: unauthenticated)."""
        if self.kind == "invalid":
            return None, ()
        if self.kind == "anonymous":
            return ANONYMOUS_USER, (UNAUTHENTICATED,)
        if self.kind in ("admin", "impersonated"):  # impersonation happens after auditing
            return admin.user, (*admin.groups, AUTHENTICATED)
        return self.user, (*self.groups, AUTHENTICATED)

    def describe(self) -> str:
        """``alice``, ``admin``, ``admin as alice``, ``anonymous``..."""
        if self.kind == "admin":
            return "admin"
        if self.kind == "invalid":
            return "an invalid token"
        if self.kind == "impersonated":
            return f"admin as {self.user}"
        return self.user


@dataclass(frozen=True)
class RequestSpec:
    """One request to send. Resource requests set ``resource``; others set ``path``.

    ``body`` is a JSON-able object (or text for apply patches). ``keep_response`` keeps the
    response body on the sent record, for callers that need a value the server issued.
    """

    verb: str
    resource: str = ""
    subresource: str = ""
    group: str = ""
    version: str = "v1"
    namespace: str = ""
    name: str = ""
    path: str = ""
    identity: Identity = field(default_factory=Identity.admin)
    body: Any = field(default=None, repr=False)
    content_type: str = "application/json"
    query: tuple[tuple[str, str], ...] = ()
    keep_response: bool = False
    label: str = ""

    @property
    def is_resource_request(self) -> bool:
        """True unless the request targets a non-resource path."""
        return bool(self.resource)

    @property
    def method(self) -> str:
        """The HTTP method."""
        if not self.is_resource_request:
            return self.verb.upper()
        try:
            return VERB_METHODS[self.verb]
        except KeyError:
            raise ValueError(f"unknown verb {self.verb!r} for a resource request; "
                             f"verbs are {', '.join(VERB_METHODS)}") from None

    def url_path(self) -> str:
        """Path and query, e.g. ``/api/v1/namespaces/a/secrets/s1``."""
        if not self.is_resource_request:
            return self.path
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        parts = [base]
        if self.namespace:
            parts.append(f"namespaces/{quote(self.namespace, safe='')}")
        parts.append(self.resource)
        if self.verb not in COLLECTION_VERBS and (self.verb != "create" or self.subresource):
            parts.append(quote(self.name, safe=""))
            if self.subresource:
                parts.append(self.subresource)
        query = list(self.query)
        if self.verb == "watch":
            query = [("watch", "true"), *query]
        if self.verb == "patch" and self.content_type == APPLY_PATCH:
            query.append(("fieldManager", "kaudit"))
        text = "/".join(parts)
        return f"{text}?{urlencode(query)}" if query else text

    def attributes(self, admin: Credentials) -> RequestAttributes:
        """What kube-apiserver's audit checker sees for this request."""
        user, groups = self.identity.checker_user(admin)
        return RequestAttributes.from_http(self.method, self.url_path(), user=user, groups=groups)

    @property
    def has_body(self) -> bool:
        """Whether a body is sent."""
        return self.body is not None

    def encoded_body(self) -> Any:
        """The body as the transport expects it: an object for JSON, text otherwise."""
        if self.body is None or "json" in self.content_type:
            return self.body
        return self.body if isinstance(self.body, str) else json.dumps(self.body)

    def describe(self) -> str:
        """One line: ``create secrets kaudit-a/s1 by alice``."""
        if not self.is_resource_request:
            return f"{self.verb} {self.path} by {self.identity.describe()}"
        target = f"{self.group}/{self.resource}" if self.group else self.resource
        if self.subresource:
            target += f"/{self.subresource}"
        obj = "/".join(x for x in (self.namespace, self.name) if x)
        if self.verb in COLLECTION_VERBS or (self.verb == "create" and not self.subresource):
            obj = self.namespace
        text = f"{self.verb} {target}{' ' + obj if obj else ''} by {self.identity.describe()}"
        return f"{text} ({self.label})" if self.label else text

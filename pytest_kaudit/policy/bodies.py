"""Which bodies kube-apiserver writes into a request's events (``requestObject``,
``responseObject``), given the level, the request and the stages it logs.

Each answer is ``True`` (the events carry it), ``False`` (they do not) or ``None`` (it cannot
be told from what is known). The facts, from kubernetes
``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/`` (``create.go``, ``update.go``,
``patch.go``, ``delete.go``, ``responsewriters/writers.go``) and ``pkg/audit/request.go``:

- A request body is logged at Request and above, by the handler once it has decoded the body,
  so never at RequestReceived, never for a request that failed authentication or
  authorisation (the handler never ran), never when no body was sent, and never for a body
  that could not be decoded (415). Whether a 400 was answered before or after decoding cannot
  be told.
- A response body is logged at RequestResponse for resource requests, when the answer is
  written as an object: any error answer (a Status), and a successful answer that is not a
  raw stream (a watch or a streaming subresource).
"""

from __future__ import annotations

from collections.abc import Set

from pytest_kaudit.policy.model import Level, Stage
from pytest_kaudit.policy.request import RequestAttributes

#: Subresource creates whose body kube-apiserver 1.20 cannot encode for the log (the object's
#: group differs from the resource's), so no requestObject appears even at Request level.
UNLOGGED_REQUEST_BODIES = frozenset({("", "serviceaccounts", "token")})


def request_body_logged(level: Level, attrs: RequestAttributes, stages: Set[Stage], *,
                        sends_body: bool | None, status: int | None = None,
                        authorized: bool | None = None) -> bool | None:
    """Whether the request's events carry a ``requestObject``.

    ``sends_body``: whether the client sent one (None: unknown). ``status``: the HTTP status,
    when known; without it ``authorized`` says whether the request passes authentication
    and authorisation.
    """
    if status is not None:
        authorized = status not in (401, 403)
    if level < Level.REQUEST or attrs.user is None or not stages - {Stage.REQUEST_RECEIVED}:
        return False
    if not sends_body:
        return None if sends_body is None else False
    if (attrs.api_group, attrs.resource, attrs.subresource) in UNLOGGED_REQUEST_BODIES:
        return None
    if status == 400:  # decoded or not, cannot tell
        return None
    return False if status == 415 else authorized


def response_body_logged(level: Level, attrs: RequestAttributes, stages: Set[Stage], *,
                         status: int | None = None) -> bool | None:
    """Whether the request's events carry a ``responseObject`` (``status``: when known)."""
    if (level < Level.REQUEST_RESPONSE or not attrs.is_resource_request or attrs.user is None
            or Stage.RESPONSE_COMPLETE not in stages):
        return False
    if status is not None and status >= 400:
        return True  # an error answer is a Status object, streaming or not
    if attrs.streams_response:
        return False if status is not None else None
    return True

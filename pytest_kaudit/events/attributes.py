"""The request attributes kube-apiserver's policy checker saw, recovered from a logged event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_kaudit.policy.request import RequestAttributes


def attributes_from_event(event: Mapping[str, Any]) -> RequestAttributes:
    """The checker's attributes for a logged event (user ``{}`` = unauthenticated 401)."""
    user = event.get("user") or {}
    username = user.get("username") if isinstance(user, Mapping) else None
    groups = tuple(user.get("groups") or ()) if isinstance(user, Mapping) else ()
    authenticated = bool(username or groups)
    ref = event.get("objectRef")
    verb = str(event.get("verb") or "")
    if isinstance(ref, Mapping):
        subresource = ref.get("subresource") or ""
        # The checker saw the URL: a create names no object (objectRef.name is filled in from
        # the body afterwards); a subresource create (pods/x/eviction) has it in the URL.
        name = "" if verb == "create" and not subresource else ref.get("name") or ""
        return RequestAttributes(
            user=(username or "") if authenticated else None,
            groups=groups,
            verb=verb,
            namespace=ref.get("namespace") or "",
            resource=ref.get("resource") or "",
            subresource=subresource,
            name=name,
            api_group=ref.get("apiGroup") or "",
            api_version=ref.get("apiVersion") or "",
            path=str(event.get("requestURI") or "").split("?", 1)[0],
            is_resource_request=True,
        )
    return RequestAttributes(
        user=(username or "") if authenticated else None,
        groups=groups,
        verb=verb,
        path=str(event.get("requestURI") or "").split("?", 1)[0],
        is_resource_request=False,
    )

"""The request attributes kube-apiserver's policy checker saw, recovered from a logged event.

This is the one converter from an event (or the event fields a filter names) to
:class:`~pytest_kaudit.policy.request.RequestAttributes`: the fixture, expectations, replay and
predictions all decide a logged request through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_kaudit.policy.request import RequestAttributes


def group_version(ref: Mapping[str, Any]) -> tuple[str, str]:
    """``objectRef``'s API group and version.

    v1 and v1beta1 events carry both; v1alpha1 events carry ``<group>/<version>`` in
    ``apiVersion`` and no ``apiGroup``, split here as the apiserver's own conversion does
    (kubernetes ``staging/src/k8s.io/apiserver/pkg/apis/audit/v1alpha1/conversion.go``).
    """
    group = ref.get("apiGroup") or ""
    version = ref.get("apiVersion") or ""
    if not group and "/" in version:
        group, _, version = version.partition("/")
    return group, version


def attributes_from_fields(
    *,
    user: str | None,
    groups: tuple[str, ...] = (),
    verb: str = "",
    path: str = "",
    is_resource_request: bool,
    namespace: str = "",
    resource: str = "",
    subresource: str = "",
    name: str = "",
    api_group: str = "",
    api_version: str = "",
) -> RequestAttributes:
    """The checker's attributes for a request logged with these event fields.

    ``user=None`` means the request failed authentication. The name is the one in the URL,
    which is what the checker matched: a create names no object (``objectRef.name`` is filled
    in from the body afterwards), a subresource create (``pods/x/eviction``) does.
    """
    if not is_resource_request:
        return RequestAttributes(user=user, groups=groups, verb=verb, path=path)
    return RequestAttributes(
        user=user,
        groups=groups,
        verb=verb,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name="" if verb == "create" and not subresource else name,
        api_group=api_group,
        api_version=api_version,
        path=path,
        is_resource_request=True,
    )


def attributes_from_event(event: Mapping[str, Any]) -> RequestAttributes:
    """The checker's attributes for a logged event (user ``{}`` = unauthenticated 401)."""
    user = event.get("user") or {}
    username = user.get("username") if isinstance(user, Mapping) else None
    groups = tuple(user.get("groups") or ()) if isinstance(user, Mapping) else ()
    authenticated = bool(username or groups)
    ref = event.get("objectRef")
    verb = str(event.get("verb") or "")
    who = (username or "") if authenticated else None
    path = str(event.get("requestURI") or "").split("?", 1)[0]
    if not isinstance(ref, Mapping):
        return attributes_from_fields(user=who, groups=groups, verb=verb, path=path,
                                      is_resource_request=False)
    api_group, api_version = group_version(ref)
    return attributes_from_fields(
        user=who,
        groups=groups,
        verb=verb,
        path=path,
        is_resource_request=True,
        namespace=ref.get("namespace") or "",
        resource=ref.get("resource") or "",
        subresource=ref.get("subresource") or "",
        name=ref.get("name") or "",
        api_group=api_group,
        api_version=api_version,
    )

"""Default request bodies: a minimal valid object for the kinds audit requirements touch.

The apiserver audits a request whatever its body, but a body it can decode is logged as the
``requestObject`` at Request level and above, so requirements about bodies need one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pytest_kaudit.traffic.request import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    RequestSpec,
)

#: (group, resource) -> kind, for the objects requirement packs create.
KINDS: dict[tuple[str, str], str] = {
    ("", "secrets"): "Secret",
    ("", "configmaps"): "ConfigMap",
    ("", "pods"): "Pod",
    ("", "services"): "Service",
    ("", "serviceaccounts"): "ServiceAccount",
    ("", "namespaces"): "Namespace",
    ("apps", "deployments"): "Deployment",
    ("rbac.authorization.k8s.io", "roles"): "Role",
    ("rbac.authorization.k8s.io", "clusterroles"): "ClusterRole",
    ("rbac.authorization.k8s.io", "rolebindings"): "RoleBinding",
    ("rbac.authorization.k8s.io", "clusterrolebindings"): "ClusterRoleBinding",
    ("authentication.k8s.io", "tokenreviews"): "TokenReview",
}

_POD_SPEC = {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}],
             "automountServiceAccountToken": False}
_EXTRA: dict[str, dict[str, Any]] = {
    "Secret": {"type": "Opaque", "stringData": {"key": "value"}},
    "ConfigMap": {"data": {"key": "value"}},
    "Pod": {"spec": _POD_SPEC},
    "Service": {"spec": {"ports": [{"port": 80}]}},
    "Deployment": {"spec": {"selector": {"matchLabels": {"app": "kaudit"}},
                            "template": {"metadata": {"labels": {"app": "kaudit"}},
                                         "spec": _POD_SPEC}}},
    "Role": {"rules": []},
    "ClusterRole": {"rules": []},
    "RoleBinding": {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                "name": "kaudit"}, "subjects": []},
    "ClusterRoleBinding": {"roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                       "kind": "ClusterRole", "name": "kaudit"},
                           "subjects": []},
    "TokenReview": {"spec": {"token": "kaudit-not-a-real-token"}},
}


def default_object(group: str, version: str, resource: str, name: str,
                   namespace: str, *, kind: str | None = None) -> dict[str, Any]:
    """A minimal object for ``resource`` (give ``kind`` from discovery for other resources)."""
    kind = kind or KINDS.get((group, resource)) or resource[:1].upper() + resource[1:].rstrip("s")
    api_version = f"{group}/{version}" if group else version
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": meta}
    obj.update(_EXTRA.get(kind, {}))
    return obj


def with_default_body(spec: RequestSpec) -> RequestSpec:
    """``spec`` with the body a client would send for its verb, unless it has one."""
    if spec.body is not None or not spec.is_resource_request:
        return spec
    if spec.subresource == "token" and spec.resource == "serviceaccounts" and spec.verb == "create":
        body: Any = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": {"audiences": [], "expirationSeconds": 600}}
        return replace(spec, body=body)
    if spec.subresource:
        return spec  # exec, portforward, proxy, status...: no body
    if spec.verb in ("create", "update"):
        return replace(spec, body=default_object(spec.group, spec.version, spec.resource,
                                                 spec.name or "kaudit", spec.namespace))
    if spec.verb == "patch":
        if spec.content_type == "application/json":  # not a patch type: the usual merge patch
            spec = replace(spec, content_type=MERGE_PATCH)
        if spec.content_type == JSON_PATCH:
            body = [{"op": "add", "path": "/metadata/labels", "value": {"kaudit": "check"}}]
        elif spec.content_type == APPLY_PATCH:
            obj = default_object(spec.group, spec.version, spec.resource, spec.name,
                                 spec.namespace)
            return replace(spec, body=obj)
        else:
            body = {"metadata": {"labels": {"kaudit": "check"}}}
        return replace(spec, body=body)
    return spec

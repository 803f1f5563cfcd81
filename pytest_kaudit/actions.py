"""The common API actions of audit tests, as small functions over any ``ApiClient``.

They exist so a compliance test reads like its policy ("delete webapp-pod in
prod-namespace"); the raw client always works too. Pods use a pause image and never run:
the local backend has no scheduler, and an unscheduled pod is deleted at once.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from pytest_kaudit.calls import JSON, MERGE_PATCH, call, send

PAUSE_IMAGE = "registry.k8s.io/pause:3.9"
_RBAC = "/apis/rbac.authorization.k8s.io/v1"


def _namespaced(namespace: str, resource: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/{resource}" + (f"/{name}" if name else "")


def ensure_namespace(api: k8s.ApiClient, name: str) -> None:
    """Create namespace ``name`` unless it exists (namespaces never finish deleting locally)."""
    try:
        call(api, "POST", "/api/v1/namespaces", k8s.V1Namespace, body={"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise


def create_pod(api: k8s.ApiClient, name: str, namespace: str, *, image: str = PAUSE_IMAGE,
               labels: dict[str, str] | None = None) -> k8s.V1Pod:
    """Create a one-container pod."""
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    pod = {"metadata": metadata,
           "spec": {"containers": [{"name": "main", "image": image}],
                    "automountServiceAccountToken": False}}
    return call(api, "POST", _namespaced(namespace, "pods"), k8s.V1Pod, body=pod)


def delete_pod(api: k8s.ApiClient, name: str, namespace: str) -> Any:
    """Delete a pod, sending DeleteOptions as kubectl does (so Request+ logs a request body)."""
    return call(api, "DELETE", _namespaced(namespace, "pods", name), k8s.V1Pod, body={})


def create_secret(api: k8s.ApiClient, name: str, namespace: str,
                  string_data: dict[str, str] | None = None) -> k8s.V1Secret:
    """Create an Opaque secret."""
    secret = {"metadata": {"name": name}, "stringData": string_data or {"key": "value"}}
    return call(api, "POST", _namespaced(namespace, "secrets"), k8s.V1Secret, body=secret)


def read_secret(api: k8s.ApiClient, name: str, namespace: str) -> k8s.V1Secret:
    """Get one secret."""
    return call(api, "GET", _namespaced(namespace, "secrets", name), k8s.V1Secret)


def list_secrets(api: k8s.ApiClient, namespace: str) -> k8s.V1SecretList:
    """List the secrets of a namespace."""
    return call(api, "GET", _namespaced(namespace, "secrets"), k8s.V1SecretList)


def create_configmap(api: k8s.ApiClient, name: str, namespace: str,
                     data: dict[str, str] | None = None) -> k8s.V1ConfigMap:
    """Create a ConfigMap."""
    cm = {"metadata": {"name": name}, "data": data or {"key": "value"}}
    return call(api, "POST", _namespaced(namespace, "configmaps"), k8s.V1ConfigMap, body=cm)


def read_configmap(api: k8s.ApiClient, name: str, namespace: str) -> k8s.V1ConfigMap:
    """Get one ConfigMap."""
    return call(api, "GET", _namespaced(namespace, "configmaps", name), k8s.V1ConfigMap)


def patch_configmap(api: k8s.ApiClient, name: str, namespace: str,
                    data: dict[str, str]) -> k8s.V1ConfigMap:
    """Merge-patch a ConfigMap's data (logged as a raw patch document at Request+)."""
    return call(api, "PATCH", _namespaced(namespace, "configmaps", name), k8s.V1ConfigMap,
                body={"data": data}, content_type=MERGE_PATCH)


def list_pods(api: k8s.ApiClient, namespace: str) -> k8s.V1PodList:
    """List the pods of a namespace."""
    return call(api, "GET", _namespaced(namespace, "pods"), k8s.V1PodList)


def grant(api: k8s.ApiClient, user: str, *, verbs: list[str], resources: list[str],
          namespace: str | None, api_group: str = "", name: str) -> None:
    """Allow ``user`` ``verbs`` on ``resources``: a Role + RoleBinding in ``namespace``, or a
    ClusterRole + ClusterRoleBinding when ``namespace`` is None."""
    role = {"metadata": {"name": name},
            "rules": [{"apiGroups": [api_group], "resources": resources, "verbs": verbs}]}

    def binding(role_kind: str) -> dict[str, Any]:
        return {"metadata": {"name": name},
                "subjects": [{"kind": "User", "name": user,
                              "apiGroup": "rbac.authorization.k8s.io"}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                            "name": name}}

    if namespace is None:
        call(api, "POST", f"{_RBAC}/clusterroles", k8s.V1ClusterRole, body=role)
        call(api, "POST", f"{_RBAC}/clusterrolebindings", k8s.V1ClusterRoleBinding,
             body=binding("ClusterRole"))
        return
    call(api, "POST", f"{_RBAC}/namespaces/{namespace}/roles", k8s.V1Role, body=role)
    call(api, "POST", f"{_RBAC}/namespaces/{namespace}/rolebindings", k8s.V1RoleBinding,
         body=binding("Role"))


_WATCHABLE = {
    "pods": "list_namespaced_pod",
    "secrets": "list_namespaced_secret",
    "configmaps": "list_namespaced_config_map",
    "services": "list_namespaced_service",
    "serviceaccounts": "list_namespaced_service_account",
}


def watch(api: k8s.ApiClient, resource: str, namespace: str, *,
          timeout_seconds: int = 1) -> list[dict[str, Any]]:
    """Watch ``resource`` until the server ends the watch after ``timeout_seconds``.

    The watch request carries the server-side timeout, so it ends by itself and the
    apiserver logs its ResponseComplete stage.
    """
    try:  # the watch helper drives a generated lister: CoreV1Api is loaded here, on use
        lister = getattr(k8s.CoreV1Api(api), _WATCHABLE[resource])
    except KeyError:
        raise ValueError(f"watch supports {', '.join(sorted(_WATCHABLE))}; "
                         "use kubernetes.watch.Watch with kaudit.client for others") from None
    stream = k8s_watch.Watch().stream  # type: ignore[no-untyped-call]
    return list(stream(lister, namespace, timeout_seconds=timeout_seconds))  # type: ignore[no-untyped-call]


def request(api: k8s.ApiClient, method: str, path: str, *, body: object = None,
            content_type: str = JSON) -> int:
    """Send one request exactly as written and return its HTTP status (errors included).

    The apiserver audits a request whatever it answers, so a 403 or 404 is a result here.
    """
    try:
        return send(api, method, path, body=body, content_type=content_type).status
    except ApiException as exc:  # client releases that raise on error answers
        return int(exc.status)

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

PAUSE_IMAGE = "registry.k8s.io/pause:3.9"


def ensure_namespace(api: k8s.ApiClient, name: str) -> None:
    """Create namespace ``name`` unless it exists (namespaces never finish deleting locally)."""
    try:
        k8s.CoreV1Api(api).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    except ApiException as exc:
        if exc.status != 409:
            raise


def create_pod(api: k8s.ApiClient, name: str, namespace: str, *, image: str = PAUSE_IMAGE,
               labels: dict[str, str] | None = None) -> k8s.V1Pod:
    """Create a one-container pod."""
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="main", image=image)],
                           automount_service_account_token=False),
    )
    return k8s.CoreV1Api(api).create_namespaced_pod(namespace, pod)


def delete_pod(api: k8s.ApiClient, name: str, namespace: str) -> Any:
    """Delete a pod, sending DeleteOptions as kubectl does (so Request+ logs a request body)."""
    return k8s.CoreV1Api(api).delete_namespaced_pod(name, namespace, body=k8s.V1DeleteOptions())


def create_secret(api: k8s.ApiClient, name: str, namespace: str,
                  string_data: dict[str, str] | None = None) -> k8s.V1Secret:
    """Create an Opaque secret."""
    secret = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=name),
                          string_data=string_data or {"key": "value"})
    return k8s.CoreV1Api(api).create_namespaced_secret(namespace, secret)


def read_secret(api: k8s.ApiClient, name: str, namespace: str) -> k8s.V1Secret:
    """Get one secret."""
    return k8s.CoreV1Api(api).read_namespaced_secret(name, namespace)


def list_secrets(api: k8s.ApiClient, namespace: str) -> k8s.V1SecretList:
    """List the secrets of a namespace."""
    return k8s.CoreV1Api(api).list_namespaced_secret(namespace)


def create_configmap(api: k8s.ApiClient, name: str, namespace: str,
                     data: dict[str, str] | None = None) -> k8s.V1ConfigMap:
    """Create a ConfigMap."""
    cm = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name), data=data or {"key": "value"})
    return k8s.CoreV1Api(api).create_namespaced_config_map(namespace, cm)


def read_configmap(api: k8s.ApiClient, name: str, namespace: str) -> k8s.V1ConfigMap:
    """Get one ConfigMap."""
    return k8s.CoreV1Api(api).read_namespaced_config_map(name, namespace)


def patch_configmap(api: k8s.ApiClient, name: str, namespace: str,
                    data: dict[str, str]) -> k8s.V1ConfigMap:
    """Merge-patch a ConfigMap's data (logged as a raw patch document at Request+)."""
    return k8s.CoreV1Api(api).patch_namespaced_config_map(name, namespace, {"data": data})


def list_pods(api: k8s.ApiClient, namespace: str) -> k8s.V1PodList:
    """List the pods of a namespace."""
    return k8s.CoreV1Api(api).list_namespaced_pod(namespace)


def grant(api: k8s.ApiClient, user: str, *, verbs: list[str], resources: list[str],
          namespace: str | None, api_group: str = "", name: str) -> None:
    """Allow ``user`` ``verbs`` on ``resources``: a Role + RoleBinding in ``namespace``, or a
    ClusterRole + ClusterRoleBinding when ``namespace`` is None."""
    rbac = k8s.RbacAuthorizationV1Api(api)
    rule = k8s.V1PolicyRule(api_groups=[api_group], resources=resources, verbs=verbs)
    subject = k8s.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")
    if namespace is None:
        rbac.create_cluster_role(k8s.V1ClusterRole(metadata=k8s.V1ObjectMeta(name=name),
                                                   rules=[rule]))
        rbac.create_cluster_role_binding(k8s.V1ClusterRoleBinding(
            metadata=k8s.V1ObjectMeta(name=name), subjects=[subject],
            role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                   name=name)))
        return
    rbac.create_namespaced_role(namespace, k8s.V1Role(metadata=k8s.V1ObjectMeta(name=name),
                                                      rules=[rule]))
    rbac.create_namespaced_role_binding(namespace, k8s.V1RoleBinding(
        metadata=k8s.V1ObjectMeta(name=name), subjects=[subject],
        role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name)))


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
    try:
        lister = getattr(k8s.CoreV1Api(api), _WATCHABLE[resource])
    except KeyError:
        raise ValueError(f"watch supports {', '.join(sorted(_WATCHABLE))}; "
                         "use kubernetes.watch.Watch with kaudit.client for others") from None
    stream = k8s_watch.Watch().stream  # type: ignore[no-untyped-call]
    return list(stream(lister, namespace, timeout_seconds=timeout_seconds))  # type: ignore[no-untyped-call]


def request(api: k8s.ApiClient, method: str, path: str, *, body: object = None,
            content_type: str = "application/json") -> int:
    """Send one request exactly as written and return its HTTP status (errors included).

    The apiserver audits a request whatever it answers, so a 403 or 404 is a result here.
    """
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    url = api.configuration.host + path
    try:
        response = api.rest_client.request(  # type: ignore[no-untyped-call]
            method.upper(), url, headers=headers, body=body)
    except ApiException as exc:  # client releases that raise on error answers
        return int(exc.status)
    response.read()
    return int(response.status)

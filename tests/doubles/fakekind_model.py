"""TEST DOUBLE support: how kind and kubeadm interpret a kind cluster config.

Written independently of ``pytest_kaudit.backends.kind.config`` and ``kind.kubeadm`` (a
double that shared the code under test could not catch its mistakes), from kind's sources
as summarised in docs/kind.md:

- strict decoding of the ``kind.x-k8s.io/v1alpha4`` config (unknown fields abort, like
  yaml.v3 ``KnownFields(true)``), with kind's error text and line numbers;
- the kubeadm config kind generates per kind release and node image (v1beta3 / v1beta4);
- kind's patch rules (:func:`patch_node_config`): the order cluster merge, cluster JSON 6902,
  node merge, node JSON 6902; kind-matching, silently dropped version-mismatched patches,
  RFC 7386 merge, and from kind v0.32 name-merged extraArgs on v1beta4 targets (map form
  converted for unversioned patches only) and de-duplicated certSANs on every target;
- kubeadm's decoding: type errors are fatal, unknown fields only warn;
- the kube-apiserver static pod manifest kubeadm writes from the result.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

V1BETA2 = "kubeadm.k8s.io/v1beta2"
V1BETA3 = "kubeadm.k8s.io/v1beta3"
V1BETA4 = "kubeadm.k8s.io/v1beta4"

# Default node image per kind release (docs/kind.md: kind pkg/apis/config/defaults/image.go).
DEFAULT_IMAGES = {
    (0, 20): "kindest/node:v1.27.3",
    (0, 21): "kindest/node:v1.29.1",
    (0, 22): "kindest/node:v1.29.2",
    (0, 23): "kindest/node:v1.30.0",
    (0, 24): "kindest/node:v1.31.0",
    (0, 25): "kindest/node:v1.31.2",
    (0, 26): "kindest/node:v1.32.0",
    (0, 27): "kindest/node:v1.32.2",
    (0, 28): "kindest/node:v1.33.1",
    (0, 29): "kindest/node:v1.33.1",
    (0, 30): "kindest/node:v1.34.0",
    (0, 31): "kindest/node:v1.35.0",
    (0, 32): "kindest/node:v1.36.1",
    (0, 33): "kindest/node:v1.37.0",
}


class ConfigError(Exception):
    """kind refused the config (printed as ``ERROR: failed to create cluster: …``)."""


class KubeadmError(Exception):
    """kubeadm init failed (kind prints it as a failed ``kubeadm init`` command)."""


# ----------------------------------------------------------------------------- strict schema

_STR, _BOOL, _INT = "string", "bool", "int32"
_MOUNT = (
    "Mount",
    {
        "containerPath": _STR,
        "hostPath": _STR,
        "readOnly": _BOOL,
        "selinuxRelabel": _BOOL,
        "propagation": _STR,
    },
)
_PORT = (
    "PortMapping",
    {"containerPort": _INT, "hostPort": _INT, "listenAddress": _STR, "protocol": _STR},
)
_JSON6902 = ("PatchJSON6902", {"group": _STR, "version": _STR, "kind": _STR, "patch": _STR})
_NODE = (
    "Node",
    {
        "role": _STR,
        "image": _STR,
        "labels": ("map", _STR),
        "extraMounts": ("list", _MOUNT),
        "extraPortMappings": ("list", _PORT),
        "kubeadmConfigPatches": ("list", _STR),
        "kubeadmConfigPatchesJSON6902": ("list", _JSON6902),
    },
)
_NETWORKING = (
    "Networking",
    {
        "ipFamily": _STR,
        "apiServerPort": _INT,
        "apiServerAddress": _STR,
        "podSubnet": _STR,
        "serviceSubnet": _STR,
        "disableDefaultCNI": _BOOL,
        "kubeProxyMode": _STR,
        "dnsSearch": ("list", _STR),
    },
)
_CLUSTER = (
    "Cluster",
    {
        "kind": _STR,
        "apiVersion": _STR,
        "name": _STR,
        "nodes": ("list", _NODE),
        "networking": _NETWORKING,
        "featureGates": ("map", _BOOL),
        "runtimeConfig": ("map", _STR),
        "kubeadmConfigPatches": ("list", _STR),
        "kubeadmConfigPatchesJSON6902": ("list", _JSON6902),
        "containerdConfigPatches": ("list", _STR),
        "containerdConfigPatchesJSON6902": ("list", _STR),
    },
)


def decode_kind_config(text: str) -> dict[str, Any]:
    """Decode strictly, as kind's ``encoding.Load`` does; raise ConfigError with kind's words."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"unable to decode config: {exc}") from None
    if node is None:
        return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4"}
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError("unable to decode config: not a mapping")
    if data.get("kind") != "Cluster":
        raise ConfigError(
            f'unknown kind "{data.get("kind")}" for apiVersion "{data.get("apiVersion")}"'
        )
    if data.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        raise ConfigError(f"unknown apiVersion: {data.get('apiVersion')}")
    errors: list[str] = []
    _check(node, _CLUSTER, errors)
    if errors:
        raise ConfigError(
            "unable to decode config: yaml: unmarshal errors:\n"
            + "\n".join(f"  {e}" for e in errors)
        )
    for n in data.get("nodes") or []:
        for m in n.get("extraMounts") or []:
            if m.get("propagation", "None") not in ("None", "HostToContainer", "Bidirectional"):
                raise ConfigError(
                    f"unable to decode config: unknown propagation {m['propagation']!r}"
                )
    return data


def _check(node: yaml.Node, schema: Any, errors: list[str]) -> None:
    line = node.start_mark.line + 1
    if isinstance(schema, tuple) and schema[0] in ("list", "map"):
        kind, inner = schema
        if kind == "list":
            if not isinstance(node, yaml.SequenceNode):
                errors.append(f"line {line}: cannot unmarshal {_tag(node)} into []")
                return
            for item in node.value:
                _check(item, inner, errors)
        else:
            if not isinstance(node, yaml.MappingNode):
                errors.append(f"line {line}: cannot unmarshal {_tag(node)} into map")
                return
            for _, value in node.value:
                _check(value, inner, errors)
        return
    if isinstance(schema, tuple):
        type_name, fields = schema
        if not isinstance(node, yaml.MappingNode):
            errors.append(f"line {line}: cannot unmarshal {_tag(node)} into v1alpha4.{type_name}")
            return
        for key, value in node.value:
            if key.value not in fields:
                errors.append(
                    f"line {key.start_mark.line + 1}: field {key.value} not found in "
                    f"type v1alpha4.{type_name}"
                )
                continue
            _check(value, fields[key.value], errors)
        return
    if not isinstance(node, yaml.ScalarNode):
        errors.append(f"line {line}: cannot unmarshal {_tag(node)} into {schema}")
        return
    tag = node.tag.rsplit(":", 1)[-1]
    if schema == _BOOL and tag != "bool":
        errors.append(f"line {line}: cannot unmarshal !!{tag} `{node.value}` into bool")
    if schema == _INT and tag != "int":
        errors.append(f"line {line}: cannot unmarshal !!{tag} `{node.value}` into int32")


def _tag(node: yaml.Node) -> str:
    return {"MappingNode": "!!map", "SequenceNode": "!!seq"}.get(
        type(node).__name__, f"!!{node.tag.rsplit(':', 1)[-1]}"
    )


# ----------------------------------------------------------------------------- versions


def parse_kind_version(text: str) -> tuple[int, int, int]:
    """``v0.31.0`` -> (0, 31, 0)."""
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text)
    if not m:
        raise ValueError(text)
    return int(m[1]), int(m[2]), int(m[3])


def image_version(image: str) -> tuple[int, int, int]:
    """Kubernetes version of a node image from its tag (``kindest/node:v1.31.12@sha…``)."""
    m = re.search(r":v(\d+)\.(\d+)\.(\d+)", image)
    if not m:
        raise ConfigError(
            f"cannot tell the Kubernetes version of image {image!r} (fake kind needs a vX.Y.Z tag)"
        )
    return int(m[1]), int(m[2]), int(m[3])


def kubeadm_version(kind: tuple[int, int, int], k8s: tuple[int, int, int]) -> str:
    """What kind's ``kubeadm.Config()`` picks."""
    if k8s[:2] < (1, 23):
        return V1BETA2
    if kind >= (0, 32, 0) and k8s[:2] >= (1, 36):
        return V1BETA4
    return V1BETA3


# ----------------------------------------------------------------------------- generation


def _args(api: str, values: dict[str, str]) -> Any:
    if api == V1BETA4:
        return [{"name": k, "value": v} for k, v in values.items()]
    return dict(values)


def generate_kubeadm(
    config: dict[str, Any], *, name: str, api: str, k8s: tuple[int, int, int]
) -> list[dict[str, Any]]:
    """The documents kind's template renders before patches."""
    apiserver_args = {
        "runtime-config": ",".join(
            f"{k}={v}" for k, v in (config.get("runtimeConfig") or {}).items()
        )
    }
    gates = config.get("featureGates") or {}
    if gates:
        apiserver_args["feature-gates"] = ",".join(
            f"{k}={str(v).lower()}" for k, v in sorted(gates.items())
        )
    networking = config.get("networking") or {}
    cluster = {
        "apiVersion": api,
        "kind": "ClusterConfiguration",
        "metadata": {"name": "config"},
        "kubernetesVersion": "v{}.{}.{}".format(*k8s),
        "clusterName": name,
        "controlPlaneEndpoint": f"{name}-control-plane:6443",
        "apiServer": {
            "certSANs": ["localhost", "127.0.0.1"],
            "extraArgs": _args(api, apiserver_args),
        },
        "controllerManager": {"extraArgs": _args(api, {"enable-hostpath-provisioner": "true"})},
        "scheduler": {"extraArgs": _args(api, {})},
        "networking": {
            "podSubnet": networking.get("podSubnet", "10.244.0.0/16"),
            "serviceSubnet": networking.get("serviceSubnet", "10.96.0.0/16"),
        },
    }
    init = {
        "apiVersion": api,
        "kind": "InitConfiguration",
        "metadata": {"name": "config"},
        "localAPIEndpoint": {"advertiseAddress": "172.18.0.2", "bindPort": 6443},
        "nodeRegistration": {
            "criSocket": "unix:///run/containerd/containerd.sock",
            "kubeletExtraArgs": _args(api, {"node-ip": "172.18.0.2"}),
        },
    }
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "metadata": {"name": "config"},
        "cgroupDriver": "systemd",
    }
    proxy = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "metadata": {"name": "config"},
        "mode": networking.get("kubeProxyMode", "iptables"),
    }
    return [cluster, init, kubelet, proxy]


# ----------------------------------------------------------------------------- patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _kind_merge(
    target: dict[str, Any], patch: dict[str, Any], *, kind: tuple[int, int, int]
) -> dict[str, Any]:
    """One merge patch, as kind's ``applyMergePatch`` does it.

    kind < v0.32: plain RFC 7386. kind >= v0.32 (``kubeadm_merge.go``) first walks the patch:
    ``extraArgs``/``kubeletExtraArgs`` are merged by name when the *target* is v1beta4 (an
    unversioned patch's map form is converted; a versioned patch's map form is ignored), and
    ``certSANs`` are appended without duplicates for *every* target version; both are then
    removed from the patch, and the rest is merged as RFC 7386.
    """
    if kind < (0, 32, 0):
        return merge_patch(target, patch)
    target, patch = copy.deepcopy(target), copy.deepcopy(patch)
    _walk_and_merge(target, patch, str(target.get("apiVersion", "")), patch.get("apiVersion"))
    return merge_patch(target, patch)


def _walk_and_merge(
    target: dict[str, Any], patch: dict[str, Any], target_version: str, patch_version: Any
) -> None:
    for key in list(patch):
        value = patch[key]
        if key in ("extraArgs", "kubeletExtraArgs"):
            if target_version.endswith("v1beta4"):
                target[key] = _merge_args(target.get(key), value, versioned=bool(patch_version))
                del patch[key]
            continue
        if key == "certSANs":
            sans = list(target.get(key) or []) if isinstance(target.get(key), list) else []
            for san in value if isinstance(value, list) else []:
                if san not in sans:
                    sans.append(san)
            target[key] = sans
            del patch[key]
            continue
        if isinstance(value, dict):
            inner = target.setdefault(key, {})
            if isinstance(inner, dict):
                _walk_and_merge(inner, value, target_version, patch_version)


def _merge_args(current: Any, value: Any, *, versioned: bool) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        value = [] if versioned else [{"name": k, "value": v} for k, v in value.items()]
    if isinstance(current, dict):
        items = [{"name": k, "value": v} for k, v in current.items()]
    else:
        items = [dict(a) for a in current or [] if isinstance(a, dict)]
    for arg in value if isinstance(value, list) else []:
        if not isinstance(arg, dict) or not isinstance(arg.get("name"), str):
            continue
        names = [a.get("name") for a in items]
        if arg["name"] in names:
            i = names.index(arg["name"])
            if arg.get("value") is None:
                items.pop(i)
            else:
                items[i]["value"] = arg["value"]
        elif arg.get("value") is not None:
            items.append({"name": arg["name"], "value": arg["value"]})
    return items


def _matches(doc: dict[str, Any], kind_name: Any, api_version: str, *, kind: tuple[int, ...]) -> bool:
    """kind's ``resource.matches``: same kind; apiVersion only if the patch gives one.

    Before v0.32 the apiVersion must be equal; from v0.32 (as read at kind HEAD) a patch may
    name only a group, and then any version of that group matches.
    """
    if kind_name != doc.get("kind"):
        return False
    if not api_version:
        return True
    if kind < (0, 32, 0):
        return api_version == doc.get("apiVersion")
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    p_group, _, p_version = api_version.rpartition("/")
    return group == p_group and (not p_version or version == p_version)


def apply_patches(
    docs: list[dict[str, Any]], patches: list[str], *, kind: tuple[int, int, int]
) -> list[dict[str, Any]]:
    """Merge patches, as kind's ``patch.KubeYAML`` applies them (unmatched ones are dropped)."""
    docs = copy.deepcopy(docs)
    for text in patches:
        for patch in yaml.safe_load_all(text):
            if not isinstance(patch, dict):
                continue
            for i, doc in enumerate(docs):
                if _matches(doc, patch.get("kind"), str(patch.get("apiVersion") or ""), kind=kind):
                    docs[i] = _kind_merge(doc, patch, kind=kind)
    return docs


def apply_json6902(
    docs: list[dict[str, Any]], patches: list[dict[str, Any]], *, kind: tuple[int, int, int]
) -> list[dict[str, Any]]:
    """``kubeadmConfigPatchesJSON6902``: RFC 6902 add/replace/remove/test on matching documents.

    The target's apiVersion is ``group/version`` (just ``version`` without a group). An
    operation that cannot apply fails the whole cluster creation, as in kind.
    """
    docs = copy.deepcopy(docs)
    for p in patches:
        group, version = p.get("group") or "", p.get("version") or ""
        api_version = f"{group}/{version}" if group else version
        for doc in docs:
            if not _matches(doc, p.get("kind"), api_version, kind=kind):
                continue
            for op in yaml.safe_load(p.get("patch") or "[]") or []:
                try:
                    _json_op(doc, op)
                except (KeyError, IndexError, ValueError, TypeError) as exc:
                    raise ConfigError(
                        f"failed to apply JSON 6902 patch: {op.get('op')} {op.get('path')}: "
                        f"{exc!r}"
                    ) from None
    return docs


def patch_node_config(
    docs: list[dict[str, Any]],
    config: dict[str, Any],
    node_cfg: dict[str, Any],
    *,
    kind: tuple[int, int, int],
) -> list[dict[str, Any]]:
    """A node's kubeadm config after patching, in kind's order (``getKubeadmConfig``).

    kind calls ``KubeYAML`` twice: first with the cluster's merge patches *and* the cluster's
    JSON 6902 patches, then with the node's merge and JSON 6902 patches. Within each call the
    merge patches run before the JSON 6902 ones. So the order is: cluster merge, cluster
    JSON 6902, node merge, node JSON 6902; a node merge patch overrides what a cluster
    JSON 6902 patch set.
    """
    for level in (config, node_cfg):
        docs = apply_patches(docs, list(level.get("kubeadmConfigPatches") or []), kind=kind)
        docs = apply_json6902(
            docs, list(level.get("kubeadmConfigPatchesJSON6902") or []), kind=kind
        )
    return docs


def _json_op(doc: dict[str, Any], op: dict[str, Any]) -> None:
    parts = [s.replace("~1", "/").replace("~0", "~") for s in op["path"].split("/")[1:]]
    parent: Any = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if op["op"] == "add":
        if isinstance(parent, list):
            if last == "-":
                parent.append(op["value"])
            else:
                parent.insert(int(last), op["value"])
        else:
            parent[last] = op["value"]
    elif op["op"] == "replace":
        if isinstance(parent, list):
            parent[int(last)] = op["value"]
        else:
            parent[last]  # noqa: B018 - replace needs an existing member (RFC 6902 4.3)
            parent[last] = op["value"]
    elif op["op"] == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    elif op["op"] == "test":
        found = parent[int(last)] if isinstance(parent, list) else parent[last]
        if found != op["value"]:
            raise ValueError(f"test failed: {found!r} != {op['value']!r}")
    else:
        raise ConfigError(f"fake kind: JSON6902 op {op['op']!r} not supported by the double")


# ----------------------------------------------------------------------------- kubeadm decode


def kubeadm_decode(
    docs: list[dict[str, Any]], *, k8s: tuple[int, int, int]
) -> tuple[dict[str, Any], list[str]]:
    """Decode the ClusterConfiguration as kubeadm would: (document, warnings) or KubeadmError."""
    cluster = next(d for d in docs if d.get("kind") == "ClusterConfiguration")
    api = cluster.get("apiVersion")
    if api == V1BETA3 and k8s[:2] >= (1, 37):
        raise KubeadmError(
            f'no kind "ClusterConfiguration" is registered for version "{api}" '
            f'in scheme "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"'
        )
    warnings: list[str] = []
    server = cluster.get("apiServer") or {}
    known = {"certSANs", "extraArgs", "extraVolumes", "timeoutForControlPlane", "extraEnvs"}
    for key in server:
        if key not in known:
            warnings.append(f'W1126 strict decoding error: unknown field "apiServer.{key}"')
    args = server.get("extraArgs")
    where = "Go struct field APIServer.apiServer.extraArgs"
    if api == V1BETA4:
        if isinstance(args, dict):
            raise KubeadmError(
                f"error unmarshaling JSON: while decoding JSON: json: cannot "
                f"unmarshal object into {where} of type []v1beta4.Arg"
            )
        for arg in args or []:
            if not isinstance(arg.get("value"), str):
                raise KubeadmError(
                    f"error unmarshaling JSON: while decoding JSON: json: cannot "
                    f"unmarshal {_json_type(arg.get('value'))} into Go struct "
                    "field Arg.apiServer.extraArgs.value of type string"
                )
    else:
        if isinstance(args, list):
            raise KubeadmError(
                f"error unmarshaling JSON: while decoding JSON: json: cannot "
                f"unmarshal array into {where} of type map[string]string"
            )
        for value in (args or {}).values():
            if not isinstance(value, str):
                raise KubeadmError(
                    f"error unmarshaling JSON: while decoding JSON: json: cannot "
                    f"unmarshal {_json_type(value)} into {where} of type string"
                )
    for vol in server.get("extraVolumes") or []:
        if not isinstance(vol, dict) or not vol.get("hostPath") or not vol.get("mountPath"):
            raise KubeadmError(
                f"invalid extraVolumes entry {vol!r}: hostPath and mountPath are required"
            )
        if "readOnly" in vol and not isinstance(vol["readOnly"], bool):
            raise KubeadmError(
                "error unmarshaling JSON: while decoding JSON: json: cannot "
                f"unmarshal {_json_type(vol['readOnly'])} into Go struct field "
                "HostPathMount.apiServer.extraVolumes.readOnly of type bool"
            )
    return cluster, warnings


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else "string"


def extra_args(cluster: dict[str, Any]) -> dict[str, str]:
    """``apiServer.extraArgs`` as a dict, whatever the API version."""
    args = (cluster.get("apiServer") or {}).get("extraArgs") or {}
    if isinstance(args, list):
        return {a["name"]: a["value"] for a in args}
    return dict(args)


# ----------------------------------------------------------------------------- static pod

_KUBEADM_APISERVER_FLAGS = {
    "advertise-address": "172.18.0.2",
    "allow-privileged": "true",
    "authorization-mode": "Node,RBAC",
    "client-ca-file": "/etc/kubernetes/pki/ca.crt",
    "enable-admission-plugins": "NodeRestriction",
    "enable-bootstrap-token-auth": "true",
    "etcd-servers": "https://127.0.0.1:2379",
    "secure-port": "6443",
    "service-account-issuer": "https://kubernetes.default.svc.cluster.local",
    "service-account-key-file": "/etc/kubernetes/pki/sa.pub",
    "service-account-signing-key-file": "/etc/kubernetes/pki/sa.key",
    "service-cluster-ip-range": "10.96.0.0/16",
    "tls-cert-file": "/etc/kubernetes/pki/apiserver.crt",
    "tls-private-key-file": "/etc/kubernetes/pki/apiserver.key",
}
_DEFAULT_VOLUMES = [
    ("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate"),
    ("etc-ca-certificates", "/etc/ca-certificates", "DirectoryOrCreate"),
    ("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate"),
    ("usr-local-share-ca-certificates", "/usr/local/share/ca-certificates", "DirectoryOrCreate"),
    ("usr-share-ca-certificates", "/usr/share/ca-certificates", "DirectoryOrCreate"),
]


def apiserver_manifest(cluster: dict[str, Any]) -> dict[str, Any]:
    """The static pod kubeadm writes to /etc/kubernetes/manifests/kube-apiserver.yaml."""
    flags = dict(_KUBEADM_APISERVER_FLAGS)
    flags.update(extra_args(cluster))
    mounts = [{"name": n, "mountPath": p, "readOnly": True} for n, p, _ in _DEFAULT_VOLUMES]
    volumes = [{"name": n, "hostPath": {"path": p, "type": t}} for n, p, t in _DEFAULT_VOLUMES]
    for vol in (cluster.get("apiServer") or {}).get("extraVolumes") or []:
        mounts.append(
            {
                "name": vol["name"],
                "mountPath": vol["mountPath"],
                "readOnly": bool(vol.get("readOnly", False)),
            }
        )
        volumes.append(
            {
                "name": vol["name"],
                "hostPath": {"path": vol["hostPath"], "type": vol.get("pathType", "")},
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "kube-apiserver",
            "namespace": "kube-system",
            "labels": {"component": "kube-apiserver", "tier": "control-plane"},
        },
        "spec": {
            "hostNetwork": True,
            "containers": [
                {
                    "name": "kube-apiserver",
                    "image": "registry.k8s.io/kube-apiserver",
                    "command": [
                        "kube-apiserver",
                        *(f"--{k}={v}" for k, v in sorted(flags.items())),
                    ],
                    "volumeMounts": mounts,
                }
            ],
            "volumes": volumes,
        },
    }

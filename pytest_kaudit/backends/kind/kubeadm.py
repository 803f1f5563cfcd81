"""What kind makes of its kubeadm patches: the kube-apiserver args and volumes a node ends with.

kind renders a kubeadm config per node, then patches it: the cluster's merge patches, the
cluster's JSON 6902 patches, the node's merge patches, the node's JSON 6902 patches, in that
order. Which kubeadm API version it renders depends on the kind release *and* the node
image. This module replays that for the ``ClusterConfiguration``'s ``apiServer`` section only,
so the preflight can check the flags and volumes the apiserver will really get. The facts, with
their upstream sources, are in docs/kind.md.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import yaml

V1BETA2 = "kubeadm.k8s.io/v1beta2"
V1BETA3 = "kubeadm.k8s.io/v1beta3"
V1BETA4 = "kubeadm.k8s.io/v1beta4"
#: First kind release that generates kubeadm v1beta4 (for Kubernetes >= 1.36).
KIND_V1BETA4_RELEASE = (0, 32, 0)
#: First Kubernetes minor whose kubeadm no longer reads v1beta3.
K8S_WITHOUT_V1BETA3 = (1, 37)

#: The safe loader, in C where PyYAML was built with libyaml (patches are parsed per node).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Words every message about a version-pinned patch kind skips contains (for classifying).
DROPPED = "kind silently drops it"

KindVersion = tuple[int, int, int]
K8sVersion = tuple[int, int]


def kubeadm_api_version(kind_version: KindVersion, k8s_version: K8sVersion) -> str:
    """The kubeadm config API version kind generates for a node image.

    kind < v0.32 emits v1beta3 for every Kubernetes >= 1.23; from v0.32 Kubernetes >= 1.36
    gets v1beta4 (whose ``extraArgs`` is a list of ``{name, value}``).
    """
    if k8s_version < (1, 23):
        return V1BETA2
    if kind_version >= KIND_V1BETA4_RELEASE and k8s_version >= (1, 36):
        return V1BETA4
    return V1BETA3


def unbootable_pair(kubeadm_version: str, k8s_version: K8sVersion | None) -> str | None:
    """Why kubeadm cannot read the config kind writes for this image, or None if it can.

    kind < v0.32 writes v1beta3 whatever the image; kubeadm 1.37 dropped v1beta3, so such a
    node never boots (kubeadm fails with ``no kind "ClusterConfiguration" is registered``).
    """
    if k8s_version is None or kubeadm_version != V1BETA3 or k8s_version < K8S_WITHOUT_V1BETA3:
        return None
    minor = ".".join(map(str, k8s_version))
    return (
        f"kind writes {V1BETA3} for this Kubernetes {minor} node image, but kubeadm "
        f"{'.'.join(map(str, K8S_WITHOUT_V1BETA3))}+ no longer reads {V1BETA3}: the node "
        "cannot boot. Use kind >= v0.32 (which writes v1beta4 for Kubernetes >= 1.36) or a "
        f"node image older than {'.'.join(map(str, K8S_WITHOUT_V1BETA3))}."
    )


@dataclass
class ApiServerResult:
    """The ``apiServer`` section after every patch, with where each value came from."""

    args: dict[str, object] = field(default_factory=dict)
    arg_source: dict[str, str] = field(default_factory=dict)
    volumes: list[Mapping[str, Any]] = field(default_factory=list)
    volumes_source: str = ""
    #: What kind or kubeadm would refuse or silently drop, one message each.
    problems: list[str] = field(default_factory=list)
    #: The subset of ``problems`` that no kubeadm version fixes (bad YAML, failing operations).
    input_problems: list[str] = field(default_factory=list)
    #: Patches pinned to a kubeadm version other than the generated one (kind drops them).
    dropped: list[str] = field(default_factory=list)

    def refuse(self, message: str) -> None:
        """Record input kind cannot apply at all, whatever it generates."""
        self.problems.append(message)
        self.input_problems.append(message)


@dataclass(frozen=True)
class PatchSet:
    """One level's patches (cluster or node) as kind reads them, with a label for messages."""

    where: str
    merge: Sequence[object]
    json6902: Sequence[object]


def patch_sets(config: Mapping[str, Any], node_index: int | None) -> list[PatchSet]:
    """The cluster's patches, then the node's (kind's order); ``node_index`` None = cluster only."""
    sets = [
        PatchSet(
            "",
            list(config.get("kubeadmConfigPatches") or []),
            list(config.get("kubeadmConfigPatchesJSON6902") or []),
        )
    ]
    if node_index is not None:
        node = (config.get("nodes") or [{}])[node_index]
        sets.append(
            PatchSet(
                f"nodes[{node_index}].",
                list(node.get("kubeadmConfigPatches") or []),
                list(node.get("kubeadmConfigPatchesJSON6902") or []),
            )
        )
    return sets


def template(config: Mapping[str, Any], kubeadm_version: str) -> dict[str, Any]:
    """The ClusterConfiguration kind renders before patches (the parts patches can touch)."""
    runtime = ",".join(f"{k}={v}" for k, v in sorted((config.get("runtimeConfig") or {}).items()))
    args = {"runtime-config": runtime}
    gates = config.get("featureGates") or {}
    if gates:
        args["feature-gates"] = ",".join(
            f"{k}={'true' if v else 'false'}" for k, v in sorted(gates.items())
        )
    networking = config.get("networking") or {}
    address = networking.get("apiServerAddress") or "127.0.0.1"
    return {
        "apiVersion": kubeadm_version,
        "kind": "ClusterConfiguration",
        "metadata": {"name": "config"},
        "kubernetesVersion": "",
        "clusterName": str(config.get("name") or "kind"),
        "controlPlaneEndpoint": "",
        "apiServer": {
            "certSANs": ["localhost", address],
            "extraArgs": _form(kubeadm_version, args),
        },
        "controllerManager": {"extraArgs": _form(kubeadm_version, {})},
        "scheduler": {"extraArgs": _form(kubeadm_version, {})},
        "networking": {"podSubnet": "", "serviceSubnet": ""},
    }


def _form(kubeadm_version: str, args: Mapping[str, str]) -> object:
    if kubeadm_version == V1BETA4:
        return [{"name": k, "value": v} for k, v in args.items()]
    return dict(args)


def apiserver_after_patches(
    config: Mapping[str, Any],
    node_index: int | None,
    *,
    kubeadm_version: str,
    extra_merge: Sequence[str] = (),
    match_any_version: bool = False,
    node_json6902: bool = True,
) -> ApiServerResult:
    """Replay kind's patching of one node's ClusterConfiguration; report the ``apiServer``.

    ``extra_merge`` are merge patches appended to the node's own (the one kaudit adds).
    ``match_any_version`` applies version-pinned patches too, for when the version kind
    will generate is not known yet; ``node_json6902=False`` stops before the node's JSON 6902
    patches (what is in force when kaudit's node merge patch applies).
    """
    result = ApiServerResult()
    doc = template(config, kubeadm_version)
    sets = patch_sets(config, node_index)
    if extra_merge:
        last = sets[-1]
        sets[-1] = PatchSet(last.where, [*last.merge, *extra_merge], last.json6902)
    if not node_json6902 and node_index is not None:
        sets[-1] = PatchSet(sets[-1].where, sets[-1].merge, ())
    for patch_set in sets:
        for index, text in enumerate(patch_set.merge):
            where = f"{patch_set.where}kubeadmConfigPatches[{index}]"
            doc = _apply_merge_text(
                doc, text, where, kubeadm_version, result, match_any_version=match_any_version
            )
        for index, entry in enumerate(patch_set.json6902):
            where = f"{patch_set.where}kubeadmConfigPatchesJSON6902[{index}]"
            doc = _apply_json6902(
                doc, entry, where, kubeadm_version, result, match_any_version=match_any_version
            )
    _collect(doc.get("apiServer"), kubeadm_version, result)
    return result


def _apply_merge_text(
    doc: dict[str, Any],
    text: object,
    where: str,
    kubeadm_version: str,
    result: ApiServerResult,
    *,
    match_any_version: bool,
) -> dict[str, Any]:
    if not isinstance(text, str):
        result.refuse(f"{where} is not a YAML string")
        return doc
    try:
        patches = list(yaml.load_all(text, Loader=_LOADER))
    except yaml.YAMLError as exc:
        result.refuse(f"{where} is not YAML: {exc}")
        return doc
    for patch in patches:
        if not isinstance(patch, Mapping) or patch.get("kind") != "ClusterConfiguration":
            continue
        declared = str(patch.get("apiVersion") or "")
        if declared and not match_any_version and not _version_matches(declared, kubeadm_version):
            result.dropped.append(where)
            result.problems.append(
                f"{where} declares apiVersion {declared} but kind generates {kubeadm_version} "
                f"for this node image: {DROPPED}. Remove apiVersion from the "
                "patch (unversioned patches always apply)."
            )
            continue
        before = _snapshot(doc.get("apiServer"))
        doc = _kind_merge(doc, dict(patch), kubeadm_version, declared, where, result)
        _record_sources(before, doc.get("apiServer"), where, result)
    return doc


def _version_matches(declared: str, generated: str) -> bool:
    """kind's match: same group, and same version unless the patch names only a group."""
    group, _, version = declared.rpartition("/")
    target_group, _, target_version = generated.rpartition("/")
    return group == target_group and (not version or version == target_version)


def _kind_merge(
    doc: dict[str, Any],
    patch: dict[str, Any],
    kubeadm_version: str,
    declared: str,
    where: str,
    result: ApiServerResult,
) -> dict[str, Any]:
    """One merge patch: v1beta4 extraArgs merged by name (kind >= v0.32), the rest RFC 7386."""
    patch = copy.deepcopy(patch)
    doc = copy.deepcopy(doc)
    server = patch.get("apiServer")
    if isinstance(server, Mapping) and "extraArgs" in server:
        server = dict(server)
        patch["apiServer"] = server
        value = server["extraArgs"]
        if kubeadm_version == V1BETA4:
            del server["extraArgs"]
            if isinstance(value, Mapping) and declared:
                result.problems.append(
                    f"{where} declares v1beta4 but gives extraArgs as a map: kind ignores "
                    "map-form args in a versioned v1beta4 patch."
                )
            else:
                target = doc.setdefault("apiServer", {})
                target["extraArgs"] = _merge_by_name(target.get("extraArgs"), value)
        elif isinstance(value, list):
            result.problems.append(
                f"{where} gives apiServer.extraArgs as a list, but {kubeadm_version} needs a "
                "map: kubeadm fails to decode the config."
            )
            del server["extraArgs"]
    merged = merge_patch(doc, patch)
    return merged if isinstance(merged, dict) else doc


def _merge_by_name(current: object, value: object) -> list[dict[str, object]]:
    """kind's v1beta4 extraArgs merge: same name updates, null value deletes, new name appends."""
    if isinstance(current, Mapping):
        items = [{"name": k, "value": v} for k, v in current.items()]
    else:
        existing = current if isinstance(current, list) else []
        items = [dict(a) for a in existing if isinstance(a, Mapping)]
    if isinstance(value, Mapping):
        value = [{"name": k, "value": v} for k, v in value.items()]
    for arg in value if isinstance(value, list) else []:
        if not isinstance(arg, Mapping) or not isinstance(arg.get("name"), str):
            continue
        names = [a.get("name") for a in items]
        if arg["name"] in names:
            at = names.index(arg["name"])
            if arg.get("value") is None:
                items.pop(at)
            else:
                items[at]["value"] = arg.get("value")
        elif arg.get("value") is not None:
            items.append({"name": arg["name"], "value": arg.get("value")})
    return items


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386: maps merge key by key, null deletes a key, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _apply_json6902(
    doc: dict[str, Any],
    entry: object,
    where: str,
    kubeadm_version: str,
    result: ApiServerResult,
    *,
    match_any_version: bool,
) -> dict[str, Any]:
    if not isinstance(entry, Mapping) or entry.get("kind") != "ClusterConfiguration":
        return doc
    group, version = str(entry.get("group") or ""), str(entry.get("version") or "")
    pinned = f"{group}/{version}" if group else version
    if pinned and not match_any_version and not _version_matches(pinned, kubeadm_version):
        result.dropped.append(where)
        if _touches_apiserver(entry.get("patch")):
            result.problems.append(
                f"{where} targets {pinned} but kind generates {kubeadm_version} for this node "
                f"image: {DROPPED}."
            )
        return doc
    try:
        ops = yaml.load(str(entry.get("patch") or "[]"), Loader=_LOADER) or []
    except yaml.YAMLError as exc:
        result.refuse(f"{where}: patch is not YAML: {exc}")
        return doc
    if not isinstance(ops, list):
        result.refuse(f"{where}: patch must be a list of RFC 6902 operations")
        return doc
    for number, op in enumerate(ops):
        if not isinstance(op, Mapping):
            result.refuse(f"{where}: operation {number} is not a mapping")
            return doc
        inside = _in_apiserver(op.get("path")) or _in_apiserver(op.get("from"))
        if not inside:
            continue  # cannot change the apiserver; its target may be outside our template
        before = _snapshot(doc.get("apiServer"))
        try:
            patched = jsonpatch.JsonPatch([dict(op)]).apply(doc)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            reason = str(exc).split(" in {", 1)[0]  # not the whole document
            result.refuse(
                f"{where}: operation {number} ({op.get('op')} {op.get('path')}) cannot apply "
                f"({reason}); kind stops with 'failed to apply JSON 6902 patch'"
            )
            return doc
        doc = patched if isinstance(patched, dict) else doc
        _record_sources(before, doc.get("apiServer"), where, result)
    return doc


def _in_apiserver(path: object) -> bool:
    return isinstance(path, str) and (path in ("", "/apiServer") or path.startswith("/apiServer/"))


def _touches_apiserver(text: object) -> bool:
    return isinstance(text, str) and "/apiServer" in text


def _snapshot(server: object) -> tuple[dict[str, object], object]:
    server = server if isinstance(server, Mapping) else {}
    return _as_dict(server.get("extraArgs")), copy.deepcopy(server.get("extraVolumes"))


def _as_dict(args: object) -> dict[str, object]:
    if isinstance(args, Mapping):
        return {str(k): v for k, v in args.items()}
    if isinstance(args, list):
        return {
            str(a.get("name")): a.get("value") for a in args if isinstance(a, Mapping)
        }
    return {}


def _record_sources(
    before: tuple[dict[str, object], object], server: object, where: str, result: ApiServerResult
) -> None:
    args, volumes = _snapshot(server)
    for name, value in args.items():
        if before[0].get(name, _MISSING) != value:
            result.arg_source[name] = where
    if volumes != before[1]:
        result.volumes_source = where


_MISSING = object()


def _collect(server: object, kubeadm_version: str, result: ApiServerResult) -> None:
    """The final args and volumes, plus what kubeadm would refuse to decode."""
    if not isinstance(server, Mapping):
        return
    args = server.get("extraArgs")
    if kubeadm_version == V1BETA4 and isinstance(args, Mapping):
        result.problems.append(
            f"apiServer.extraArgs ends up a map, but {V1BETA4} needs a list of {{name, value}}: "
            "kubeadm fails to decode the config."
        )
    result.args = _as_dict(args)
    for name, value in result.args.items():
        if not isinstance(value, str):
            where = result.arg_source.get(name, "a kubeadm patch")
            result.problems.append(
                f"{where}: extraArgs {name}: {value!r} is not a string; kubeadm rejects it "
                '(quote it, e.g. "100").'
            )
    volumes = server.get("extraVolumes") or []
    if isinstance(volumes, list) and all(isinstance(v, Mapping) for v in volumes):
        result.volumes = list(volumes)
    else:
        result.refuse(
            f"{result.volumes_source or 'a kubeadm patch'}: apiServer.extraVolumes must be a "
            "list of mappings"
        )

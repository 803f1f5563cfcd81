"""Generate the kind cluster config that boots kube-apiserver with an audit policy.

Pure functions only: no processes, no files. The generated config uses the one spelling that
works with every kind release from v0.20 and every node image from 1.27 (see
docs/cluster-mechanics.md §1): an **unversioned** ``ClusterConfiguration`` patch with
``apiServer.extraArgs`` as a map of quoted strings, ``extraVolumes`` as a list, and host
*directories* (not single files) mounted into the control-plane node, so a policy rewritten
on the host by rename is seen by the node.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_kaudit.backends.base import BARRIER_USER, owned_policy_document

if TYPE_CHECKING:
    from pytest_kaudit.backends.base import ClusterSpec
    from pytest_kaudit.policy import Policy

#: Where the policy directory appears, identically, in the node and in the apiserver pod.
NODE_POLICY_DIR = "/etc/kubernetes/kaudit"
#: Where the audit log directory appears, identically, in the node and in the apiserver pod.
NODE_LOG_DIR = "/var/log/kubernetes/kaudit"
POLICY_FILE = "policy.yaml"
LOG_FILE = "audit.log"
#: Metadata file next to the policy: the config key a cluster was created for (for reuse).
META_FILE = "kaudit.json"
NODE_POLICY_PATH = f"{NODE_POLICY_DIR}/{POLICY_FILE}"
NODE_LOG_PATH = f"{NODE_LOG_DIR}/{LOG_FILE}"
#: Prefix of every cluster this plugin names itself; used to find clusters of crashed runs.
CLUSTER_PREFIX = "kaudit-"
#: Path of the generation probe; see :func:`generation_rule`.
GENERATION_PATH_PREFIX = "/kaudit-generation/"

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"
MIN_KIND_VERSION = (0, 20, 0)
#: First kind release that generates kubeadm v1beta4 (for Kubernetes >= 1.36).
KIND_V1BETA4_RELEASE = (0, 32, 0)

#: Default node image (Kubernetes minor) of each kind release; [src] defaults/image.go.
DEFAULT_NODE_VERSION: dict[tuple[int, int], tuple[int, int]] = {
    (0, 20): (1, 27),
    (0, 21): (1, 29),
    (0, 22): (1, 29),
    (0, 23): (1, 30),
    (0, 24): (1, 31),
    (0, 25): (1, 31),
    (0, 26): (1, 32),
    (0, 27): (1, 32),
    (0, 28): (1, 33),
    (0, 29): (1, 33),
    (0, 30): (1, 34),
    (0, 31): (1, 35),
    (0, 32): (1, 36),
    (0, 33): (1, 37),
}

_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
_IMAGE_TAG_RE = re.compile(r":v(\d+)\.(\d+)(?:\.(\d+))?")
_NAME_RE = re.compile(r"^[a-z0-9.-]+$")


@dataclass(frozen=True)
class HostDirs:
    """The two host directories mounted into the node: policy (read-only) and log."""

    policy_dir: Path
    log_dir: Path

    @property
    def policy_file(self) -> Path:
        """Host path of the policy file the apiserver reads."""
        return self.policy_dir / POLICY_FILE

    @property
    def log_file(self) -> Path:
        """Host path of the audit log the apiserver appends to."""
        return self.log_dir / LOG_FILE


def parse_kind_version(text: str) -> tuple[int, int, int]:
    """Parse ``kind version`` output (``kind v0.31.0 go1.25.5 linux/amd64``) or a bare tag."""
    match = _VERSION_RE.search(text.replace("kind ", "", 1))
    if match is None:
        raise ValueError(f"cannot find a version in {text!r}")
    return int(match[1]), int(match[2]), int(match[3] or 0)


def node_image_version(image: str | None) -> tuple[int, int] | None:
    """Kubernetes (major, minor) of a node image tag like ``kindest/node:v1.31.12@sha256:…``."""
    if not image:
        return None
    match = _IMAGE_TAG_RE.search(image)
    return (int(match[1]), int(match[2])) if match else None


def default_node_version(kind_version: tuple[int, int, int]) -> tuple[int, int] | None:
    """Kubernetes minor of the default node image of a kind release, if known."""
    key = kind_version[:2]
    if key in DEFAULT_NODE_VERSION:
        return DEFAULT_NODE_VERSION[key]
    if key > max(DEFAULT_NODE_VERSION):
        return None  # newer than we know: no guess
    return None


def kubeadm_api_version(kind_version: tuple[int, int, int], k8s_version: tuple[int, int]) -> str:
    """The kubeadm config API version kind generates for a node image ([src] kubeadm/config.go).

    kind < v0.32 emits v1beta3 for every Kubernetes >= 1.23; from v0.32 Kubernetes >= 1.36
    gets v1beta4 (whose ``extraArgs`` is a list of ``{name, value}``).
    """
    if k8s_version < (1, 23):
        return "kubeadm.k8s.io/v1beta2"
    if kind_version >= KIND_V1BETA4_RELEASE and k8s_version >= (1, 36):
        return "kubeadm.k8s.io/v1beta4"
    return "kubeadm.k8s.io/v1beta3"


def generation_rule(generation: str) -> dict[str, object]:
    """A rule that logs one probe path at level Request, placed before the barrier rule.

    Every policy we write logs all of :data:`BARRIER_USER`'s requests at Metadata, so a plain
    barrier event cannot tell an old policy from a new one. The probe of *this* generation is
    logged at ``Request`` only by the policy that carries this rule: an event with that level
    proves the apiserver loaded this exact policy file.
    """
    return {
        "level": "Request",
        "users": [BARRIER_USER],
        "nonResourceURLs": [generation_path(generation)],
    }


def generation_path(generation: str) -> str:
    """The non-resource URL of the generation probe."""
    return f"{GENERATION_PATH_PREFIX}{generation}"


def policy_document(policy: Policy, generation: str) -> dict[str, object]:
    """The policy file content for an owned cluster: generation rule, barrier rule, user rules."""
    document = owned_policy_document(policy)
    rules = list(document.get("rules") or [])  # type: ignore[call-overload]
    document["rules"] = [generation_rule(generation), *rules]
    return document


def policy_generation(spec: ClusterSpec) -> str:
    """Short, stable id of a policy: changes whenever the policy text changes."""
    text = spec.policy.text if spec.policy is not None else ""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def render_policy(spec: ClusterSpec) -> str:
    """YAML of the policy file written for ``spec`` (with the generation and barrier rules).

    A spec without a policy gets an empty file: the apiserver then runs without auditing.
    """
    if spec.policy is None:
        return ""
    document = policy_document(spec.policy, policy_generation(spec))
    return str(yaml.safe_dump(document, sort_keys=False))


def apiserver_args(flags: Mapping[str, str], *, audit: bool = True) -> dict[str, str]:
    """The extraArgs map: our audit flags, then the user's flags (which win), all strings.

    ``audit=False`` (a spec without a policy) leaves ``--audit-policy-file`` out, as the
    local backend does: the apiserver then audits nothing.
    """
    args = {"audit-policy-file": NODE_POLICY_PATH, "audit-log-path": NODE_LOG_PATH}
    if not audit:
        del args["audit-policy-file"]
    for name, value in flags.items():
        args[name.lstrip("-")] = _as_flag_string(value)
    return args


def _as_flag_string(value: object) -> str:
    """kubeadm wants every extraArgs value as a string; YAML ``true``/``100`` are not."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cluster_patch(
    flags: Mapping[str, str],
    *,
    audit: bool = True,
    volumes: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The unversioned ClusterConfiguration patch (the portable spelling).

    ``volumes`` are the user's own ``apiServer.extraVolumes``, kept ahead of ours: kind
    applies patches as RFC 7386 merge patches, where our list would replace theirs whole.
    """
    patch = {
        "kind": "ClusterConfiguration",
        "apiServer": {
            "extraArgs": apiserver_args(flags, audit=audit),
            "extraVolumes": [
                *(dict(v) for v in volumes),
                {
                    "name": "kaudit-policy",
                    "hostPath": NODE_POLICY_DIR,
                    "mountPath": NODE_POLICY_DIR,
                    "readOnly": True,
                    "pathType": "DirectoryOrCreate",
                },
                {
                    "name": "kaudit-log",
                    "hostPath": NODE_LOG_DIR,
                    "mountPath": NODE_LOG_DIR,
                    "readOnly": False,
                    "pathType": "DirectoryOrCreate",
                },
            ],
        },
    }
    return str(yaml.dump(patch, Dumper=_QuotingDumper, sort_keys=False))


class _QuotingDumper(yaml.SafeDumper):
    """Dumps every string scalar quoted, so ``"100"`` never turns into a YAML integer."""


def _quoted_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_QuotingDumper.add_representer(str, _quoted_str)


def _mounts(dirs: HostDirs) -> list[dict[str, object]]:
    return [
        {"hostPath": str(dirs.policy_dir), "containerPath": NODE_POLICY_DIR, "readOnly": True},
        {"hostPath": str(dirs.log_dir), "containerPath": NODE_LOG_DIR},
    ]


def build_kind_config(
    *,
    name: str,
    flags: Mapping[str, str],
    dirs: HostDirs,
    node_image: str | None = None,
    base_config: Mapping[str, Any] | None = None,
    audit: bool = True,
) -> dict[str, Any]:
    """Build the kind Cluster config as a dict, merged over the user's ``base_config``.

    The user's config keeps its own nodes, mounts, ports, feature gates and patches; we add our
    mounts and patch to every control-plane node (one is created if there is none: joining
    control planes run the same apiserver manifest), and set the image on them when
    ``node_image`` is given. The user's own ``apiServer.extraVolumes`` are carried into our
    patch (a merge patch replaces lists). Raises ValueError for a base config kind rejects.
    """
    config: dict[str, Any] = copy.deepcopy(dict(base_config)) if base_config else {}
    for key, expected in (("kind", "Cluster"), ("apiVersion", KIND_API_VERSION)):
        found = config.setdefault(key, expected)
        if found != expected:
            raise ValueError(f"base kind config has {key}: {found!r}, kind needs {expected!r}")
    config["name"] = name
    nodes = config.setdefault("nodes", [])
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        raise ValueError("base kind config: nodes must be a list of mappings")
    controls = [n for n in nodes if n.get("role", "control-plane") == "control-plane"]
    if not controls:
        controls = [{"role": "control-plane"}]
        nodes.insert(0, controls[0])
    cluster_patches = _patch_list(config, "kubeadmConfigPatches", "base kind config")
    _refuse_volume_json_patches(config)
    for index, control in enumerate(nodes):
        if not any(control is c for c in controls):
            continue
        where = f"base kind config nodes[{index}]"
        control.setdefault("role", "control-plane")
        if node_image:
            control["image"] = node_image
        mounts = control.setdefault("extraMounts", [])
        taken = {m.get("containerPath") for m in mounts}
        clash = taken & {NODE_POLICY_DIR, NODE_LOG_DIR}
        if clash:
            raise ValueError(f"base kind config already mounts {sorted(clash)}, which kaudit owns")
        mounts.extend(_mounts(dirs))
        own = _patch_list(control, "kubeadmConfigPatches", where)
        volumes = _user_volumes(
            [("base kind config", i, t) for i, t in enumerate(cluster_patches)]
            + [(where, i, t) for i, t in enumerate(own)]
        )
        control["kubeadmConfigPatches"] = [
            *own, cluster_patch(flags, audit=audit, volumes=volumes)
        ]
    return config


def _patch_list(section: Mapping[str, Any], key: str, where: str) -> list[str]:
    patches = section.get(key) or []
    if not isinstance(patches, list) or not all(isinstance(p, str) for p in patches):
        raise ValueError(f"{where}: {key} must be a list of YAML strings")
    return list(patches)


def _user_volumes(patches: Sequence[tuple[str, int, str]]) -> list[Mapping[str, Any]]:
    """The ``apiServer.extraVolumes`` the user's patches leave in force before ours.

    kind applies cluster-level patches, then the node's, each as an RFC 7386 merge patch:
    the last ClusterConfiguration patch that sets the list decides it.

    Raises:
        ValueError: a patch is not YAML, or a user volume takes a name or path kaudit owns.
    """
    volumes: list[Mapping[str, Any]] = []
    source = ""
    for where, index, text in patches:
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise ValueError(f"{where} kubeadmConfigPatches[{index}] is not YAML: {exc}") from None
        for doc in docs:
            if not isinstance(doc, Mapping) or doc.get("kind") != "ClusterConfiguration":
                continue
            server = doc.get("apiServer")
            if isinstance(server, Mapping) and "extraVolumes" in server:
                found = server["extraVolumes"] or []
                if not isinstance(found, list) or not all(isinstance(v, Mapping) for v in found):
                    raise ValueError(
                        f"{where} kubeadmConfigPatches[{index}]: apiServer.extraVolumes must "
                        "be a list of mappings"
                    )
                volumes, source = list(found), f"{where} kubeadmConfigPatches[{index}]"
    ours = {"kaudit-policy", "kaudit-log"}
    for volume in volumes:
        mount = str(volume.get("mountPath") or "").rstrip("/")
        if volume.get("name") in ours or mount in (NODE_POLICY_DIR, NODE_LOG_DIR):
            raise ValueError(
                f"{source}: apiServer.extraVolumes entry {volume.get('name')!r} takes a name "
                f"or mountPath kaudit owns ({sorted(ours)}, {NODE_POLICY_DIR}, {NODE_LOG_DIR})"
            )
    return volumes


def _refuse_volume_json_patches(config: Mapping[str, Any]) -> None:
    """Cluster-level JSON 6902 patches run before our node patch, which replaces the list."""
    for index, patch in enumerate(config.get("kubeadmConfigPatchesJSON6902") or []):
        ops = patch.get("patch") if isinstance(patch, Mapping) else None
        if isinstance(ops, str) and "extraVolumes" in ops:
            raise ValueError(
                f"base kind config kubeadmConfigPatchesJSON6902[{index}] changes "
                "apiServer.extraVolumes, which kaudit's ClusterConfiguration patch replaces "
                "as a whole; move those volumes into an apiServer.extraVolumes list of a "
                "kubeadmConfigPatches entry (kaudit keeps them) or into the node's "
                "kubeadmConfigPatchesJSON6902"
            )


def dump_kind_config(config: Mapping[str, Any]) -> str:
    """YAML text of a kind config, in a stable order, patches as block literals."""
    return str(yaml.dump(dict(config), Dumper=_ConfigDumper, sort_keys=False))


class _ConfigDumper(yaml.SafeDumper):
    """Plain YAML, but multi-line strings (the kubeadm patches) as ``|`` blocks."""


def _block_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ConfigDumper.add_representer(str, _block_str)


def config_key(
    spec: ClusterSpec, *, node_image: str | None, base_config: Mapping[str, Any] | None
) -> str:
    """Identity of a whole cluster configuration; equal keys may reuse one cluster."""
    blob = json.dumps(
        {"spec": spec.key, "image": node_image or "", "base": base_config or {}},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_cluster_name(spec: ClusterSpec, *, unique: str | None = None) -> str:
    """``kaudit-<key>`` (shared by equal specs, for reuse) or ``kaudit-<key>-<unique>``."""
    name = f"{CLUSTER_PREFIX}{spec.key[:10]}"
    return f"{name}-{unique}" if unique else name


def check_cluster_name(name: str) -> None:
    """Reject names kind would reject, before spending a boot on them."""
    if not _NAME_RE.match(name):
        raise ValueError(f"kind cluster name {name!r} must match ^[a-z0-9.-]+$")


def render_kind_config(
    spec: ClusterSpec,
    *,
    host_dir: Path,
    name: str | None = None,
    node_image: str | None = None,
    base_config: Mapping[str, Any] | None = None,
) -> str:
    """The kind config YAML the kind backend would use for ``spec``, for users to inspect or reuse.

    ``host_dir`` is where the policy (``host_dir/policy/policy.yaml``) and log
    (``host_dir/log/audit.log``) live on the host; write the policy there with
    :func:`render_policy` before running ``kind create cluster --config``.
    """
    dirs = host_dirs(host_dir)
    config = build_kind_config(
        name=name or default_cluster_name(spec),
        flags=spec.flags,
        dirs=dirs,
        node_image=node_image,
        base_config=base_config,
        audit=spec.policy is not None,
    )
    return dump_kind_config(config)


def host_dirs(root: Path) -> HostDirs:
    """The policy and log directories under one cluster directory (absolute paths)."""
    root = root.absolute()
    return HostDirs(policy_dir=root / "policy", log_dir=root / "log")


# --------------------------------------------------------------------------- preflight checks


def check_kind_config(
    config: Mapping[str, Any],
    *,
    dirs: HostDirs,
    kubeadm_version: str,
    audit: bool = True,
) -> list[str]:
    """Static checks of a (possibly user-edited) config: do policy and log reach the apiserver?

    Follows each file from the apiserver flag, through ``extraVolumes`` (pod → node) and
    ``extraMounts`` (node → host), the way kubeadm and kind would; returns one message per
    problem (empty list = wired correctly). Catches the mistakes that otherwise cost a
    minute-long boot that ends in a crash loop or a silent, empty audit log. Every
    control-plane node is checked (each runs an apiserver); with several, each message
    names its node.
    """
    nodes = [
        (index, n)
        for index, n in enumerate(config.get("nodes") or [{}])
        if n.get("role", "control-plane") == "control-plane"
    ]
    if not nodes:
        return ["the config has no control-plane node"]
    problems: list[str] = []
    for index, node in nodes:
        prefix = f"control-plane nodes[{index}]: " if len(nodes) > 1 else ""
        problems += [
            prefix + problem
            for problem in _check_node(
                config, node, dirs=dirs, kubeadm_version=kubeadm_version, audit=audit
            )
        ]
    return problems


def _check_node(
    config: Mapping[str, Any],
    node: Mapping[str, Any],
    *,
    dirs: HostDirs,
    kubeadm_version: str,
    audit: bool,
) -> list[str]:
    """:func:`check_kind_config` for one control-plane node."""
    problems: list[str] = []
    patches = [
        *(config.get("kubeadmConfigPatches") or []),
        *(node.get("kubeadmConfigPatches") or []),
    ]
    args: dict[str, str] = {}
    volumes: list[Mapping[str, Any]] = []
    for index, text in enumerate(patches):
        for doc in yaml.safe_load_all(text) or []:
            if not isinstance(doc, Mapping) or doc.get("kind") != "ClusterConfiguration":
                continue
            declared = doc.get("apiVersion")
            if declared and declared != kubeadm_version:
                problems.append(
                    f"kubeadmConfigPatches[{index}] declares apiVersion {declared} but kind "
                    f"generates {kubeadm_version} for this node image: kind silently drops it. "
                    "Remove apiVersion from the patch (unversioned patches always apply)."
                )
                continue
            server = doc.get("apiServer") or {}
            extra = server.get("extraArgs")
            if isinstance(extra, list):
                if kubeadm_version != "kubeadm.k8s.io/v1beta4":
                    problems.append(
                        f"kubeadmConfigPatches[{index}] gives apiServer.extraArgs as a list, "
                        f"but {kubeadm_version} needs a map: kubeadm fails to decode the config."
                    )
                    continue
                extra = {a.get("name"): a.get("value") for a in extra if isinstance(a, Mapping)}
            elif isinstance(extra, Mapping) and declared == "kubeadm.k8s.io/v1beta4":
                problems.append(
                    f"kubeadmConfigPatches[{index}] declares v1beta4 but gives extraArgs as a "
                    "map: kind ignores map-form args in a versioned v1beta4 patch."
                )
                continue
            for key, value in (extra or {}).items():
                if not isinstance(value, str):
                    problems.append(
                        f"kubeadmConfigPatches[{index}]: extraArgs {key}: {value!r} is not a "
                        'string; kubeadm rejects it (quote it, e.g. "100").'
                    )
                args[str(key)] = str(value)
            volumes = list(server.get("extraVolumes") or volumes)
    mounts = list(node.get("extraMounts") or [])
    for flag, want_host in (
        ("audit-policy-file", dirs.policy_file),
        ("audit-log-path", dirs.log_file),
    ):
        pod_path = args.get(flag)
        if pod_path is None and not audit:
            continue
        if pod_path is None:
            problems.append(f"no kubeadm patch sets --{flag}: the apiserver would not audit")
            continue
        if flag == "audit-log-path" and pod_path == "-":
            continue
        host = _resolve_to_host(pod_path, volumes, mounts)
        if host is None:
            problems.append(
                f"--{flag}={pod_path} does not reach the host: no apiServer.extraVolumes entry "
                "covers it with a node path that an extraMounts entry of the control-plane "
                "node maps to a host directory"
            )
        elif Path(host) != want_host:
            problems.append(f"--{flag}={pod_path} resolves to host {host}, expected {want_host}")
    return problems


def _resolve_to_host(
    pod_path: str, volumes: Sequence[Mapping[str, Any]], mounts: Sequence[Mapping[str, Any]]
) -> str | None:
    node_path = _through(pod_path, volumes, "mountPath", "hostPath")
    if node_path is None:
        return None
    return _through(node_path, mounts, "containerPath", "hostPath")


def _through(path: str, entries: Sequence[Mapping[str, Any]], inner: str, outer: str) -> str | None:
    """Map ``path`` through the longest ``inner``→``outer`` prefix among ``entries``."""
    best: tuple[int, str] | None = None
    for entry in entries:
        prefix = str(entry.get(inner) or "").rstrip("/")
        if not prefix or not (path == prefix or path.startswith(prefix + "/")):
            continue
        if best is None or len(prefix) > best[0]:
            best = (len(prefix), str(entry.get(outer) or "").rstrip("/") + path[len(prefix) :])
    return best[1] if best else None


ConfigTransform = Callable[[dict[str, Any]], dict[str, Any]]

"""Generate the kind cluster config that boots kube-apiserver with an audit policy.

Pure functions only: no processes, no files. The generated config uses the one spelling that
works with every kind release from v0.20 and every node image from 1.27 (see docs/kind.md):
an **unversioned** ``ClusterConfiguration`` patch with
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

from pytest_kaudit.backends._owned import GENERATION_PATH_PREFIX as GENERATION_PATH_PREFIX
from pytest_kaudit.backends._owned import LOG_FILE as LOG_FILE
from pytest_kaudit.backends._owned import POLICY_FILE as POLICY_FILE
from pytest_kaudit.backends._owned import generation_path as generation_path
from pytest_kaudit.backends._owned import generation_rule as generation_rule
from pytest_kaudit.backends._owned import image_tag_version
from pytest_kaudit.backends._owned import policy_document as policy_document
from pytest_kaudit.backends._owned import policy_generation as policy_generation
from pytest_kaudit.backends._owned import render_policy as render_policy
from pytest_kaudit.backends.kind.kubeadm import (
    DROPPED,
    K8S_WITHOUT_V1BETA3,
    V1BETA3,
    V1BETA4,
    apiserver_after_patches,
    unbootable_pair,
)
from pytest_kaudit.backends.kind.kubeadm import KIND_V1BETA4_RELEASE as KIND_V1BETA4_RELEASE
from pytest_kaudit.backends.kind.kubeadm import kubeadm_api_version as kubeadm_api_version
from pytest_kaudit.backends.kind.schema import entry_line
from pytest_kaudit.policy.flags import validate_flags
from pytest_kaudit.policy.problems import Problem, Severity

if TYPE_CHECKING:
    from pytest_kaudit.backends.base import ClusterSpec

#: Where the policy directory appears, identically, in the node and in the apiserver pod.
NODE_POLICY_DIR = "/etc/kubernetes/kaudit"
#: Where the audit log directory appears, identically, in the node and in the apiserver pod.
NODE_LOG_DIR = "/var/log/kubernetes/kaudit"
#: Metadata file next to the policy: the config key a cluster was created for (for reuse).
META_FILE = "kaudit.json"
NODE_POLICY_PATH = f"{NODE_POLICY_DIR}/{POLICY_FILE}"
NODE_LOG_PATH = f"{NODE_LOG_DIR}/{LOG_FILE}"
#: Prefix of every cluster this plugin names itself; used to find clusters of crashed runs.
CLUSTER_PREFIX = "kaudit-"

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"
MIN_KIND_VERSION = (0, 20, 0)

#: Default node image (Kubernetes minor) of each kind release (docs/kind.md, Node images).
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
_NAME_RE = re.compile(r"^[a-z0-9.-]+$")

#: Kubernetes (major, minor) of a node image tag like ``kindest/node:v1.31.12@sha256:…``.
node_image_version = image_tag_version


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


def default_node_version(kind_version: tuple[int, int, int]) -> tuple[int, int] | None:
    """Kubernetes minor of the default node image of a kind release, if known."""
    key = kind_version[:2]
    if key in DEFAULT_NODE_VERSION:
        return DEFAULT_NODE_VERSION[key]
    if key > max(DEFAULT_NODE_VERSION):
        return None  # newer than we know: no guess
    return None


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
    kubeadm_version: str | None = None,
) -> dict[str, Any]:
    """Build the kind Cluster config as a dict, merged over the user's ``base_config``.

    The user's config keeps its own nodes, mounts, ports, feature gates and patches; we add our
    mounts and patch to every control-plane node (one is created if there is none: joining
    control planes run the same apiserver manifest). ``node_image`` goes on *every* node,
    workers too: a node without an image gets kind's default, whose Kubernetes version is not
    the control plane's. The ``apiServer.extraVolumes`` the user's patches leave in force when
    our node patch applies (kind's order: cluster merge patches, cluster JSON 6902 patches,
    node merge patches) are carried into our patch, since a merge patch replaces lists.
    ``kubeadm_version`` is the kubeadm API kind will generate, when known (else every
    version-pinned patch is assumed to apply). Raises ValueError for a base config kind rejects.
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
    nodes[:] = _unshared(nodes)
    controls = [n for n in nodes if n.get("role", "control-plane") == "control-plane"]
    if not controls:
        controls = [{"role": "control-plane"}]
        nodes.insert(0, controls[0])
    _patch_list(config, "kubeadmConfigPatches", "base kind config")
    for index, node in enumerate(nodes):
        if node_image:
            node["image"] = node_image
        if not any(node is c for c in controls):
            continue
        where = f"base kind config nodes[{index}]"
        node.setdefault("role", "control-plane")
        mounts = node["extraMounts"] = list(node.get("extraMounts") or [])  # ours, not shared
        if not all(isinstance(m, Mapping) for m in mounts):
            raise ValueError(f"{where}: extraMounts must be a list of mappings")
        taken = {m.get("containerPath") for m in mounts}
        clash = taken & {NODE_POLICY_DIR, NODE_LOG_DIR}
        if clash:
            raise ValueError(f"base kind config already mounts {sorted(clash)}, which kaudit owns")
        mounts.extend(_mounts(dirs))
        own = _patch_list(node, "kubeadmConfigPatches", where)
        volumes = _user_volumes(config, index, kubeadm_version)
        node["kubeadmConfigPatches"] = [*own, cluster_patch(flags, audit=audit, volumes=volumes)]
    return config


def _unshared(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per node: a YAML alias (``- *node``) makes several entries one object."""
    seen: set[int] = set()
    unique = []
    for node in nodes:
        if id(node) in seen:
            node = copy.deepcopy(node)
        seen.add(id(node))
        unique.append(node)
    return unique


def _patch_list(section: Mapping[str, Any], key: str, where: str) -> list[str]:
    patches = section.get(key) or []
    if not isinstance(patches, list) or not all(isinstance(p, str) for p in patches):
        raise ValueError(f"{where}: {key} must be a list of YAML strings")
    return list(patches)


def _user_volumes(
    config: Mapping[str, Any], node_index: int, kubeadm_version: str | None
) -> list[Mapping[str, Any]]:
    """The ``apiServer.extraVolumes`` in force just before kaudit's node patch applies.

    Raises:
        ValueError: a patch kind cannot apply, or a user volume takes a name or path kaudit owns.
    """
    result = apiserver_after_patches(
        config,
        node_index,
        kubeadm_version=kubeadm_version or V1BETA3,
        match_any_version=kubeadm_version is None,
        node_json6902=False,
    )
    if result.input_problems:
        raise ValueError(f"base kind config {result.input_problems[0]}")
    ours = {"kaudit-policy", "kaudit-log"}
    for volume in result.volumes:
        mount = str(volume.get("mountPath") or "").rstrip("/")
        if volume.get("name") in ours or mount in (NODE_POLICY_DIR, NODE_LOG_DIR):
            raise ValueError(
                f"base kind config {result.volumes_source}: apiServer.extraVolumes entry "
                f"{volume.get('name')!r} takes a name or mountPath kaudit owns "
                f"({sorted(ours)}, {NODE_POLICY_DIR}, {NODE_LOG_DIR})"
            )
    return result.volumes


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
    flags: Mapping[str, str] | None = None,
    kind_version: tuple[int, int, int] | None = None,
) -> list[str]:
    """Static checks of a (possibly user-edited) config: will it boot, and audit as asked?

    Replays kind's patching for every control-plane node (each runs an apiserver): cluster
    merge patches, cluster JSON 6902 patches, then the node's own, with the merge rules of the
    kubeadm version kind generates. Then follows each audit file from its apiserver flag
    through ``extraVolumes`` (pod → node) and ``extraMounts`` (node → host). With ``flags``
    (the spec's), every flag kaudit asks for must survive the user's patches. Every node whose
    image kind pairs with a kubeadm config its kubeadm cannot read is reported too.
    ``kind_version`` makes the kubeadm version per node image exact (nodes may differ);
    without it ``kubeadm_version`` is used for all. Returns one message per problem.
    """
    controls = [
        (i, n)
        for i, n in enumerate(config.get("nodes") or [{}])
        if n.get("role", "control-plane") == "control-plane"
    ]
    if not controls:
        return ["the config has no control-plane node"]
    problems = unbootable_nodes(config, kubeadm_version=kubeadm_version, kind_version=kind_version)
    expected = apiserver_args(flags, audit=audit) if flags is not None else None
    for index, node in controls:
        prefix = f"control-plane nodes[{index}]: " if len(controls) > 1 else ""
        version = _node_kubeadm_version(node, kubeadm_version, kind_version)
        problems += [
            prefix + problem
            for problem in _check_node(
                config, index, node, dirs=dirs, kubeadm_version=version, audit=audit,
                expected=expected,
            )
        ]
    return problems


def unbootable_nodes(
    config: Mapping[str, Any],
    *,
    kubeadm_version: str,
    kind_version: tuple[int, int, int] | None = None,
) -> list[str]:
    """Nodes whose image's kubeadm cannot read the config kind writes for it (never boot)."""
    problems: list[str] = []
    for index, node in enumerate(config.get("nodes") or [{}]):
        version = _node_kubeadm_version(node, kubeadm_version, kind_version)
        reason = unbootable_pair(version, node_image_version(node.get("image")))
        if reason:
            problems.append(f"nodes[{index}] ({node.get('image')}): {reason}")
    return problems


def _node_kubeadm_version(
    node: Mapping[str, Any], fallback: str, kind_version: tuple[int, int, int] | None
) -> str:
    if kind_version is None:
        return fallback
    k8s = node_image_version(node.get("image")) or default_node_version(kind_version)
    return kubeadm_api_version(kind_version, k8s) if k8s is not None else fallback


def _check_node(
    config: Mapping[str, Any],
    index: int,
    node: Mapping[str, Any],
    *,
    dirs: HostDirs,
    kubeadm_version: str,
    audit: bool,
    expected: Mapping[str, str] | None,
) -> list[str]:
    """:func:`check_kind_config` for one control-plane node."""
    result = apiserver_after_patches(config, index, kubeadm_version=kubeadm_version)
    problems = list(result.problems)
    args = {k: str(v) for k, v in result.args.items()}
    for flag, want in (expected or {}).items():
        if args.get(flag) != want:
            source = result.arg_source.get(flag)
            by = f" ({source} decides it)" if source else ""
            problems.append(
                f"--{flag}: kaudit asks for {want!r}, but after kind applies every patch the "
                f"apiserver gets {args.get(flag, '<not set>')!r}{by}"
            )
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
        host = _resolve_to_host(pod_path, result.volumes, mounts)
        if host is None:
            problems.append(
                f"--{flag}={pod_path} does not reach the host: no apiServer.extraVolumes entry "
                "covers it with a node path that an extraMounts entry of the control-plane "
                "node maps to a host directory"
            )
        elif Path(host) != want_host:
            problems.append(f"--{flag}={pod_path} resolves to host {host}, expected {want_host}")
    return problems


def review_kind_config(
    config: Mapping[str, Any],
    *,
    dirs: HostDirs,
    flags: Mapping[str, str],
    audit: bool = True,
    base_text: str | None = None,
    source: str = "kind config",
) -> list[Problem]:
    """Findings about a generated config when kind's version is not known (``kaudit kind-config``).

    The config is checked under every kubeadm version kind may generate for its node image:
    v1beta3 below Kubernetes 1.36, v1beta4 from 1.37, either for 1.36 or an unknown image.
    A patch that only one of them drops is a warning; anything else :func:`check_kind_config`
    reports, and audit flag values kube-apiserver refuses, are errors. ``base_text`` (the
    user's config file) lets findings about the user's patches name their line.
    """
    controls = [
        n for n in config.get("nodes") or [{}] if n.get("role", "control-plane") == "control-plane"
    ]
    k8s = node_image_version(controls[0].get("image")) if controls else None
    if k8s is not None and k8s < (1, 36):
        candidates = [(V1BETA3, "")]
    elif k8s is not None and k8s >= K8S_WITHOUT_V1BETA3:
        candidates = [(V1BETA4, "")]
    else:
        candidates = [
            (V1BETA3, "with kind < v0.32 or a Kubernetes < 1.36 node image: "),
            (V1BETA4, "with kind >= v0.32 and a Kubernetes >= 1.36 node image: "),
        ]
    findings: list[Problem] = []
    seen: set[str] = set()
    for version, label in candidates:
        for message in check_kind_config(
            config, dirs=dirs, kubeadm_version=version, audit=audit, flags=flags
        ):
            if message in seen:
                continue
            seen.add(message)
            severity: Severity = "warning" if DROPPED in message else "error"
            findings.append(Problem(severity, "kind-config", label + message, source))
    version = candidates[-1][0]
    for index, node in enumerate(config.get("nodes") or [{}]):
        if node.get("role", "control-plane") != "control-plane":
            continue
        result = apiserver_after_patches(config, index, kubeadm_version=version)
        audit_args = {k: str(v) for k, v in result.args.items() if k.startswith("audit-")}
        for problem in validate_flags(audit_args, target_version=k8s):
            if problem.severity != "error":
                continue
            where = result.arg_source.get(problem.field.removeprefix("--"), "")
            line = _patch_line(base_text, where, config) if where else None
            findings.append(
                Problem("error", problem.code, problem.message, source, line,
                        where or problem.field, hint=problem.hint)
            )
    return findings


def _patch_line(base_text: str | None, where: str, config: Mapping[str, Any]) -> int | None:
    """Line of ``nodes[i].kubeadmConfigPatches[j]``-style locations in the user's file."""
    if base_text is None:
        return None
    path: list[str | int] = []
    for part in where.split("."):
        name, _, rest = part.partition("[")
        path.append(name)
        if rest:
            path.append(int(rest.rstrip("]")))
    return entry_line(base_text, *path)


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

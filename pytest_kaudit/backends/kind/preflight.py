"""Checks before and after ``kind create cluster`` that the apiserver will audit as asked.

Before: the generated config (after the user's transform) boots on this kind release and
mounts the policy and log where the apiserver reads and writes them. After: the flags in the
node's apiserver manifest are ours, since kind drops a mismatched kubeadm patch silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_kaudit.backends.base import ClusterSpec
from pytest_kaudit.backends.kind import config as kc
from pytest_kaudit.errors import BackendError


def checked_config(
    spec: ClusterSpec,
    name: str,
    dirs: kc.HostDirs,
    *,
    kind_version: tuple[int, int, int],
    kubeadm: str,
    node_image: str | None,
    base_config: Mapping[str, Any] | None,
    transform: kc.ConfigTransform | None,
    dump: Path | None,
    preflight: bool,
) -> dict[str, Any]:
    """The config passed to ``kind create cluster`` (after ``transform`` and the checks).

    Raises:
        BackendError: the preflight check found the policy or log not reaching the apiserver.
    """
    try:
        config = kc.build_kind_config(
            name=name,
            flags=spec.flags,
            dirs=dirs,
            node_image=node_image,
            base_config=base_config,
            audit=spec.policy is not None,
            kubeadm_version=kubeadm,
        )
    except ValueError as exc:
        raise BackendError(f"cannot build the kind config: {exc}") from None
    if transform is not None:
        config = transform(config)
    if dump is not None:  # written before the checks, to inspect failures too
        dump.write_text(kc.dump_kind_config(config))
    if spec.flags.get("audit-log-path") == "-":
        raise BackendError(
            "audit-log-path=- (apiserver stdout) is not supported by the kind backend; "
            "let kaudit own audit-log-path, or use --kaudit-backend=local"
        )
    unbootable = kc.unbootable_nodes(config, kubeadm_version=kubeadm, kind_version=kind_version)
    if unbootable:
        raise BackendError(
            "kind cannot boot this node image with this kind release:\n"
            + "\n".join(f"  - {p}" for p in unbootable)
        )
    if preflight:
        problems = kc.check_kind_config(
            config,
            dirs=dirs,
            kubeadm_version=kubeadm,
            audit=spec.policy is not None,
            flags=spec.flags,
            kind_version=kind_version,
        )
        if problems:
            raise BackendError(
                "the kind config would boot a cluster that does not audit as asked:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
    return config


def check_running_flags(
    flags: Mapping[str, str], spec: ClusterSpec, name: str, *, kubeadm: str
) -> None:
    """The flags in the node's manifest must be ours: kind drops mismatched patches silently."""
    expected = kc.apiserver_args(spec.flags, audit=spec.policy is not None)
    wrong = {k: v for k, v in expected.items() if flags.get(k) != v}
    if wrong:
        lines = [
            f"  --{k}: expected {v!r}, running {flags.get(k, '<not set>')!r}"
            for k, v in sorted(wrong.items())
        ]
        raise BackendError(
            f"kind cluster {name}: kube-apiserver does not run the audit flags we asked for:\n"
            + "\n".join(lines)
            + f"\nkind generated kubeadm config {kubeadm}; a kubeadmConfigPatches entry "
            "whose apiVersion does not match it is dropped silently. Use an unversioned "
            "patch (inspect the node's /kind/kubeadm.conf)."
        )

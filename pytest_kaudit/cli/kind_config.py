"""``kaudit kind-config``: print the kind cluster config the kind backend would generate.

Lets users inspect the audit wiring (mounts, kubeadm patch, flags) or reuse it outside
pytest. Uses only the pure config generator, never kind or docker. Input kind or
kube-apiserver would refuse (unknown config fields, bad flag values, malformed image names)
is an error here, before anything is written.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import EXIT_OK, CliError, Streams, load_policy, read_text


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("policy", metavar="POLICY", help="audit policy file")
    parser.add_argument("--flag", action="append", default=[], metavar="NAME=VALUE",
                        help="extra kube-apiserver flag (repeatable)")
    parser.add_argument("--host-dir", default="kaudit-kind", metavar="DIR",
                        help="host directory holding policy/ and log/ (default: ./kaudit-kind)")
    parser.add_argument("--name", default=None, help="cluster name")
    parser.add_argument("--node-image", default=None, metavar="IMAGE", help="kind node image")
    parser.add_argument("--base-config", default=None, metavar="FILE",
                        help="your own kind config to merge the audit wiring into")
    parser.add_argument("--write-policy", action="store_true",
                        help="also write the policy file into DIR/policy/ (as the backend does)")


def _run(args: argparse.Namespace, streams: Streams) -> int:
    from pytest_kaudit.backends.base import ClusterSpec
    from pytest_kaudit.backends.kind.config import (
        build_kind_config,
        default_cluster_name,
        dump_kind_config,
        host_dirs,
        render_policy,
        review_kind_config,
    )

    policy = load_policy(args.policy)
    flags = _checked_flags(args.flag, args.node_image)
    base, text = _load_base(args.base_config) if args.base_config else (None, None)
    spec = ClusterSpec(policy=policy, flags=flags)
    host_dir = Path(args.host_dir).resolve()
    dirs = host_dirs(host_dir)
    source = f"kind config {args.base_config!r}" if args.base_config else "kind config"
    try:
        config = build_kind_config(
            name=args.name or default_cluster_name(spec), flags=spec.flags, dirs=dirs,
            node_image=args.node_image, base_config=base, audit=spec.policy is not None,
        )
    except ValueError as exc:
        raise CliError(f"{source}: {exc}") from None
    findings = review_kind_config(
        config, dirs=dirs, flags=spec.flags, audit=spec.policy is not None, base_text=text,
        source=args.base_config or "generated kind config",
    )
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise CliError(
            "the kind config would not boot a cluster that audits as asked:\n"
            + "\n".join(f"  {p}" for p in errors)
        )
    for finding in findings:
        streams.warn(str(finding))
    if args.write_policy:
        written = _write_dirs(host_dir, render_policy(spec))
        streams.warn(f"wrote {written}")
    streams.out.write(dump_kind_config(config))
    return EXIT_OK


def _checked_flags(items: list[str], node_image: str | None) -> dict[str, str]:
    """``--flag`` values as the apiserver gets them; what kube-apiserver refuses is an error."""
    from pytest_kaudit.backends.kind.config import apiserver_args, node_image_version
    from pytest_kaudit.backends.kind.schema import image_problem
    from pytest_kaudit.policy.flags import validate_flags

    flags: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise CliError(f"--flag {item!r} is not NAME=VALUE")
        name, value = item.split("=", 1)
        flags[name.removeprefix("--")] = value
    if node_image is not None:
        reason = image_problem(node_image)
        if reason:
            raise CliError(f"--node-image: {reason}")
    in_force = apiserver_args(flags, audit=True)  # with kaudit's log path, as the node runs them
    refused = [
        p
        for p in validate_flags(in_force, target_version=node_image_version(node_image))
        if p.severity == "error"
    ]
    if refused:
        raise CliError(
            "kube-apiserver would refuse these flags:\n"
            + "\n".join(f"  --flag {p.field.removeprefix('--')}: {p.message}"
                        + (f" ({p.hint})" if p.hint else "") for p in refused)
        )
    return flags


def _load_base(path: str) -> tuple[dict[str, Any], str]:
    """The user's kind config, decoded as strictly as kind does, and its text."""
    from pytest_kaudit.backends.kind.schema import KindConfigError, load_kind_config

    text = read_text(path, "kind config")
    try:
        return load_kind_config(text, path), text
    except KindConfigError as exc:
        first = exc.problems[0]
        if first.code == "yaml":  # the message users of earlier releases know
            where = f" line {first.line}" if first.line is not None else ""
            raise CliError(f"kind config {path!r}{where}: {first.message}") from None
        raise CliError(
            f"kind config {path!r} is not a config kind accepts:\n"
            + "\n".join(f"  {p}" for p in exc.problems)
        ) from None


def _write_dirs(host_dir: Path, policy_text: str) -> Path:
    """Policy and log directories as the kind backend prepares them (docs/kind.md).

    Directories 0755, policy 0644, and the log pre-created 0644 (not truncated): a missing
    log would be created 0600 by kube-apiserver (root in the node), unreadable for us on a
    rootful engine, and it never changes the mode of an existing file.
    """
    from pytest_kaudit.backends.kind.config import LOG_FILE, POLICY_FILE

    policy_dir, log_dir = host_dir / "policy", host_dir / "log"
    for sub in (policy_dir, log_dir):
        sub.mkdir(mode=0o755, parents=True, exist_ok=True)
        sub.chmod(0o755)
    target = policy_dir / POLICY_FILE
    target.write_text(policy_text)
    target.chmod(0o644)
    log_file = log_dir / LOG_FILE
    os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT, 0o644))
    log_file.chmod(0o644)
    return target


COMMAND = Command(
    name="kind-config",
    help="print the kind cluster config wired for a policy",
    add_arguments=_add_arguments,
    run=_run,
)

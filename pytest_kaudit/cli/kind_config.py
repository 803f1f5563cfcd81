"""``kaudit kind-config``: print the kind cluster config the kind backend would generate.

Lets users inspect the audit wiring (mounts, kubeadm patch, flags) or reuse it outside
pytest. Uses only the pure config generator, never kind or docker.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

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
    from pytest_kaudit.backends.kind_config import render_kind_config, render_policy

    policy = load_policy(args.policy)
    flags: dict[str, str] = {}
    for item in args.flag:
        if "=" not in item:
            raise CliError(f"--flag {item!r} is not NAME=VALUE")
        name, value = item.split("=", 1)
        flags[name.removeprefix("--")] = value
    base = None
    if args.base_config:
        text = read_text(args.base_config, "kind config")
        try:
            base = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise CliError(
                f"kind config {args.base_config!r}{where}: not valid YAML ({problem})"
            ) from None
        if not isinstance(base, dict):
            raise CliError(f"{args.base_config}: not a kind cluster config (a YAML mapping)")
    spec = ClusterSpec(policy=policy, flags=flags)
    host_dir = Path(args.host_dir).resolve()
    try:
        config = render_kind_config(spec, host_dir=host_dir, name=args.name,
                                    node_image=args.node_image, base_config=base)
    except ValueError as exc:
        source = f"kind config {args.base_config!r}" if args.base_config else "kind config"
        raise CliError(f"{source}: {exc}") from None
    if args.write_policy:
        target = _write_dirs(host_dir, render_policy(spec))
        streams.warn(f"wrote {target}")
    streams.out.write(config)
    return EXIT_OK


def _write_dirs(host_dir: Path, policy_text: str) -> Path:
    """Policy and log directories as the kind backend prepares them (cluster-mechanics §0.3).

    Directories 0755, policy 0644, and the log pre-created 0644 (not truncated): a missing
    log would be created 0600 by kube-apiserver (root in the node), unreadable for us on a
    rootful engine, and it never changes the mode of an existing file.
    """
    from pytest_kaudit.backends.kind_config import LOG_FILE, POLICY_FILE

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

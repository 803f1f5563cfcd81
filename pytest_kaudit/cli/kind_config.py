"""``kaudit kind-config``: print the kind cluster config the kind backend would generate.

Lets users inspect the audit wiring (mounts, kubeadm patch, flags) or reuse it outside
pytest. Uses only the pure config generator, never kind or docker.
"""

from __future__ import annotations

import argparse
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
        base = yaml.safe_load(read_text(args.base_config, "kind config"))
        if not isinstance(base, dict):
            raise CliError(f"{args.base_config}: not a kind cluster config (a YAML mapping)")
    spec = ClusterSpec(policy=policy, flags=flags)
    host_dir = Path(args.host_dir).resolve()
    if args.write_policy:
        target = host_dir / "policy" / "policy.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_policy(spec))
        (host_dir / "log").mkdir(parents=True, exist_ok=True)
        streams.warn(f"wrote {target}")
    streams.out.write(render_kind_config(spec, host_dir=host_dir, name=args.name,
                                         node_image=args.node_image, base_config=base))
    return EXIT_OK


COMMAND = Command(
    name="kind-config",
    help="print the kind cluster config wired for a policy",
    add_arguments=_add_arguments,
    run=_run,
)

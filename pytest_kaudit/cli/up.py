"""``kaudit up`` / ``kaudit down`` / ``kaudit status``: the warm local control plane by hand.

``up`` starts (or switches, or attaches to) the same warm etcd + kube-apiserver pair that
``pytest --kaudit-reuse`` uses, and prints ``export KUBECONFIG=...`` and the audit log's path,
so ``kubectl`` and ad-hoc requests can be tried against a policy. ``down`` stops it and
removes its directory; ``status`` says what runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import EXIT_FINDINGS, EXIT_OK, CliError, Streams, load_policy

#: ``kaudit up`` without ``--policy``: every request logged at Metadata.
DEFAULT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
"""
DEFAULT_POLICY_SOURCE = "<kaudit up default: Metadata for every request>"


def _parse_flags(items: list[str]) -> dict[str, str]:
    flags: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip("-"):
            raise CliError(f"--flag {item!r} is not NAME=VALUE (e.g. --flag audit-log-maxage=30)")
        flags[name.removeprefix("--")] = value
    return flags


def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``up``'s arguments."""
    parser.add_argument("--policy", metavar="PATH",
                        help="Audit policy the apiserver runs (default: Metadata for everything)")
    parser.add_argument("--flag", action="append", default=[], metavar="NAME=VALUE",
                        help="Extra kube-apiserver flag (repeatable)")
    parser.add_argument("--idle", type=float, default=None, metavar="MINUTES",
                        help="Stop by itself after this many minutes unused (default 15)")
    parser.add_argument("--apiserver-bin", metavar="PATH", help="kube-apiserver binary")
    parser.add_argument("--etcd-bin", metavar="PATH", help="etcd binary")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="Seconds the start may take (default 120)")


def run_up(args: argparse.Namespace, streams: Streams) -> int:
    """Make the warm plane run this policy and these flags; print how to reach it."""
    from pytest_kaudit.backends.base import ClusterSpec
    from pytest_kaudit.backends.local.backend import check_spec
    from pytest_kaudit.backends.local.binaries import find_binaries
    from pytest_kaudit.backends.local.warm import DEFAULT_IDLE_MINUTES, WarmPlane
    from pytest_kaudit.errors import KauditError
    from pytest_kaudit.policy import Policy

    if args.idle is not None and args.idle <= 0:
        raise CliError(f"--idle must be more than 0 minutes, got {args.idle:g}")
    if args.timeout <= 0:
        raise CliError(f"--timeout must be more than 0 seconds, got {args.timeout:g}")
    policy = (load_policy(str(Path(args.policy).resolve())) if args.policy
              else Policy.from_yaml(DEFAULT_POLICY, source=DEFAULT_POLICY_SOURCE))
    spec = ClusterSpec(policy, flags=_parse_flags(args.flag), timeout=args.timeout)
    try:
        binaries = find_binaries(args.apiserver_bin, args.etcd_bin)
        check_spec(binaries, spec)
        plane = WarmPlane(binaries, idle_minutes=args.idle or DEFAULT_IDLE_MINUTES)
        attached = plane.attach(spec, timeout=args.timeout)
    except KauditError as exc:
        raise CliError(str(exc), code=EXIT_FINDINGS) from None
    if attached is None:
        plane.release()
        raise CliError("the warm control plane is in use by a test run with another "
                       "configuration; try again when it has finished", code=EXIT_FINDINGS)
    handle, note = attached
    plane.release()
    streams.note(f"{note} ({handle.server})")
    streams.print(f"export KUBECONFIG={handle.kubeconfig}")
    streams.print(f"# audit log: {handle.log_source.description}")
    return EXIT_OK


def run_down(args: argparse.Namespace, streams: Streams) -> int:
    """Stop the warm plane and remove its directory."""
    from pytest_kaudit.backends.local.warm import WarmPlane
    from pytest_kaudit.errors import KauditError

    plane = WarmPlane()
    try:
        stopped = plane.down()
    except KauditError as exc:
        raise CliError(str(exc), code=EXIT_FINDINGS) from None
    streams.print(f"stopped the warm control plane in {plane.directory}" if stopped
                  else f"no warm control plane in {plane.directory}")
    return EXIT_OK


def run_status(args: argparse.Namespace, streams: Streams) -> int:
    """Print what runs; exit 1 when no plane runs."""
    from pytest_kaudit.backends.local.warm import WarmPlane

    plane = WarmPlane()
    for line in plane.status_lines():
        streams.print(line)
    return EXIT_OK if plane.is_alive() else EXIT_FINDINGS


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """``down`` and ``status`` take none."""


COMMANDS = (
    Command("up", "Start the warm local control plane (etcd + kube-apiserver) with a policy",
            add_up_arguments, run_up, description=__doc__),
    Command("down", "Stop the warm local control plane and remove its directory",
            _no_arguments, run_down),
    Command("status", "Show the warm local control plane: processes, policy, log size",
            _no_arguments, run_status),
)

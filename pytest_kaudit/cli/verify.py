"""``kaudit verify POLICY``: every reachable rule proven on a real kube-apiserver.

For each rule, the request it decides (its witness, from the exact partition ``diff`` uses) and
its near misses are sent, as the rule's own users, to an apiserver running the policy (the
local backend by default; any backend the pytest plugin has with ``--backend``). What was
logged (level, stages, bodies) is compared with the engine's prediction. One row per rule:
OK, MISMATCH (with the events as evidence), UNREACHABLE (with the rules that cover it) or
NOT SENDABLE (with the reason). Exit 0 when no rule mismatches, 1 when one does, 2 on bad
input or a cluster that would not boot.
"""

from __future__ import annotations

import argparse
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import (
    EXIT_FINDINGS,
    EXIT_OK,
    CliError,
    Streams,
    add_policy_options,
    load_policy,
)

if TYPE_CHECKING:
    from pytest_kaudit.witness.verify import RuleResult

FORMATS = ("text", "json", "junit")
STATUSES = ("OK", "MISMATCH", "UNREACHABLE", "NOT SENDABLE")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``verify``'s arguments (backend options as ``kaudit check`` has them)."""
    from pytest_kaudit.cli.check import _backend_options

    parser.add_argument("policy", metavar="POLICY", help="Audit policy file (YAML or JSON)")
    parser.add_argument("--flag", action="append", default=[], metavar="NAME=VALUE",
                        help="An extra kube-apiserver flag for the cluster (repeatable)")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="Report format (default: text)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="Seconds to wait for the audit log (default: 10)")
    parser.add_argument("--boot-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="Seconds the cluster may take to boot (default: 120)")
    add_policy_options(parser)
    group = parser.add_argument_group("backend (as the pytest plugin's --kaudit-* options)")
    for opt in _backend_options():
        flag = "--" + opt.name.replace("_", "-")
        if opt.kind == "bool":
            group.add_argument(flag, dest=f"backend_{opt.name}", action="store_true",
                               help=opt.help)
        else:
            group.add_argument(flag, dest=f"backend_{opt.name}", default=opt.default,
                               choices=opt.choices, metavar=opt.metavar, help=opt.help)


def _flags(items: Sequence[str]) -> dict[str, str]:
    from pytest_kaudit.policy import validate_flags

    flags: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip("-"):
            raise CliError(f"--flag {item!r}: expected NAME=VALUE")
        flags[name.lstrip("-")] = value
    errors = [p for p in validate_flags(flags) if p.severity == "error"]
    if errors:
        raise CliError("invalid --flag values:\n" + "\n".join(f"  {p}" for p in errors))
    return flags


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Boot, send, judge, report."""
    from pytest_kaudit.backends.base import ClusterSpec
    from pytest_kaudit.cli.check import _make_backend
    from pytest_kaudit.errors import KauditError
    from pytest_kaudit.witness import witnesses
    from pytest_kaudit.witness.verify import verify_witnesses

    started = time.monotonic()
    policy = load_policy(args.policy, lenient=args.lenient, target_version=args.target_version)
    flags = _flags(args.flag)
    found = witnesses(policy)
    backend = _make_backend(args)
    try:
        handle = backend.start(ClusterSpec(policy=policy, flags=flags,
                                           timeout=args.boot_timeout))
    except KauditError as exc:
        raise CliError(f"the cluster did not boot: {exc}") from None
    try:
        where = (f"{handle.backend} (kube-apiserver {handle.version[0]}.{handle.version[1]})")
        rows = verify_witnesses(policy, found, handle, timeout=args.timeout)
    except KauditError as exc:
        raise CliError(str(exc)) from None
    finally:
        backend.stop(handle)
        stop_all = getattr(backend, "stop_all", None)
        if stop_all is not None:
            stop_all()
    seconds = time.monotonic() - started
    if args.format == "json":
        streams.json({"policy": args.policy, "cluster": where, "seconds": round(seconds, 2),
                      "counts": dict(_counts(rows)), "rules": [r.to_dict() for r in rows]})
    elif args.format == "junit":
        streams.print(junit(args.policy, rows, seconds))
    else:
        streams.print(text_report(args.policy, where, rows, seconds))
    return EXIT_FINDINGS if any(r.status == "MISMATCH" for r in rows) else EXIT_OK


def _counts(rows: Sequence[RuleResult]) -> dict[str, int]:
    found = Counter(r.status for r in rows)
    return {s: found.get(s, 0) for s in STATUSES}  # type: ignore[call-overload]


def _label(policy: str, row: RuleResult, width: int) -> str:
    where = f"{policy}:{row.line}" if row.line else policy
    return f"rules[{row.index:0{width}d}] {where}"


def text_report(policy: str, where: str, rows: Sequence[RuleResult], seconds: float) -> str:
    """One row per rule, evidence under mismatches, a summary line."""
    width = max(2, len(str(len(rows) - 1)))
    labels = [_label(policy, r, width) for r in rows]
    pad = max((len(x) for x in labels), default=0)
    lines = [f"kaudit verify {policy} on {where}: {len(rows)} rule(s)"]
    for label, row in zip(labels, rows, strict=True):
        head = f"{label.ljust(pad)}  {row.status.ljust(12)}  "
        if row.checks:
            witness = row.checks[0]
            lines.append(f"{head}{witness.request}: {witness.observed}")
        else:
            lines.append(f"{head}{row.reason}")
        if row.reason and row.checks:  # impersonated: the report says so
            lines.append(f"    {row.reason}")
        for check in row.checks:
            if not check.disagreements:
                continue
            lines.append(f"    {check.role}: {check.request}")
            lines += [f"      {d}" for d in check.disagreements]
            lines += [f"      evidence: {e}" for e in check.evidence]
    counts = _counts(rows)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    lines.append(f"{summary} ({seconds:.1f}s)")
    return "\n".join(lines)


def junit(policy: str, rows: Sequence[RuleResult], seconds: float) -> str:
    """A JUnit XML report: one test case per rule (failure: MISMATCH; skipped: no witness)."""
    counts = _counts(rows)
    suite = ET.Element("testsuite", name=f"kaudit verify {policy}", tests=str(len(rows)),
                       failures=str(counts["MISMATCH"]),
                       skipped=str(counts["UNREACHABLE"] + counts["NOT SENDABLE"]),
                       time=f"{seconds:.3f}")
    width = max(2, len(str(len(rows) - 1)))
    for row in rows:
        case = ET.SubElement(suite, "testcase", classname=policy,
                             name=f"rules[{row.index:0{width}d}] {row.summary}")
        if row.status == "MISMATCH":
            text = "\n".join(
                line for c in row.checks if c.disagreements
                for line in (f"{c.role}: {c.request}", *c.disagreements, *c.evidence))
            failure = ET.SubElement(case, "failure", message="logged differently than predicted")
            failure.text = text
        elif row.status in ("UNREACHABLE", "NOT SENDABLE"):
            ET.SubElement(case, "skipped", message=f"{row.status}: {row.reason}")
        else:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"{c.role}: {c.request}: {c.observed}" for c in row.checks)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode")


COMMAND = Command(
    name="verify",
    help="Prove every rule of a policy on a real kube-apiserver, one row per rule",
    add_arguments=add_arguments,
    run=run,
    description=__doc__,
)

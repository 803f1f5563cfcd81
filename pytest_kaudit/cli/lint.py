"""``kaudit lint POLICY``: what kube-apiserver would reject, and what it would silently accept.

Loader and validation errors, the engine's lints, and (with apiserver flags) flag problems,
each with ``file:line``. Exit 1 when any problem at or above ``--fail-on`` is found.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import (
    EXIT_FINDINGS,
    EXIT_OK,
    CliError,
    Streams,
    add_policy_options,
    announce_target_version,
    read_text,
)
from pytest_kaudit.cli.output.sarif import to_sarif

if TYPE_CHECKING:
    from pytest_kaudit.policy import Problem
    from pytest_kaudit.policy.flag_sources import FlagArg, FlagSource


#: How each detected flags-file form is named in the note that reports it.
FORM_NAMES = {
    "static-pod": "a static-pod manifest",
    "manifest-fragment": "a manifest fragment",
    "systemd": "a systemd unit",
    "kubeadm": "a kubeadm ClusterConfiguration",
    "kind": "a kind config",
    "flags": "a list of flags",
}


def parse_flags_file(path: str) -> FlagSource:
    """Read apiserver flags from ``path`` in any form users keep them in (see flag_sources)."""
    from pytest_kaudit.policy.flag_sources import (
        MAX_FLAGS_FILE_BYTES,
        FlagSourceError,
        read_flag_source,
    )

    text = read_text(path, "apiserver flags file", limit=MAX_FLAGS_FILE_BYTES)
    try:
        return read_flag_source(text, source=path)
    except FlagSourceError as exc:
        raise CliError(f"apiserver flags file {path!r}: {exc}") from None


def command_line_flags(items: Sequence[str]) -> list[FlagArg]:
    """``--flag NAME=VALUE`` options as argv elements; anything else is a usage error."""
    from pytest_kaudit.policy.flag_sources import FlagArg

    args: list[FlagArg] = []
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip("-"):
            raise CliError(f"--flag {item!r}: expected NAME=VALUE")
        args.append(FlagArg(f"--{name.lstrip('-')}={value}"))
    return args


def collect_problems(
    policy_path: str,
    text: str,
    *,
    flags: FlagSource | None,
    lenient: bool,
    target_version: str | None,
) -> list[Problem]:
    """Loader errors (if it does not load), else its warnings and lints; plus flag problems."""
    from pytest_kaudit.errors import PolicyError
    from pytest_kaudit.policy import Policy, validate_flags

    problems: list[Problem] = []
    try:
        policy = Policy.from_yaml(
            text, source=policy_path, strict=not lenient, target_version=target_version
        )
    except PolicyError as exc:
        problems += exc.problems
    else:
        problems += list(policy.warnings)
        problems += policy.lint(target_version=target_version)
    if flags is not None:
        problems += validate_flags(flags, target_version=target_version)
    unique: dict[tuple[Any, ...], Problem] = {}
    for p in problems:
        unique.setdefault((p.severity, p.code, p.file, p.line, p.field, p.message), p)
    return list(unique.values())


def _problem_dict(p: Problem, default_file: str) -> dict[str, Any]:
    return {
        "severity": p.severity,
        "code": p.code,
        "file": p.file or default_file,
        "line": p.line,
        "field": p.field,
        "message": p.message,
        "hint": p.hint,
        "fix": p.fix,
    }


def summary_line(path: str, problems: Sequence[Problem]) -> str:
    """``policy.yaml: 1 error, 2 warnings`` (or ``no problems found``)."""
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    if not problems:
        return f"{path}: no problems found"
    return (
        f"{path}: {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``lint``'s arguments."""
    parser.add_argument("policy", metavar="POLICY", help="Audit policy file (YAML or JSON)")
    parser.add_argument(
        "--apiserver-flags",
        metavar="FILE",
        default=None,
        help="kube-apiserver flags: one or more --name=value per line, a static-pod manifest, "
        "a systemd unit (ExecStart=), a kubeadm ClusterConfiguration or a kind config",
    )
    parser.add_argument(
        "--flag",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="One kube-apiserver flag (repeatable; overrides --apiserver-flags)",
    )
    add_policy_options(parser)
    parser.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="Output format (default: text; sarif for GitHub code scanning)",
    )
    parser.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        default="warning",
        help="Lowest severity that makes the exit code 1 (default: warning)",
    )


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Lint one policy; exit 1 on findings, 2 when the policy or flags cannot be read."""
    from pytest_kaudit.policy.flag_sources import FlagSource

    text = read_text(args.policy, "policy")
    flags: FlagSource | None = None
    if args.apiserver_flags:
        flags = parse_flags_file(args.apiserver_flags)
        streams.note(f"{args.apiserver_flags}: read as {FORM_NAMES.get(flags.form, flags.form)}"
                     f", {len(flags.args)} argument{'s' if len(flags.args) != 1 else ''}")
        for note in flags.notes:
            streams.warn(str(note))
    if args.flag:
        extra = command_line_flags(args.flag)  # after the file's: the last occurrence wins
        if flags is None:
            flags = FlagSource("command line", tuple(extra), source="--flag")
        else:
            flags = dataclasses.replace(flags, args=flags.args + tuple(extra))
    announce_target_version(args.target_version, streams)
    problems = collect_problems(
        args.policy,
        text,
        flags=flags,
        lenient=args.lenient,
        target_version=args.target_version,
    )
    failing = [p for p in problems if p.severity == "error" or args.fail_on == "warning"]
    if args.format == "sarif":
        streams.json(to_sarif(problems, default_file=args.policy))
    elif args.format == "json":
        streams.json(
            {
                "policy": args.policy,
                "problems": [_problem_dict(p, args.policy) for p in problems],
                "errors": sum(1 for p in problems if p.severity == "error"),
                "warnings": sum(1 for p in problems if p.severity != "error"),
            }
        )
    else:
        for p in problems:
            streams.print(str(p if p.file else dataclasses.replace(p, file=args.policy)))
        streams.print(summary_line(args.policy, problems))
    return EXIT_FINDINGS if failing else EXIT_OK


COMMAND = Command(
    name="lint",
    help="Validate a policy like kube-apiserver does and report hazards, with file:line",
    add_arguments=add_arguments,
    run=run,
    description=__doc__,
)

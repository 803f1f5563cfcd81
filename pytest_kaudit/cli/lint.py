"""``kaudit lint POLICY``: what kube-apiserver would reject, and what it would silently accept.

Loader and validation errors, the engine's lints, and (with apiserver flags) flag problems,
each with ``file:line``. Exit 1 when any problem at or above ``--fail-on`` is found.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import yaml

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import (
    EXIT_FINDINGS,
    EXIT_OK,
    CliError,
    Streams,
    add_policy_options,
    read_text,
)
from pytest_kaudit.cli.output.sarif import to_sarif

if TYPE_CHECKING:
    from pytest_kaudit.policy import Problem


def parse_flag_tokens(tokens: Sequence[str], *, where: str) -> dict[str, str]:
    """``--name=value`` / ``--name value`` / ``--bool`` tokens to ``{name: value}`` (no dashes).

    A leading program name (``kube-apiserver``) is skipped; any other stray word is an error,
    because silently dropping it would lint a different command line than the one deployed.
    """
    flags: dict[str, str] = {}
    i = 0
    items = list(tokens)
    if items and not items[0].startswith("-"):
        i = 1
    while i < len(items):
        tok = items[i]
        if not tok.startswith("--") or tok == "--":
            raise CliError(f"{where}: expected a --flag, got {tok!r}")
        body = tok[2:]
        if "=" in body:
            name, value = body.split("=", 1)
        elif i + 1 < len(items) and not items[i + 1].startswith("--"):
            name, value = body, items[i + 1]
            i += 1
        else:
            name, value = body, "true"
        flags[name] = value
        i += 1
    return flags


def _manifest_tokens(doc: Any) -> list[str] | None:
    """The kube-apiserver command line of a static-pod manifest, or None if it is not one."""
    if not isinstance(doc, dict) or doc.get("kind") != "Pod":
        return None
    containers = (doc.get("spec") or {}).get("containers") or []
    for c in containers:
        if not isinstance(c, dict):
            continue
        command = [str(x) for x in c.get("command") or []]
        args = [str(x) for x in c.get("args") or []]
        if c.get("name") == "kube-apiserver" or any(
            x.endswith("kube-apiserver") for x in command[:1]
        ):
            return command + args
    return []


def parse_flags_file(path: str) -> dict[str, str]:
    """Read apiserver flags: one per line (``--name=value``) or a static-pod manifest YAML."""
    text = read_text(path, "apiserver flags file")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        doc = None
    tokens = _manifest_tokens(doc)
    if tokens == []:
        raise CliError(
            f"apiserver flags file {path!r}: a Pod manifest without a kube-apiserver container"
        )
    if tokens is None:
        try:
            tokens = shlex.split(text, comments=True)
        except ValueError as exc:
            raise CliError(f"apiserver flags file {path!r}: {exc}") from None
    return parse_flag_tokens(tokens, where=f"apiserver flags file {path!r}")


def collect_problems(
    policy_path: str,
    text: str,
    *,
    flags: dict[str, str] | None,
    flags_source: str | None,
    lenient: bool,
    target_version: str | None,
) -> list[Problem]:
    """Loader errors (if it does not load), else its warnings and lints; plus flag problems."""
    from pytest_kaudit.errors import PolicyError
    from pytest_kaudit.policy import Policy, validate_flags

    problems: list[Problem] = []
    loaded = False
    try:
        policy = Policy.from_yaml(
            text, source=policy_path, strict=not lenient, target_version=target_version
        )
        loaded = True
    except PolicyError as exc:
        problems += exc.problems
    if loaded:
        problems += list(policy.warnings)
        problems += policy.lint(flags=flags, target_version=target_version)
    if flags is not None and not loaded:
        problems += validate_flags(flags, target_version=target_version, source=flags_source)
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
        help="kube-apiserver flags: one --name=value per line, or a static-pod manifest",
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
    text = read_text(args.policy, "policy")
    flags: dict[str, str] | None = None
    flags_source: str | None = None
    if args.apiserver_flags:
        flags = parse_flags_file(args.apiserver_flags)
        flags_source = args.apiserver_flags
    if args.flag:
        for f in args.flag:
            if "=" not in f:
                raise CliError(f"--flag {f!r}: expected NAME=VALUE")
        extra = parse_flag_tokens(["--" + f.lstrip("-") for f in args.flag], where="--flag")
        flags = {**(flags or {}), **extra}
        flags_source = flags_source or "<command line>"
    problems = collect_problems(
        args.policy,
        text,
        flags=flags,
        flags_source=flags_source,
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

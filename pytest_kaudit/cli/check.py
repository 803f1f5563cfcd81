"""``kaudit check POLICY``: does this policy meet CIS, keep Secrets out of the log, ...?

Each requirement of the chosen packs is decided by the policy engine, then proven with real
requests on a real kube-apiserver running the policy (the local backend by default; any
backend the pytest plugin has with ``--backend``). ``--offline`` stops after the engine.
Exit codes: 0 every requirement passes, 1 any fails (or the real log contradicts the
engine), 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import EXIT_FINDINGS, EXIT_OK, CliError, Streams, read_text
from pytest_kaudit.cli.lint import parse_flags_file

if TYPE_CHECKING:
    from pytest_kaudit.backends.base import Backend
    from pytest_kaudit.options import Option

#: Plugin options that make no sense for one check run (the rest become --<name> options).
_PLUGIN_ONLY = frozenset({"policy", "apiserver_flag", "lenient", "max_clusters", "evidence",
                          "coverage", "fail_under", "timeout", "boot_timeout", "pack"})


def _backend_options() -> list[Option]:
    from pytest_kaudit.options import OPTIONS

    return [o for o in OPTIONS if o.name not in _PLUGIN_ONLY]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``check``'s arguments."""
    from pytest_kaudit.compliance import DEFAULT_PACKS, FORMATS

    parser.add_argument("policy", metavar="POLICY", help="Audit policy file (YAML or JSON)")
    parser.add_argument("--pack", default=",".join(DEFAULT_PACKS), metavar="NAMES",
                        help="Comma-separated built-in packs: cis, secrets, stig, forensics "
                        f"(default: {','.join(DEFAULT_PACKS)}; '' for none)")
    parser.add_argument("--requirements", action="append", default=[], metavar="FILE",
                        help="Your own requirements file (repeatable)")
    parser.add_argument("--flag", action="append", default=[], metavar="NAME=VALUE",
                        help="A kube-apiserver flag of the deployment (repeatable)")
    parser.add_argument("--apiserver-flags", metavar="FILE", default=None,
                        help="The deployment's kube-apiserver flags: one per line, or a "
                        "static-pod manifest")
    parser.add_argument("--offline", action="store_true",
                        help="Decide with the policy engine only; no apiserver is started")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="Report format (default: text)")
    parser.add_argument("--output", metavar="PATH", default=None,
                        help="Write the report to PATH instead of stdout")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="Seconds to wait for the audit log (default: 10)")
    parser.add_argument("--boot-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="Seconds the cluster may take to boot (default: 120)")
    group = parser.add_argument_group("backend (as the pytest plugin's --kaudit-* options)")
    types = {"float": float, "int": int}
    for opt in _backend_options():
        flag = "--" + opt.name.replace("_", "-")
        if opt.kind == "bool":
            group.add_argument(flag, dest=f"backend_{opt.name}", action="store_const",
                               const=True, default=None, help=opt.help)
        else:
            group.add_argument(flag, dest=f"backend_{opt.name}", default=None,
                               type=types.get(opt.kind, str), choices=opt.choices,
                               metavar=opt.metavar, help=opt.help)


def _argv_flags(argv: list[str]) -> dict[str, str]:
    """``--name=value`` / ``--name value`` / ``--bool`` argv elements to ``{name: value}``."""
    flags: dict[str, str] = {}
    items = [a for a in argv if a]
    i = 1 if items and not items[0].startswith("-") else 0  # the program name
    while i < len(items):
        body = items[i].lstrip("-")
        name, eq, value = body.partition("=")
        if not eq:
            nxt = items[i + 1] if i + 1 < len(items) else ""
            value = "true" if not nxt or nxt.startswith("-") else nxt
            i += 0 if value == "true" else 1
        flags[name] = value
        i += 1
    return flags


def _flags(args: argparse.Namespace) -> tuple[dict[str, str], bool]:
    flags: dict[str, str] = {}
    from_file = False
    if args.apiserver_flags:
        source: Any = parse_flags_file(args.apiserver_flags)
        flags = dict(source) if isinstance(source, dict) else _argv_flags(list(source.argv))
        from_file = True
    for item in args.flag:
        name, eq, value = item.partition("=")
        if not eq or not name.strip("-"):
            raise CliError(f"--flag {item!r}: expected NAME=VALUE")
        flags[name.lstrip("-")] = value
    return flags, from_file


def _refuse_bad_flags(flags: dict[str, str], *, origin: str) -> None:
    """Flags kube-apiserver would refuse to start with are bad input, before anything boots."""
    from pytest_kaudit.policy import validate_flags

    audit = {k: v for k, v in flags.items() if k.startswith("audit-")}
    errors = [p for p in validate_flags(audit, source=origin) if p.severity == "error"]
    if errors:
        raise CliError("kube-apiserver would refuse these flags:\n"
                       + "\n".join(f"  {p}" for p in errors))


def _make_backend(args: argparse.Namespace) -> Backend:
    from pytest_kaudit.compliance.backend import make_check_backend

    return make_check_backend({o.name: getattr(args, f"backend_{o.name}")
                               for o in _backend_options()})


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Check one policy; exit 0 all pass, 1 any fails, 2 bad input."""
    from pytest_kaudit.compliance.render import renderer
    from pytest_kaudit.compliance.run import CheckOptions, run_check, select_requirements
    from pytest_kaudit.errors import KauditError, PolicyError
    from pytest_kaudit.policy import Policy

    text = read_text(args.policy, "policy")
    try:
        # as kube-apiserver 1.20-1.25 loads it: unknown fields are dropped, not errors
        policy = Policy.from_yaml(text, source=args.policy, strict=False)
    except PolicyError as exc:
        raise CliError(f"policy {args.policy!r} would be rejected by kube-apiserver:\n"
                       + "\n".join(f"  {p}" for p in exc.problems)) from None
    flags, from_file = _flags(args)
    _refuse_bad_flags(flags, origin=args.apiserver_flags or "--flag")
    packs = tuple(p.strip() for p in args.pack.split(",") if p.strip())
    try:
        requirements = select_requirements(packs, args.requirements)
    except KauditError as exc:  # RequirementsError too: file:line for each problem
        raise CliError(str(exc)) from None
    if not requirements:
        raise CliError("nothing to check: give --pack or --requirements")
    opts = CheckOptions(policy_path=args.policy, packs=packs, flags=flags,
                        flags_from_file=from_file, offline=args.offline,
                        boot_timeout=args.boot_timeout, timeout=args.timeout)
    backend = None if args.offline else (lambda: _make_backend(args))
    try:
        report = run_check(policy, requirements, opts, backend=backend)
    except PolicyError as exc:
        raise CliError(str(exc)) from None
    except KauditError as exc:
        raise CliError(f"the check could not run: {exc}") from None
    output = renderer(args.format)(report)
    if args.output:
        try:
            Path(args.output).write_text(output, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"--output {args.output!r}: {exc.strerror or exc}") from None
        from pytest_kaudit.compliance.render import summary_line

        streams.print(f"{summary_line(report)}; report written to {args.output}")
    else:
        streams.out.write(output)
    return EXIT_FINDINGS if report.failed else EXIT_OK


COMMAND = Command(
    name="check",
    help="Check a policy against audit requirements (CIS, Secrets, STIG, forensics), "
    "proven on a real apiserver",
    add_arguments=add_arguments,
    run=run,
    description=__doc__,
)

"""``kaudit scaffold POLICY [-o tests/test_audit_policy.py]``: a test module to start from.

One test per reachable rule, named after what the rule does, sending a request that rule
decides (first match) as the rule's own user, plus near misses that must fall through to the
right later rule. Unreachable and unsendable rules are listed at the end of the module. An
existing file is never overwritten unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import (
    EXIT_OK,
    CliError,
    Streams,
    add_policy_options,
    load_policy,
)

DEFAULT_OUTPUT = "tests/test_audit_policy.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``scaffold``'s arguments."""
    parser.add_argument("policy", metavar="POLICY", help="The audit policy to write tests for")
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT, metavar="PATH",
                        help=f"Where to write the module (default: {DEFAULT_OUTPUT}; - for stdout)")
    parser.add_argument("--force", action="store_true",
                        help="Overwrite PATH if it exists")
    add_policy_options(parser)


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Write the module; summarise what it tests and what it cannot."""
    from pytest_kaudit.scaffold import render_module

    policy = load_policy(args.policy, lenient=args.lenient, target_version=args.target_version)
    to_stdout = args.output == "-"
    out = Path(args.output)
    if not to_stdout and out.exists() and not args.force:
        raise CliError(f"output {args.output!r} exists; pass --force to overwrite it")
    if to_stdout:
        ref = args.policy
    else:
        ref = os.path.relpath(Path(args.policy).resolve(), out.resolve().parent)
    text, found = render_module(policy, policy_ref=ref, policy_label=args.policy,
                                module_label="-" if to_stdout else args.output,
                                lenient=args.lenient)
    if to_stdout:
        streams.out.write(text)
        return EXIT_OK
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    reachable = sum(1 for w in found if w.status == "reachable")
    misses = sum(len(w.near_misses) for w in found)
    streams.print(f"wrote {args.output}: {reachable} rule test(s) and {misses} near miss(es) "
                  f"for {len(found)} rule(s) of {args.policy}")
    for w in found:
        if w.status != "reachable":
            what = "unreachable" if w.status == "unreachable" else "not sendable"
            streams.print(f"  rules[{w.index}] has no test ({what}): {w.reason}")
    return EXIT_OK


COMMAND = Command(
    name="scaffold",
    help="Write a pytest module with one test per reachable rule of a policy",
    add_arguments=add_arguments,
    run=run,
    description=__doc__,
)

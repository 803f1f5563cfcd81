"""``kaudit replay POLICY AUDIT_LOG...``: what a candidate policy would do to real traffic.

Re-evaluates every event of an existing audit log under the candidate policy and reports
events per level before and after, bytes per day after (bodies added or dropped estimated
from the log's own sizes), the request classes that change most, and what stops being
logged. It streams: memory does not grow with the log, only with the number of distinct
request classes (capped). Malformed lines are skipped with a ``file:line`` warning.
"""

from __future__ import annotations

import argparse

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Streams,
    add_format_option,
    add_policy_options,
    load_policy,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``replay``'s arguments."""
    parser.add_argument("policy", metavar="POLICY", help="The candidate audit policy")
    parser.add_argument(
        "logs",
        metavar="AUDIT_LOG",
        nargs="+",
        help="Audit log files (JSON lines; .gz detected by content; - for stdin)",
    )
    parser.add_argument(
        "--with-rotated",
        action="store_true",
        help="Also read each log's rotated siblings (audit-<timestamp>.log[.gz]), oldest first",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="How many changed classes and stopped classes to list (default: 10)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="Processes to split large plain logs across (default: one per CPU, at most 4; "
        "on two CPUs, two only while one is idle)",
    )
    add_policy_options(parser)
    add_format_option(parser)


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Replay; exit 1 when the candidate would log anything differently, 2 on bad input."""
    from pytest_kaudit import replay

    if args.top < 1:
        raise CliError("--top must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        raise CliError("--jobs must be at least 1")
    try:
        paths = replay.expand_rotated(args.logs) if args.with_rotated else list(args.logs)
        replay.check_inputs(paths)
        policy = load_policy(args.policy, lenient=args.lenient,
                             target_version=args.target_version)
        report = replay.replay_paths(policy, paths, warn=streams.warn, jobs=args.jobs)
    except replay.InputError as exc:
        raise CliError(str(exc)) from None
    if report.warning_count > replay.MAX_WARNINGS_SHOWN:
        more = report.warning_count - replay.MAX_WARNINGS_SHOWN
        streams.warn(f"... and {more:,} more input warnings")
    if report.events == 0:
        streams.error(f"no audit events found in {', '.join(report.files)}")
        return EXIT_USAGE
    if args.format == "json":
        streams.json(replay.report_json(report, top=args.top))
    else:
        streams.print("\n".join(replay.render_text(report, top=args.top)))
    return EXIT_FINDINGS if report.has_changes else EXIT_OK


COMMAND = Command(
    name="replay",
    help="Re-evaluate a real audit log under a candidate policy: levels, bytes/day, what changes",
    add_arguments=add_arguments,
    run=run,
    description=__doc__,
)

"""The ``kaudit`` command line: ``lint``, ``explain``, ``diff``, ``replay`` and ``provision``.

Results go to stdout, diagnostics to stderr. Exit codes are meant for CI: 0 clean,
1 findings (problems, differences, changes), 2 usage or input error. This package never
imports pytest, so it works on machines that only have the policy file and a log.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from pytest_kaudit._suggest import did_you_mean
from pytest_kaudit.cli.base import EXIT_USAGE, CliError, Streams

__all__ = ["Command", "build_parser", "main"]


@dataclass(frozen=True)
class Command:
    """One sub-command: how to declare its arguments and how to run it.

    ``run`` receives the parsed arguments and the output streams, and returns the exit code.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Streams], int]
    description: str | None = None


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so ``main`` returns exit codes."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message}\n{self.format_usage().rstrip()}", code=EXIT_USAGE)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """argparse's choice check, plus a "did you mean" for a near miss (``--format jsn``)."""
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as exc:
            hint = did_you_mean(value, [str(c) for c in action.choices or ()])
            if not hint:
                raise
            raise argparse.ArgumentError(action, f"{exc.message}{hint}") from None


def _commands() -> tuple[Command, ...]:
    """Every sub-command, in ``--help`` order."""
    # Imported lazily so `kaudit --help` stays fast and import errors name the command.
    from pytest_kaudit.cli import (
        check,
        diff,
        explain,
        kind_config,
        lint,
        provision,
        replay,
        scaffold,
        up,
        verify,
    )

    modules = (lint, explain, diff, replay, kind_config, check, provision, scaffold, verify)
    return (*(module.COMMAND for module in modules), *up.COMMANDS)  # up, down, status


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one sub-parser per registered command."""
    parser = _Parser(
        prog="kaudit",
        description="Check, explain, compare and replay Kubernetes audit policies.",
        epilog="Exit codes: 0 clean, 1 findings, 2 usage or input error.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in _commands():
        p = sub.add_parser(
            command.name,
            help=command.help,
            description=command.description or command.help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(p)
        p.set_defaults(_command=command, _parser=p)
    return parser


def _refuse_unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> NoReturn:
    """The sub-command's usage error for unknown arguments, with a hint for a mistyped option."""
    hint = ""
    options = [s for action in parser._actions for s in action.option_strings]
    for extra in extras:
        if extra.startswith("--"):
            hint = did_you_mean(extra.split("=", 1)[0], options)
            if hint:
                break
    parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kaudit`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    streams = Streams(out=sys.stdout, err=sys.stderr)
    try:
        parser = build_parser()
        args, extras = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
        if extras:
            _refuse_unrecognized(args._parser, extras)
        command: Command = args._command
        return command.run(args, streams)
    except CliError as exc:
        streams.error(str(exc))
        return exc.code
    except SystemExit as exc:  # --help / --version from argparse
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        streams.error("interrupted")
        return 130
    except BrokenPipeError:  # `kaudit ... | head`
        return 0

"""What every sub-command shares: exit codes, errors, streams and policy loading."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from pytest_kaudit.policy import Policy

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

def enum_text(x: Any) -> str:
    """The string value of a Level/Stage enum member (or of a plain string)."""
    return str(getattr(x, "value", x))


class CliError(Exception):
    """A usage or input problem: printed as ``kaudit: error: <message>`` with exit code 2."""

    def __init__(self, message: str, *, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Streams:
    """stdout for results, stderr for diagnostics; injected so tests can capture both."""

    out: TextIO
    err: TextIO

    def print(self, text: str = "") -> None:
        """Write one result line (or block) to stdout."""
        self.out.write(text + "\n")

    def warn(self, text: str) -> None:
        """Write a diagnostic that does not stop the command."""
        self.err.write(f"kaudit: warning: {text}\n")

    def note(self, text: str) -> None:
        """Write a fact about the run (an assumption made) that is not a problem."""
        self.err.write(f"kaudit: note: {text}\n")

    def error(self, text: str) -> None:
        """Write a diagnostic for a failure."""
        self.err.write(f"kaudit: error: {text}\n")

    def json(self, data: Any) -> None:
        """Write ``data`` as indented JSON to stdout."""
        self.out.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


#: Largest input file read (policy, flags, kind config): far above any real one, and a
#: device such as /dev/zero cannot make the command read forever.
MAX_INPUT_BYTES = 256 * 1024 * 1024


def read_text(path: str, what: str, *, limit: int = MAX_INPUT_BYTES) -> str:
    """Read a UTF-8 text file of at most ``limit`` bytes, or raise a CliError that names it."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise CliError(f"{what} {path!r}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{what} {path!r}: is a directory") from None
    except PermissionError:
        raise CliError(f"{what} {path!r}: permission denied (not readable)") from None
    except OSError as exc:
        raise CliError(f"{what} {path!r}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise CliError(f"{what} {path!r}: larger than the {limit // (1024 * 1024)} MiB limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(
            f"{what} {path!r}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


def load_policy(path: str, *, lenient: bool = False, target_version: str | None = None) -> Policy:
    """Load a policy for commands that need a valid one (explain, diff, replay).

    A policy kube-apiserver would reject is an input error here (exit 2), with every
    problem listed; ``kaudit lint`` is the command that treats those as findings.
    """
    from pytest_kaudit.errors import PolicyError
    from pytest_kaudit.policy import Policy

    text = read_text(path, "policy")
    try:
        return Policy.from_yaml(
            text, source=path, strict=not lenient, target_version=target_version
        )
    except PolicyError as exc:
        errors = [p for p in exc.problems if p.severity == "error"] or list(exc.problems)
        lines = [f"policy {path!r} is not a valid audit policy:"]
        lines += [f"  {p}" for p in errors]
        if not errors:
            lines.append(f"  {exc}")
        raise CliError("\n".join(lines)) from None
    except (ValueError, TypeError) as exc:  # defensive: engine bugs must not become tracebacks
        raise CliError(f"policy {path!r} could not be loaded: {exc}") from None


def add_format_option(parser: Any, *, choices: tuple[str, ...] = ("text", "json")) -> None:
    """Add the shared ``--format`` option."""
    parser.add_argument(
        "--format",
        choices=choices,
        default="text",
        help=f"Output format (default: text; one of {', '.join(choices)})",
    )


def target_version(text: str) -> str:
    """``--target-version`` as given, once it is a Kubernetes version kaudit models.

    Raises:
        argparse.ArgumentTypeError: not ``1.XX[.Z]``, or older than the oldest modelled version.
    """
    from pytest_kaudit.policy.versions import NEWEST, OLDEST, format_version, parse_version

    accepted = (f"expected MAJOR.MINOR[.PATCH] such as 1.20, 1.30.2 or v1.29.0; kaudit models "
                f"{format_version(OLDEST)} to {format_version(NEWEST)}")
    try:
        version = parse_version(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid version {text!r}: {accepted}") from None
    if version[0] != 1 or version < OLDEST:
        raise argparse.ArgumentTypeError(f"unsupported version {text!r}: {accepted}")
    return text


def announce_target_version(given: str | None, streams: Streams) -> None:
    """Say on stderr which apiserver version the policy is checked against, when assumed."""
    from pytest_kaudit.policy.versions import NEWEST, format_version, parse_version

    newest = format_version(NEWEST)
    if given is None:
        streams.note(f"no --target-version given: checking with kube-apiserver {newest} "
                     "semantics (the newest modelled); pass --target-version 1.XX for your "
                     "cluster's version")
    elif parse_version(given) > NEWEST:
        streams.note(f"--target-version {given} is newer than the newest modelled version: "
                     f"checking with kube-apiserver {newest} semantics")


def add_policy_options(parser: Any) -> None:
    """Add ``--lenient`` and ``--target-version``, shared by every policy-reading command."""
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="Load the policy like kube-apiserver 1.20-1.25 (unknown fields dropped) "
        "instead of strictly",
    )
    parser.add_argument(
        "--target-version",
        metavar="1.XX",
        type=target_version,
        default=None,
        help="Kubernetes version whose apiserver semantics to apply (default: the newest known)",
    )

"""The ``kaudit`` entry point: help, usage errors, extra commands, ``python -m``."""

from __future__ import annotations

import argparse
import subprocess
import sys

from pytest_kaudit import cli


def test_help_lists_commands_and_exits_0(kaudit):
    r = kaudit("--help")
    assert r.code == 0
    for name in ("lint", "explain", "diff", "replay"):
        assert name in r.out
    assert "Exit codes: 0 clean, 1 findings, 2 usage or input error." in r.out


def test_no_command_is_a_usage_error(kaudit):
    r = kaudit()
    assert r.code == 2
    assert r.out == ""
    assert r.err.startswith(
        "kaudit: error: the following arguments are required: COMMAND\nusage: kaudit"
    )


def test_unknown_command_is_a_usage_error(kaudit):
    r = kaudit("frobnicate")
    assert r.code == 2
    assert "kaudit: error: argument COMMAND: invalid choice: 'frobnicate'" in r.err


def test_every_option_has_help_text():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"{name}: {action.dest} has no help"


def test_every_command_is_offered():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == ["lint", "explain", "diff", "replay", "kind-config", "check",
                                 "provision", "scaffold", "verify", "up", "down", "status"]


def test_python_dash_m_runs_the_cli(data):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kaudit", "lint", str(data / "policy-old.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("policy-old.yaml: no problems found\n")


def test_cli_never_imports_pytest():
    code = (
        "import sys; from pytest_kaudit.cli import build_parser; build_parser(); "
        "import pytest_kaudit.coverage, pytest_kaudit.redact; "
        "print('pytest' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"

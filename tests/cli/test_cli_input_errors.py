"""The ``kaudit`` command as a user runs it: bad input gives a clear message, never a traceback.

Every test here starts the real console entry point in a subprocess, so what is checked is
exactly what a terminal shows: exit code, stdout and stderr.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
POLICY = DATA / "policy-old.yaml"


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_kaudit(*argv: object) -> Run:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kaudit", *[str(a) for a in argv]],
        capture_output=True, text=True, timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def kaudit_in_process(kaudit: Callable[..., Run]) -> Callable[..., Run]:
    """The conftest's in-process runner (``kaudit`` here is the subprocess one)."""
    return kaudit


@pytest.mark.parametrize("unit", ["brief-kube-apiserver.yaml", "brief-kube-apiserver.service"])
def test_brief_flag_files_are_linted_not_refused(unit: str) -> None:
    flags = DATA / unit
    r = run_kaudit("lint", POLICY, "--apiserver-flags", flags, "--target-version", "1.30")
    assert r.code == 1, r.err
    assert "usage:" not in r.err and "error:" not in r.err
    line = 16 if unit.endswith(".yaml") else 8
    assert (f"{flags}:{line}: -allow-privileged: unknown shorthand flag: 'a' in "
            "-allow-privileged=true (kube-apiserver prints this and exits: it refuses to start; "
            "long flags take two dashes: --allow-privileged=true)") in r.out.splitlines()
    odd = [ln for ln in r.out.splitlines() if "'/var/;pg/k8s-audit.log' contains ';'" in ln]
    assert len(odd) == 1 and odd[0].startswith(f"{flags}:{12 if line == 16 else 10}: ")
    assert r.out.splitlines()[-1] == f"{POLICY}: 1 error, 1 warning"
    form = "a manifest fragment, 7" if line == 16 else "a systemd unit, 8"
    assert r.err.splitlines()[0] == f"kaudit: note: {flags}: read as {form} arguments"


def test_manifest_fragment_says_what_it_skipped() -> None:
    flags = DATA / "brief-kube-apiserver.yaml"
    r = run_kaudit("lint", POLICY, "--apiserver-flags", flags, "--target-version", "1.30")
    assert f"kaudit: warning: {flags}:17: not a flag, ignored: '......'" in r.err.splitlines()
    assert f"kaudit: warning: {flags}:9: not a flag, ignored: '- kube-apiserver'" in r.err


def test_kubeadm_config_as_flags_file(tmp_path: Path) -> None:
    flags = tmp_path / "kubeadm.yaml"
    flags.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
                     "apiServer:\n  extraArgs:\n  - name: audit-log-format\n    value: xml\n"
                     "  - name: audit-log-path\n    value: /var/log/a.log\n")
    r = run_kaudit("lint", POLICY, "--apiserver-flags", flags, "--target-version", "1.31")
    assert r.code == 1
    assert (f'{flags}:5: --audit-log-format: invalid audit log format xml, allowed formats are '
            '"legacy,json"') in r.out


@pytest.mark.parametrize("command", ["lint", "explain"])
def test_target_version_that_is_not_a_version(command: str) -> None:
    extra = ["get pods"] if command == "explain" else []
    r = run_kaudit(command, POLICY, *extra, "--target-version", "abc")
    assert r.code == 2
    assert r.out == ""
    assert r.err.startswith(
        "kaudit: error: argument --target-version: invalid version 'abc': expected "
        "MAJOR.MINOR[.PATCH] such as 1.20, 1.30.2 or v1.29.0; kaudit models 1.20 to 1.37\n"
        f"usage: kaudit {command} ")


def test_target_version_older_than_modelled() -> None:
    r = run_kaudit("diff", POLICY, POLICY, "--target-version", "1.5")
    assert r.code == 2
    assert "unsupported version '1.5'" in r.err


@pytest.mark.parametrize("command", ["lint", "explain"])
def test_assumed_version_is_said(command: str) -> None:
    extra = ["get pods"] if command == "explain" else []
    r = run_kaudit(command, POLICY, *extra)
    assert r.code == 0
    assert r.err == ("kaudit: note: no --target-version given: checking with kube-apiserver "
                     "1.37 semantics (the newest modelled); pass --target-version 1.XX for your "
                     "cluster's version\n")
    assert run_kaudit(command, POLICY, *extra, "--target-version", "1.22").err == ""


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["lint", POLICY, "--format", "jsn"], "did you mean 'json'?"),
        (["lint", POLICY, "--fail-on", "warn"], "did you mean 'warning'?"),
        (["lnt", POLICY], "did you mean 'lint'?"),
        (["explain", POLICY, "get pods", "--format", "txt"], "did you mean 'text'?"),
    ],
)
def test_near_miss_choices_get_a_hint(argv: list[object], hint: str) -> None:
    r = run_kaudit(*argv)
    assert r.code == 2
    first = r.err.splitlines()[0]
    assert "invalid choice" in first and first.endswith(hint)


def _missing(tmp: Path) -> Path:
    return tmp / "nope.yaml"


def _directory(tmp: Path) -> Path:
    return tmp


def _binary(tmp: Path) -> Path:
    p = tmp / "garbage.bin"
    p.write_bytes(bytes(range(256)) * 8)
    return p


def _under_a_file(tmp: Path) -> Path:
    (tmp / "file").write_text("x")
    return tmp / "file" / "policy.yaml"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_missing, "no such file"),
        (_directory, "is a directory"),
        (_binary, "not UTF-8 text (invalid start byte at byte 128)"),
        (_under_a_file, "Not a directory"),
    ],
)
@pytest.mark.parametrize("command", ["lint", "explain", "diff", "flags"])
def test_unreadable_inputs_are_named(tmp_path: Path, make: Callable[[Path], Path], message: str,
                                     command: str, kaudit_in_process: Callable[..., Run]) -> None:
    """In-process (the same ``main``; an escaping exception fails the test) to keep it quick."""
    bad = make(tmp_path)
    argv: list[object] = {
        "lint": ["lint", bad],
        "explain": ["explain", bad, "get pods"],
        "diff": ["diff", POLICY, bad],
        "flags": ["lint", POLICY, "--apiserver-flags", bad],
    }[command]
    r = kaudit_in_process(*argv, "--target-version", "1.30")
    assert r.code == 2
    what = "apiserver flags file" if command == "flags" else "policy"
    assert r.err == f"kaudit: error: {what} {str(bad)!r}: {message}\n"


def test_endless_input_is_refused_at_a_limit() -> None:
    r = run_kaudit("lint", POLICY, "--apiserver-flags", "/dev/zero", "--target-version", "1.30")
    assert r.code == 2
    assert r.err == "kaudit: error: apiserver flags file '/dev/zero': larger than the 1 MiB limit\n"


def test_empty_policy_is_a_finding_with_the_apiserver_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    r = run_kaudit("lint", empty, "--target-version", "1.30")
    assert r.code == 1
    assert "0 rules" in r.out


def test_empty_flags_file_is_linted_as_no_flags(tmp_path: Path) -> None:
    empty = tmp_path / "flags.txt"
    empty.write_text("")
    r = run_kaudit("lint", POLICY, "--apiserver-flags", empty, "--target-version", "1.30")
    assert r.code == 1
    assert f"{empty}: --audit-policy-file: --audit-policy-file is not set" in r.out


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        (["provision", "--upstrem", "v1.31.0"],
         "kaudit: error: unrecognized arguments: --upstrem v1.31.0; did you mean '--upstream'?"),
        (["lint", POLICY, "--target-versoin=1.30"],
         "kaudit: error: unrecognized arguments: --target-versoin=1.30; did you mean "
         "'--target-version'?"),
        (["lint", POLICY, "--zzz"], "kaudit: error: unrecognized arguments: --zzz"),
    ],
)
def test_mistyped_options_get_a_hint(argv: list[object], first_line: str,
                                     kaudit_in_process: Callable[..., Run]) -> None:
    r = kaudit_in_process(*argv)
    assert r.code == 2
    lines = r.err.splitlines()
    assert lines[0] == first_line
    assert lines[1].startswith(f"usage: kaudit {argv[0]} ")

"""``kaudit check`` on the command line: exit codes, formats, and input errors (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compliance_helpers import DATA, POLICIES

from pytest_kaudit.cli import main

COMPLIANT = str(POLICIES / "cis-secrets-compliant.yaml")
CIS = ["--flag", "audit-log-maxage=30", "--flag", "audit-log-maxbackup=10",
       "--flag", "audit-log-maxsize=100"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_all_passing_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", COMPLIANT, "--offline", *CIS)
    assert code == 0, out + err
    assert out.splitlines()[-1] == ("10 of 10 requirements pass, 0 fail "
                                    "(predicted by the policy engine only (--offline))")


def test_any_failure_exits_1_and_shows_a_verified_fix(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", str(DATA / "exec-none.yaml"), "--offline", *CIS)
    assert code == 1
    assert "FAIL       cis.interactive-access-logged" in out
    assert "fix (verified by the engine): insert before rules[1]" in out


def test_json_carries_ids_status_and_fixes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", str(DATA / "exec-none.yaml"), "--offline",
                       "--format", "json", *CIS, "--flag", "audit-log-maxage=10")
    doc = json.loads(out)
    assert code == 1 and doc["mode"] == "offline"
    failed = {r["id"]: r for r in doc["results"] if r["status"] == "fail"}
    assert set(failed) == {"cis.audit-log-maxage", "cis.interactive-access-logged"}
    assert failed["cis.audit-log-maxage"]["fix"]["text"] == "--audit-log-maxage=30"
    assert failed["cis.interactive-access-logged"]["failures"][0]["rule"]["index"] == 1


def test_output_file_gets_the_report_and_stdout_the_summary(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    code, out, _ = run(capsys, "check", COMPLIANT, "--offline", *CIS, "--format", "json",
                       "--output", str(target))
    assert code == 0 and json.loads(target.read_text())["summary"]["failed"] == 0
    assert out.endswith(f"report written to {target}\n")


def test_user_requirements_are_checked_with_the_packs(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    extra = tmp_path / "team.yaml"
    extra.write_text("""\
pack: team
requirements:
  - id: team.configmap-reads-not-logged
    title: ConfigMap reads are not logged
    source: Team standard 1
    rationale: Noise.
    requests: [{verbs: [get], resource: configmaps, namespaces: [x]}]
    expect: {logged: false}
""")
    code, out, _ = run(capsys, "check", COMPLIANT, "--offline", *CIS, "--pack", "",
                       "--requirements", str(extra))
    assert code == 1
    assert "FAIL       team.configmap-reads-not-logged" in out
    assert "get configmaps x/kaudit-check by admin: logged at Metadata, must not be logged" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["check", "missing.yaml", "--offline"], "policy 'missing.yaml': no such file"),
    (["check", COMPLIANT, "--offline", "--pack", "cis,nope"], "unknown pack 'nope'"),
    (["check", COMPLIANT, "--offline", "--flag", "audit-log-maxage"],
     "--flag 'audit-log-maxage': expected NAME=VALUE"),
    (["check", COMPLIANT, "--offline", "--pack", ""], "nothing to check"),
    (["check", COMPLIANT, "--offline", "--format", "pdf"], "invalid choice: 'pdf'"),
    (["check", COMPLIANT, "--offline", "--flag", "audit-log-maxage=ten"],
     'invalid argument "ten" for "--audit-log-maxage" flag'),
    (["check", COMPLIANT, "--backend", "existing"],
     "--backend existing: --backend=existing needs --kubeconfig (or KUBECONFIG)"),
])
def test_bad_input_exits_2_with_a_clear_message(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str],
        message: str) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err


def test_a_broken_requirements_file_exits_2_naming_file_and_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("requirements:\n  - id: x\n    titel: y\n")
    code, _, err = run(capsys, "check", COMPLIANT, "--offline", "--requirements", str(bad))
    assert code == 2
    assert f"{bad}:3: requirements[0].titel: unknown field 'titel' (did you mean 'title'?)" in err


def test_a_policy_the_apiserver_rejects_exits_2(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Loud\n")
    code, _, err = run(capsys, "check", str(bad), "--offline")
    assert code == 2 and "would be rejected by kube-apiserver" in err and "p.yaml:4" in err


def test_flags_file_describes_the_whole_deployment(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    flags = tmp_path / "flags.txt"
    flags.write_text("--audit-log-maxage=30\n--audit-log-maxbackup=10\n--audit-log-maxsize=100\n")
    code, out, _ = run(capsys, "check", COMPLIANT, "--offline", "--apiserver-flags", str(flags))
    assert code == 1
    assert "--audit-log-path (declared): not set" in out
    assert "--audit-policy-file (declared): not set" in out

"""``kaudit check --offline``: the engine's answers, the four failure cases, and their fixes."""

from __future__ import annotations

from pathlib import Path

import pytest
from compliance_helpers import (
    CIS_FLAGS,
    DATA,
    POLICIES,
    apply_rule_fix,
    check,
    ids_failing,
    result_of,
)

COMPLIANT = POLICIES / "cis-secrets-compliant.yaml"

#: (policy, flags, requirement ids that must fail): the four "fails on" cases.
FAILING = [
    (DATA / "secrets-request-response.yaml", CIS_FLAGS,
     ["cis.sensitive-metadata-only", "secrets.no-values-in-log"]),
    (DATA / "exec-none.yaml", CIS_FLAGS, ["cis.interactive-access-logged"]),
    (POLICIES / "brief-typos.yaml", CIS_FLAGS,
     ["cis.sensitive-metadata-only", "cis.workload-changes-logged",
      "cis.interactive-access-logged"]),
    (COMPLIANT, {**CIS_FLAGS, "audit-log-maxage": "10"}, ["cis.audit-log-maxage"]),
]


def test_the_compliant_policy_meets_cis_and_secrets() -> None:
    report = check(COMPLIANT)
    assert report.mode == "offline"
    assert ids_failing(report) == []
    assert len(report.results) >= 10


@pytest.mark.parametrize(("policy", "flags", "expected"), FAILING,
                         ids=["secrets-rr", "exec-none", "brief-typos", "maxage-10"])
def test_failing_policies_fail_exactly_the_right_requirements(
        policy: Path, flags: dict[str, str], expected: list[str]) -> None:
    assert ids_failing(check(policy, flags=flags)) == expected


def test_failures_name_the_request_and_the_deciding_rule() -> None:
    result = result_of(check(DATA / "exec-none.yaml"), "cis.interactive-access-logged")
    assert [f.subject for f in result.failures] == [
        "create pods/exec kaudit-check-a/kaudit-check by alice",
        "get pods/exec kaudit-check-a/kaudit-check by alice"]
    rule = result.failures[0].rule
    assert rule is not None and rule.index == 1
    assert rule.describe() == f"rules[1] ({DATA / 'exec-none.yaml'}:13)"


def test_the_typo_policy_is_loaded_as_the_apiserver_loads_it() -> None:
    report = check(POLICIES / "brief-typos.yaml")
    assert any('unknown field "verb"' in w for w in report.policy_warnings)
    assert any('unknown field "groups"' in w for w in report.policy_warnings)


def test_low_maxage_names_the_value_and_fixes_it() -> None:
    result = result_of(check(COMPLIANT, flags={**CIS_FLAGS, "audit-log-maxage": "10"}),
                       "cis.audit-log-maxage")
    assert result.failures[0].problems == ("is 10, must be at least 30",)
    assert result.fix is not None and result.fix.verified
    assert result.fix.text == "--audit-log-maxage=30"


@pytest.mark.parametrize(("policy", "flags", "expected"), FAILING[:3],
                         ids=["secrets-rr", "exec-none", "brief-typos"])
def test_each_suggested_rule_fix_makes_its_requirement_pass(
        policy: Path, flags: dict[str, str], expected: list[str], tmp_path: Path) -> None:
    report = check(policy, flags=flags)
    for rid in expected:
        fix = result_of(report, rid).fix
        assert fix is not None and fix.verified and fix.kind == "rule", rid
        fixed = apply_rule_fix(policy, fix, tmp_path)
        assert rid not in ids_failing(check(fixed, flags=flags)), (rid, fix.text)


def test_the_fix_goes_before_the_rule_that_shadows_it() -> None:
    fix = result_of(check(DATA / "exec-none.yaml"), "cis.interactive-access-logged").fix
    assert fix is not None and fix.insert_at == 1
    assert fix.where.startswith(f"insert before rules[1] ({DATA / 'exec-none.yaml'}:13)")
    assert "pods/exec" in fix.text and "level: Metadata" in fix.text


def test_passing_requirements_get_no_fix() -> None:
    assert all(r.fix is None for r in check(COMPLIANT).results)

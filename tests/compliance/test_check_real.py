"""``kaudit check`` proven on a real kube-apiserver (local backend)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from compliance_helpers import (
    CIS_FLAGS,
    DATA,
    POLICIES,
    Checker,
    apply_rule_fix,
    check,
    ids_failing,
    result_of,
)

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.cli import main
from pytest_kaudit.compliance.render import render_json, render_text
from pytest_kaudit.compliance.render.html import render_html
from pytest_kaudit.compliance.render.junit import render_junit

ALL_PACKS = ("cis", "secrets", "stig", "forensics")
#: What any canary value starts with, plain and base64-encoded (its prefix).
CANARY_SHAPES = (re.compile(r"kaudit-canary-[0-9a-f]{8}"),
                 re.compile(re.escape(base64.b64encode(b"kaudit-canary-").decode()[:16])))


def test_the_compliant_policy_passes_on_a_real_apiserver(
        control_plane_binaries: ControlPlaneBinaries, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(POLICIES / "cis-secrets-compliant.yaml"), "--format", "json",
                 *(f"--flag={k}={v}" for k, v in CIS_FLAGS.items())])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, [r for r in doc["results"] if r["status"] != "pass"]
    assert doc["mode"] == "real" and doc["backend"] == "local"
    assert all(r["proven"] and r["status"] == "pass" for r in doc["results"])
    assert doc["summary"]["engineBugs"] == 0


def test_secrets_at_request_response_leak_the_canary_located_not_printed(
        real_check: Checker) -> None:
    policy = DATA / "secrets-request-response.yaml"
    report = real_check(policy)
    assert ids_failing(report) == ["cis.sensitive-metadata-only", "secrets.no-values-in-log"]
    leak = result_of(report, "secrets.no-values-in-log")
    assert leak.proven and not leak.engine_bugs
    subjects = {f.subject for f in leak.failures}
    assert "get secrets kaudit-canary/kaudit-canary by admin (canary)" in subjects
    assert "list secrets kaudit-canary by admin (canary)" in subjects
    for failure in leak.failures:
        assert re.search(r"audit\.log:\d+ holds the value \((plain|base64)\)",
                         failure.problems[0]), failure
        assert failure.rule is not None and failure.rule.index == 0
        assert failure.rule.describe() == f"rules[0] ({policy}:7)"
    for text in (render_text(report), render_json(report), render_junit(report),
                 render_html(report)):
        for shape in CANARY_SHAPES:
            assert not shape.search(text)


def test_a_none_rule_for_exec_before_the_catch_all_is_caught(real_check: Checker) -> None:
    report = real_check(DATA / "exec-none.yaml")
    assert ids_failing(report) == ["cis.interactive-access-logged"]
    result = result_of(report, "cis.interactive-access-logged")
    assert [f.subject for f in result.failures] == [
        "create pods/exec kaudit-check-a/kaudit-check by alice",
        "get pods/exec kaudit-check-a/kaudit-check by alice"]
    assert all(f.evidence == ("no events logged",) for f in result.failures)


def test_the_typo_policy_and_a_short_maxage_fail_with_their_ids(real_check: Checker) -> None:
    report = real_check(POLICIES / "brief-typos.yaml",
                        flags={**CIS_FLAGS, "audit-log-maxage": "10"})
    assert ids_failing(report) == [
        "cis.audit-log-maxage", "cis.sensitive-metadata-only", "cis.workload-changes-logged",
        "cis.interactive-access-logged"]
    maxage = result_of(report, "cis.audit-log-maxage")
    assert maxage.failures[0].describe() == (
        "--audit-log-maxage (running apiserver): is 10, must be at least 30")


def test_the_suggested_fix_for_the_leak_is_proven_on_the_real_apiserver(
        real_check: Checker, tmp_path: Path) -> None:
    policy = DATA / "secrets-request-response.yaml"
    fix = result_of(check(policy), "secrets.no-values-in-log").fix
    assert fix is not None and fix.verified and fix.insert_at == 0
    fixed = apply_rule_fix(policy, fix, tmp_path)
    assert ids_failing(real_check(fixed)) == []


def test_forensics_catches_unrecorded_401s_anonymous_requests_and_rbac_bodies(
        real_check: Checker) -> None:
    policy = DATA / "authenticated-only.yaml"
    expected = ["forensics.rbac-changes-with-bodies", "forensics.failed-authentication-logged",
                "forensics.anonymous-logged"]
    assert ids_failing(check(policy, packs=("forensics",))) == expected
    report = real_check(policy, packs=("forensics",))
    assert ids_failing(report) == expected and report.engine_bugs == []
    unauth = result_of(report, "forensics.failed-authentication-logged")
    assert {f.subject for f in unauth.failures} == {
        "get secrets kaudit-check-a/kaudit-check by an invalid token",
        "list secrets kaudit-check-a by an invalid token", "get /api by an invalid token"}


def test_cis_and_stig_together_state_their_conflict(real_check: Checker) -> None:
    report = real_check(POLICIES / "cis-secrets-compliant.yaml", packs=("cis", "stig"))
    assert ids_failing(report) == ["stig.request-response-everything"]
    assert report.conflicts == [
        "cis.sensitive-metadata-only (Secrets, ConfigMaps and TokenReviews are logged at "
        "Metadata, without bodies) and stig.request-response-everything (Every request is "
        "logged at RequestResponse) cannot both be met by one policy: one of them will fail "
        "whatever the policy says."]


@pytest.mark.parametrize("policy", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.name)
def test_offline_and_real_agree_on_every_check(real_check: Checker, policy: Path) -> None:
    offline = check(policy, packs=ALL_PACKS)
    real = real_check(policy, packs=ALL_PACKS)
    assert [(r.requirement.id, r.status) for r in offline.results] == \
        [(r.requirement.id, r.status) for r in real.results]
    assert real.engine_bugs == []

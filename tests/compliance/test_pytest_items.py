"""``pytest --kaudit-pack``: one test item per requirement, tested with pytester."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from compliance_helpers import CIS_FLAGS, DATA

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries

FLAGS = [f"--kaudit-apiserver-flag={k}={v}" for k, v in CIS_FLAGS.items()]


def test_each_requirement_is_an_item_named_by_its_id(
        pytester: pytest.Pytester, control_plane_binaries: ControlPlaneBinaries) -> None:
    policy = pytester.path / "policy.yaml"
    policy.write_text((DATA / "exec-none.yaml").read_text())
    result = pytester.runpytest("--kaudit-pack=cis", f"--kaudit-policy={policy}", *FLAGS,
                                "--junitxml=junit.xml", "-v")
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines([
        "*kaudit-check(policy.yaml)::cis.audit-log-maxage PASSED*",
        "*kaudit-check(policy.yaml)::cis.interactive-access-logged FAILED*",
        "*create pods/exec kaudit-check-a/kaudit-check by alice: not logged*rules?1?*",
        "*fix (verified by the engine): insert before rules?1?*",
    ])
    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    names = {c.get("name"): c.find("failure") is not None for c in cases
             if c.get("classname") == "kaudit-check(policy.yaml)"}
    assert names["cis.interactive-access-logged"] is True
    assert names["cis.secrets-access-logged"] is False and len(names) == 9


def test_keyword_selection_applies_to_requirements(
        pytester: pytest.Pytester, control_plane_binaries: ControlPlaneBinaries) -> None:
    policy = pytester.path / "policy.yaml"
    policy.write_text((DATA / "exec-none.yaml").read_text())
    result = pytester.runpytest("--kaudit-pack=cis", f"--kaudit-policy={policy}",
                                "--kaudit-apiserver-flag=audit-log-maxage=10", "-k", "maxage")
    result.assert_outcomes(failed=1, deselected=8)
    result.stdout.fnmatch_lines(["*--audit-log-maxage (running apiserver): is 10, must be at "
                                 "least 30*"])


def test_a_pack_without_a_policy_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--kaudit-pack=cis")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kaudit-pack needs the policy to check: give "
                                 "--kaudit-policy=PATH*or collect tests marked*"])


def test_an_unknown_pack_is_a_usage_error(pytester: pytest.Pytester) -> None:
    policy = pytester.path / "policy.yaml"
    policy.write_text((DATA / "exec-none.yaml").read_text())
    result = pytester.runpytest("--kaudit-pack=cis,pci", f"--kaudit-policy={policy}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kaudit-pack: unknown pack 'pci'*"])


def test_a_marked_module_gives_the_policy_and_flags_to_check(
        pytester: pytest.Pytester, control_plane_binaries: ControlPlaneBinaries) -> None:
    (pytester.path / "policy.yaml").write_text((DATA / "exec-none.yaml").read_text())
    pytester.makepyfile(test_audit=f"""
        import pytest

        pytestmark = pytest.mark.kaudit(policy="policy.yaml", flags={CIS_FLAGS!r})

        def test_secret_reads_are_logged(kaudit):
            kaudit.list_secrets()
            kaudit.expect(verb="list", resource="secrets").logged(level="Metadata")
    """)
    result = pytester.runpytest("--kaudit-pack=cis", "-v")
    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines([
        "*test_audit.py::test_secret_reads_are_logged PASSED*",
        "*kaudit-check(policy.yaml)::cis.audit-log-maxage PASSED*",
        "*kaudit-check(policy.yaml)::cis.interactive-access-logged FAILED*",
    ])
    booted = [line for line in result.stdout.lines if line.startswith("kaudit: clusters booted")]
    assert len(booted) == 1 and booted[0].count("kaudit-local-") == 1  # one shared cluster

"""Expectations against the real kube-apiserver: deliberately wrong ones fail, explained.

Each pytester run below boots a real etcd + kube-apiserver (local backend) with the policy
given by the test file.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from tests.conftest import POLICIES

BRIEF = POLICIES / "brief.yaml"

WRONG = f"""
import pytest
pytestmark = pytest.mark.kaudit(policy={str(BRIEF)!r})

def test_secret_expected_with_bodies(kaudit):
    kaudit.create_secret("s1", string_data={{"password": "hunter2-topsecret"}})
    kaudit.read_secret("s1")
    kaudit.expect(verb="get", resource="secrets", name="s1").logged(level="RequestResponse")

def test_configmap_expected_but_policy_drops_it(kaudit):
    kaudit.create_configmap("cm1")
    kaudit.read_configmap("cm1")
    kaudit.expect(verb="get", resource="configmaps", name="cm1").logged(timeout=1)

def test_secret_create_expected_absent(kaudit):
    kaudit.create_secret("s2", string_data={{"password": "hunter2-topsecret"}})
    kaudit.expect(resource="secrets").not_logged()

def test_webapp_delete_expected_with_request_received(kaudit):
    kaudit.create_pod("webapp-pod", "prod-namespace")
    kaudit.delete_pod("webapp-pod", "prod-namespace")
    kaudit.expect(verb="delete", name="webapp-pod").logged(
        stages=["RequestReceived", "ResponseComplete"], timeout=1)
"""


@dataclass
class Run:
    """One pytest run in a child process, shared by this module's assertions (one boot)."""

    stdout: pytest.LineMatcher
    ret: int
    path: Path


@pytest.fixture(scope="module")
def wrong_run(control_plane_binaries: ControlPlaneBinaries,
              tmp_path_factory: pytest.TempPathFactory) -> Run:
    path = tmp_path_factory.mktemp("wrong")
    (path / "test_wrong.py").write_text(WRONG)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--junitxml=report.xml",
         "test_wrong.py"], cwd=path, capture_output=True, text=True, timeout=300)
    return Run(pytest.LineMatcher(proc.stdout.splitlines()), proc.returncode, path)


def test_all_wrong_expectations_fail(wrong_run: Run) -> None:
    wrong_run.stdout.fnmatch_lines(["*4 failed in*"])
    assert wrong_run.ret == 1


def test_wrong_level_names_the_rule_and_its_level(wrong_run: Run) -> None:
    wrong_run.stdout.fnmatch_lines([
        "E*AssertionError: 1 matching request logged, but 1 check failed",
        "E*expected: verb=get, resource=secrets, name=s1",
        "E*NOTE: the policy itself gives Metadata, not RequestResponse: either the policy or the test is wrong",
        f"E*policy prediction: rules[[]1[]] ({BRIEF}:*) applies to GET /api/v1/namespaces/kaudit-*/secrets/s1 by kaudit-admin (auditID kaudit-*), so Metadata",
        "E*omitted stages: RequestReceived",
        "E*problems:",
        "E*request kaudit-*-2 (get secrets) logged at Metadata, expected RequestResponse",
    ])


def test_missing_event_says_the_policy_drops_it(wrong_run: Run) -> None:
    wrong_run.stdout.fnmatch_lines([
        "E*AssertionError: expected an audit event matching the filters, found none",
        "E*expected: verb=get, resource=configmaps, name=cm1",
        "E*NOTE: the policy itself says this request is not logged (level None)*",
        "E*policy prediction: no rule of *brief.yaml matches GET /api/v1/namespaces/*/configmaps/cm1*",
        "E*searched: 0 event(s) of this test's requests*",
        "E*nearest events logged in this test: none",
    ])


def test_not_logged_lists_offenders_and_the_barrier(wrong_run: Run) -> None:
    wrong_run.stdout.fnmatch_lines([
        "E*AssertionError: expected no audit event matching the filters, found 1",
        "E*log complete up to: barrier request kaudit-barrier-* (GET /version as kaudit:barrier) is in the log",
        "E*offending events*",
        "E*- create secrets kaudit-*/s2 by kaudit-admin, ResponseComplete at Metadata, code 201 (allow), bodies: none*",
    ])


def test_omitted_stage_expected_is_flagged(wrong_run: Run) -> None:
    wrong_run.stdout.fnmatch_lines([
        "E*NOTE: the policy omits RequestReceived, which the test expects",
        "E*logged stages ResponseComplete; expected RequestReceived, ResponseComplete (missing RequestReceived)",
    ])


def test_secret_data_never_reaches_reports(wrong_run: Run) -> None:
    text = wrong_run.stdout.str()
    junit = (wrong_run.path / "report.xml").read_text()
    assert "kaudit audit events" in text
    # the test source itself is printed in tracebacks; the event data must not add the value
    assert "aHVudGVyMi10b3BzZWNyZXQ" not in text + junit  # base64 of the secret value
    assert 'name="kaudit_events"' in junit


RRPOLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
    "rules": [{"level": "RequestResponse", "resources": [{"group": "", "resources": ["secrets", "configmaps"]}]},
              {"level": "Metadata"}],
}


def test_secret_bodies_are_redacted_in_evidence(control_plane_binaries: ControlPlaneBinaries,
                                                pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.kaudit(policy={RRPOLICY!r})
        def test_fails(kaudit):
            kaudit.create_secret("s", string_data={{"password": "hunter2-topsecret"}})
            kaudit.read_secret("s")
            kaudit.expect(verb="get", resource="secrets").logged(level="Metadata")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml=report.xml")
    result.assert_outcomes(failed=1)
    junit = (pytester.path / "report.xml").read_text()
    out = result.stdout.str()
    assert "aHVudGVyMi10b3BzZWNyZXQ" not in out + junit
    events = re.search(r'name="kaudit_events" value="([^"]*)"', junit)
    assert events is not None
    assert "redacted" in events.group(1)
    assert "hunter2" not in events.group(1) and "hunter2" not in out.split("def test_fails")[0]


def test_two_configurations_boot_two_clusters_and_switching_reuses_them(
        control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import pytest
        A = pytest.mark.kaudit(policy={str(BRIEF)!r})
        B = pytest.mark.kaudit(policy={RRPOLICY!r}, flags={{"audit-log-maxbackup": "10"}})

        @A
        def test_a1(kaudit):
            kaudit.create_configmap("c")
            kaudit.expect(resource="configmaps").not_logged()

        @B
        def test_b(kaudit):
            kaudit.create_configmap("c")
            kaudit.expect(verb="create", resource="configmaps").logged(
                level="RequestResponse", request_object=True, response_object=True)
            assert kaudit.handle.apiserver_flags["audit-log-maxbackup"] == "10"

        @A
        def test_a2(kaudit):
            kaudit.create_configmap("c")
            kaudit.expect(resource="configmaps").not_logged()
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    booted = [line for line in result.outlines if line.startswith("kaudit: clusters booted:")]
    assert len(booted) == 1 and booted[0].count("kaudit-local-") == 2


def test_rotation_during_a_test_loses_no_event(control_plane_binaries: ControlPlaneBinaries,
                                               pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import glob, os, pytest

        @pytest.mark.kaudit(policy={RRPOLICY!r}, flags={{"audit-log-maxsize": "1"}})
        def test_rotates(kaudit):
            big = "x" * 300_000
            kaudit.create_configmap("big", data={{"k": big}})
            for _ in range(4):  # each RequestResponse event carries ~300 KB
                kaudit.read_configmap("big")
            events = kaudit.expect(verb="get", resource="configmaps", name="big").logged(count=4)
            assert len({{e.audit_id for e in events}}) == 4
            log_dir = os.path.dirname(kaudit.handle.apiserver_flags["audit-log-path"])
            assert glob.glob(os.path.join(log_dir, "audit-*.log")), "no rotation happened"
            assert kaudit.log_problems == []
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_forbidden_and_impersonation_fields(control_plane_binaries: ControlPlaneBinaries,
                                            pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import pytest
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        @pytest.mark.kaudit(policy={RRPOLICY!r})
        def test_forbid(kaudit):
            with pytest.raises(ApiException):
                client.CoreV1Api(kaudit.client_for("alice", ["team-a"])).list_namespaced_config_map("default")
            [e] = kaudit.expect(user="alice", code=403).logged(level="RequestResponse")
            assert e.decision == "forbid" and "team-a" in e.groups
            assert e.request_object is None and e.response_object["reason"] == "Forbidden"

        @pytest.mark.kaudit(policy={RRPOLICY!r})
        def test_impersonated(kaudit):
            api = kaudit.client
            api.set_default_header("Impersonate-User", "bob")
            with pytest.raises(ApiException):
                client.CoreV1Api(api).read_namespaced_config_map("missing", "default")
            [e] = kaudit.expect(impersonated_user="bob").logged()
            assert e.user == "kaudit-admin" and e.code == 403
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_failed_boot_is_reported_once_then_not_retried(
        control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import pytest
        pytestmark = pytest.mark.kaudit(policy={str(BRIEF)!r},
                                        flags={{"authorization-mode": "Nope"}})

        def test_first(kaudit):
            pass

        def test_second(kaudit):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        "*kube-apiserver failed to start: exited with code*",
        '*authorization-mode "Nope" is not a valid mode*',
        "*failed earlier in this session; not retried*",
    ])


def test_granted_reads_patches_and_lists(control_plane_binaries: ControlPlaneBinaries,
                                         pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.kaudit(policy={RRPOLICY!r})
        def test_granted(kaudit):
            kaudit.create_configmap("c", data={{"k": "v1"}})
            kaudit.grant("alice", ["get", "patch"], ["configmaps"])
            kaudit.read_configmap("c", as_user="alice")
            [get] = kaudit.expect(verb="get", user="alice", stage="ResponseComplete").logged()
            assert get.decision == "allow" and get.code == 200
            assert "RoleBinding" in get.annotations["authorization.k8s.io/reason"]
            kaudit.patch_configmap("c", {{"k": "v2"}}, as_user="alice")
            [patch] = kaudit.expect(verb="patch", user="alice", stage="ResponseComplete").logged(
                request_object=True, response_object=True)
            assert patch.request_object == {{"data": {{"k": "v2"}}}}  # the raw patch document
            kaudit.list_pods()
            kaudit.expect(verb="list", resource="pods").logged(level="Metadata")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_events_contradicting_the_policy_copy_raise_a_warning(
        control_plane_binaries: ControlPlaneBinaries, tmp_path: Path) -> None:
    """As on an `existing` cluster given the wrong policy copy: the cluster runs RRPOLICY,
    predictions use brief.yaml."""
    from pytest_kaudit.backends.base import ClusterSpec
    from pytest_kaudit.backends.local import LocalBackend
    from pytest_kaudit.fixture import KAudit
    from pytest_kaudit.policy import Policy

    backend = LocalBackend(base_dir=tmp_path)
    running = Policy.from_dict(RRPOLICY)
    handle = backend.start(ClusterSpec(running))
    try:
        wrong_copy = KAudit(handle, policy=Policy.load(BRIEF), test_name="copy", timeout=10)
        wrong_copy.create_configmap("c")
        events = wrong_copy.expect(verb="create", resource="configmaps").logged(
            stages=["RequestReceived", "ResponseComplete"])
        [line, *_] = wrong_copy.policy_mismatches(events)
        assert "create configmaps" in line and "the policy predicts None (no rule)" in line
        right_copy = KAudit(handle, policy=running, test_name="copy2", timeout=10)
        right_copy.create_configmap("d")
        events = right_copy.expect(verb="create", resource="configmaps").logged()
        assert right_copy.policy_mismatches(events) == []
        wrong_copy.close()
        right_copy.close()
    finally:
        backend.stop(handle)

"""Rule coverage in pytest, and the CLI on an audit log written by the real apiserver."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_kaudit.backends.base import ClusterSpec
from pytest_kaudit.backends.local import LocalBackend
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.policy import Policy
from tests.conftest import POLICIES

BRIEF = POLICIES / "brief.yaml"


def test_rule_coverage_report_json_and_fail_under(control_plane_binaries: ControlPlaneBinaries,
                                                  pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import pytest
        pytestmark = pytest.mark.kaudit(policy={str(BRIEF)!r})

        def test_secrets_only(kaudit):
            kaudit.create_secret("s")
            kaudit.expect(verb="create", resource="secrets").logged()
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kaudit-coverage=cov.json",
                                           "--kaudit-fail-under=90")
    result.stdout.fnmatch_lines(["*kaudit policy rule coverage*",
                                 "*kaudit: policy rule coverage 50.0% is below --kaudit-fail-under=90*"])
    assert result.ret == 1
    data = json.loads((pytester.path / "cov.json").read_text())
    assert "brief.yaml" in json.dumps(data)


ONE_STAGE_EACH_RULE = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
  resources: [{group: "", resources: ["secrets"]}]
- level: None
"""


def test_coverage_counts_each_request_once_not_each_logged_stage(
        control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester) -> None:
    """Each secret request is logged twice (RequestReceived, ResponseComplete) and was also
    sent by the test: still one hit per request."""
    pytester.makefile(".yaml", policy=ONE_STAGE_EACH_RULE)
    pytester.makepyfile("""
        import pytest
        pytestmark = pytest.mark.kaudit(policy="policy.yaml")

        def test_two_secret_requests(kaudit):
            kaudit.create_secret("s")
            kaudit.read_secret("s")
            kaudit.expect(verb="get", resource="secrets", stage="ResponseComplete").logged()
            stages = sorted(e.stage for e in kaudit.events(resource="secrets"))
            assert stages == ["RequestReceived", "RequestReceived",
                              "ResponseComplete", "ResponseComplete"]
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kaudit-coverage=cov.json")
    assert result.ret == 0, result.stdout.str()
    rules = json.loads((pytester.path / "cov.json").read_text())["policies"][0]["rules"]
    assert rules[0]["hits"] == 2


def test_replay_and_explain_on_a_real_log(control_plane_binaries: ControlPlaneBinaries,
                                          tmp_path: Path) -> None:
    backend = LocalBackend(base_dir=tmp_path)
    rr_all = Policy.from_dict({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                               "rules": [{"level": "RequestResponse"}]})
    handle = backend.start(ClusterSpec(rr_all))
    try:
        from pytest_kaudit.fixture import KAudit

        kaudit = KAudit(handle, policy=rr_all, test_name="replay", timeout=10)
        kaudit.create_secret("s", string_data={"password": "hunter2-topsecret"})
        kaudit.read_secret("s")
        kaudit.create_configmap("c")
        kaudit.expect(verb="create", resource="configmaps").logged()
        kaudit.close()
        log_copy = tmp_path / "real-audit.log"
        log_copy.write_bytes(Path(handle.apiserver_flags["audit-log-path"]).read_bytes())
    finally:
        backend.stop(handle)
    proc = subprocess.run([sys.executable, "-m", "pytest_kaudit", "replay", str(BRIEF),
                           str(log_copy), "--format", "json"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr  # the brief policy logs much less
    report = json.loads(proc.stdout)
    assert "hunter2" not in proc.stdout
    assert report  # before/after level counts are present
    explain = subprocess.run([sys.executable, "-m", "pytest_kaudit", "explain", str(BRIEF),
                              "get secrets -n prod"], capture_output=True, text=True)
    assert explain.returncode == 0, explain.stderr
    assert "Metadata" in explain.stdout

"""Policies are judged by the apiserver that will run them, not by the newest one we know.

Real apiserver: the provisioned kube-apiserver is 1.20, which still reads
``audit.k8s.io/v1beta1`` policies (removed in 1.24).
"""

from __future__ import annotations

import pytest

from pytest_kaudit.backends.base import ClusterSpec, validate_spec
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.errors import PolicyError
from pytest_kaudit.policy_cache import PolicyCache

V1BETA1 = """\
apiVersion: audit.k8s.io/v1beta1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
  - level: None
"""

TESTS = """
    import pytest

    def test_from_the_session_policy(kaudit):
        kaudit.create_secret("s", string_data={"k": "v"})
        kaudit.expect(verb="create", resource="secrets").logged(level="Metadata")
        kaudit.expect(resource="configmaps").not_logged()
        assert kaudit.policy.api_version == "audit.k8s.io/v1beta1"
        assert kaudit.policy.target_version == kaudit.handle.version

    @pytest.mark.kaudit(policy={"apiVersion": "audit.k8s.io/v1beta1", "kind": "Policy",
                                "rules": [{"level": "Request",
                                           "resources": [{"group": "",
                                                          "resources": ["configmaps"]}]}]})
    def test_from_a_marker(kaudit):
        kaudit.create_configmap("c")
        kaudit.expect(verb="create", resource="configmaps").logged(level="Request")
"""


def test_a_v1beta1_policy_boots_on_the_1_20_apiserver(control_plane_binaries: ControlPlaneBinaries,
                                                      pytester: pytest.Pytester) -> None:
    if control_plane_binaries.version >= (1, 24):
        pytest.skip(f"the provisioned apiserver is {control_plane_binaries.version_text}")
    pytester.makefile(".yaml", policy=V1BETA1)
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kaudit-policy=policy.yaml",
                                           "-W", "error::pytest_kaudit.PolicyMismatchWarning")
    result.assert_outcomes(passed=2)


def test_a_v1beta1_policy_is_refused_for_1_24_with_the_1_24_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "policy.yaml").write_text(V1BETA1)
    policy = PolicyCache(strict=True).load("policy.yaml", tmp_path, tmp_path)  # any version
    for version in ((1, 20), (1, 23)):
        validate_spec(ClusterSpec(policy), version)
    with pytest.raises(PolicyError) as refused:
        validate_spec(ClusterSpec(policy), (1, 24))
    text = str(refused.value)
    assert text.startswith("refusing to boot kube-apiserver v1.24")
    assert "audit.k8s.io/v1beta1 was removed in Kubernetes 1.24" in text


def test_a_policy_no_version_accepts_keeps_the_newest_versions_words(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "policy.yaml").write_text(V1BETA1.replace("level: None", "level: Everything"))
    with pytest.raises(PolicyError, match="rules\\[1\\].level"):
        PolicyCache(strict=True).load("policy.yaml", tmp_path, tmp_path)

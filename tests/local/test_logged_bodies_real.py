"""Which bodies the real kube-apiserver logs, and what ``logged()`` expects by default.

The expectation and the compliance judge read one rule (``pytest_kaudit.policy.bodies``). Each
inner test below sends one kind of request and calls ``logged()`` without body arguments, so
the default is checked against what kube-apiserver 1.20 actually wrote.
"""

from __future__ import annotations

import pytest

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Request
  resources: [{group: "", resources: [serviceaccounts/token, configmaps]}]
- level: RequestResponse
  resources: [{group: "", resources: [pods]}]
- level: Metadata
"""

INNER = """
import pytest

pytestmark = pytest.mark.kaudit(policy={policy!r})
SA = {{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {{"name": "sa"}}}}
TOKEN = {{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {{}}}}
CM = {{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "cm"}}}}

def test_token_request_body_is_not_logged(kaudit):
    ns = kaudit.namespace
    assert kaudit.request("POST", f"/api/v1/namespaces/{{ns}}/serviceaccounts", body=SA) == 201
    assert kaudit.request("POST", f"/api/v1/namespaces/{{ns}}/serviceaccounts/sa/token",
                          body=TOKEN) == 201
    events = kaudit.expect(resource="serviceaccounts", subresource="token").logged(
        level="Request")
    assert not any(e.has_request_object for e in events)

def test_forbidden_create_logs_no_body(kaudit):
    ns = kaudit.namespace
    assert kaudit.request("POST", f"/api/v1/namespaces/{{ns}}/configmaps", body=CM,
                          as_user="mallory") == 403
    events = kaudit.expect(resource="configmaps", user="mallory").logged(level="Request")
    assert not any(e.has_request_object for e in events)

def test_bodiless_get_logs_no_body(kaudit):
    ns = kaudit.namespace
    assert kaudit.request("GET", f"/api/v1/namespaces/{{ns}}/configmaps/nope") == 404
    kaudit.expect(resource="configmaps", verb="get").logged(level="Request")

def test_watch_logs_no_response_body(kaudit):
    ns = kaudit.namespace
    assert kaudit.request("GET", f"/api/v1/namespaces/{{ns}}/pods?watch=1&timeoutSeconds=1") == 200
    events = kaudit.expect(resource="pods", verb="watch").logged(level="RequestResponse")
    assert not any(e.has_response_object for e in events)
"""


def test_default_body_expectations_match_the_apiserver(
        control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester) -> None:
    policy = pytester.path / "policy.yaml"
    policy.write_text(POLICY)
    pytester.makepyfile(test_inner=INNER.format(policy=str(policy)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)

"""``kaudit.request``: any request, exactly as written, attributed to the test. Real apiserver."""

from __future__ import annotations

import pytest

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries

LOG_EVERYTHING = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Request
"""


def test_raw_requests_are_sent_as_written_and_attributed(
    control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(f"""
        import pytest
        pytestmark = pytest.mark.kaudit(policy={LOG_EVERYTHING!r})

        def test_non_resource_url_as_a_user(kaudit):
            assert kaudit.request("GET", "/healthz", as_user="alice", groups=["dev"]) == 200
            [event] = kaudit.expect(verb="get", user="alice").logged(level="Request")
            assert event.path == "/healthz" and "dev" in event.groups

        def test_refused_and_missing_are_results(kaudit):
            path = f"/api/v1/namespaces/{{kaudit.namespace}}/configmaps/nothing-here"
            assert kaudit.request("GET", path) == 404
            assert kaudit.request("DELETE", path, as_user="mallory") == 403
            kaudit.expect(verb="delete", resource="configmaps", user="mallory").logged(
                level="Request")

        def test_a_body_is_sent(kaudit):
            body = {{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "raw"}},
                     "data": {{"k": "v"}}}}
            path = f"/api/v1/namespaces/{{kaudit.namespace}}/configmaps"
            assert kaudit.request("POST", path, body=body) == 201
            [event] = kaudit.expect(verb="create", resource="configmaps").logged(
                level="Request", request_object=True)
            assert event.request_object["data"] == {{"k": "v"}}
    """)
    # in a subprocess: an in-process run would unload the kubernetes models it imported
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)

"""Tests on one cluster send through the same open connections: no TLS set-up per test."""

from __future__ import annotations

import pytest

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
"""


def test_a_tests_first_request_reuses_an_earlier_tests_connection(
        control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import pytest
        pytestmark = pytest.mark.kaudit(policy={POLICY!r})
        SEEN = []

        def _connections(kaudit):
            manager = kaudit.client.rest_client.pool_manager
            return manager, manager.connection_from_url(kaudit.handle.server)

        def test_first(kaudit):
            assert kaudit.request("GET", "/version") == 200
            kaudit.expect(verb="get", resource="secrets").not_logged()  # a barrier too
            SEEN.append(_connections(kaudit))

        def test_second(kaudit):
            assert kaudit.request("GET", "/version") == 200
            kaudit.expect(verb="get", resource="secrets").not_logged()
            manager, pool = _connections(kaudit)
            assert manager is SEEN[0][0]
            assert pool.num_connections == 1, "the first test's connection, still open"
            [event] = kaudit.events(verb="get", stage="ResponseComplete")  # its own only
            assert event.audit_id.startswith(kaudit.ids.prefix + "-")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)

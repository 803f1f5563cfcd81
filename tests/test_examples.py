"""The example compliance suite (the brief's scenarios) against the real local apiserver."""

from __future__ import annotations

import re

import pytest

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from tests.conftest import EXAMPLES


def test_brief_compliance_suite_passes_on_the_real_apiserver(
    pytester: pytest.Pytester, control_plane_binaries: ControlPlaneBinaries
) -> None:
    result = pytester.runpytest_subprocess(str(EXAMPLES), "-p", "no:cacheprovider", "-v",
                                           "-W", "error::pytest_kaudit.PolicyMismatchWarning")
    result.assert_outcomes(passed=6)
    # the policy engine predicted every level the real apiserver logged
    result.stdout.no_fnmatch_line("*PolicyMismatchWarning*")
    result.stdout.fnmatch_lines(["*test_webapp_pod_delete_logged_with_both_bodies PASSED*",
                                 "kaudit: clusters booted: kaudit-local-*"])


def test_brief_suite_under_xdist_one_control_plane_per_worker(
    pytester: pytest.Pytester, control_plane_binaries: ControlPlaneBinaries
) -> None:
    base = pytester.mkdir("clusters")
    pytester._monkeypatch.setenv("TMPDIR", str(base))
    result = pytester.runpytest_subprocess(str(EXAMPLES), "-p", "no:cacheprovider", "-n", "2",
                                           "--kaudit-evidence=always", "-rA")
    result.assert_outcomes(passed=6)
    # each worker ran its own control plane, in its own directory (the evidence names it)...
    clusters = set(re.findall(r"clusters/(kaudit-local-[^/]+)/audit", result.stdout.str()))
    assert len(clusters) == 2
    # ...and both were removed at the end
    assert list(base.iterdir()) == []

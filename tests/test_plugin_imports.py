"""Collection stays lean: the kubernetes client is imported only once a test needs a cluster.

Its import takes about half a second (its config package pulls in requests, oauthlib and
more); a run that boots a cluster imports it while the cluster boots, and ``--collect-only``
never does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_collect_only_does_not_import_the_kubernetes_client(pytester: pytest.Pytester) -> None:
    # the example suite, less its own import of the client (for the ApiException it catches)
    example = (ROOT / "examples" / "test_brief_compliance.py").read_text()
    assert "from kubernetes.client.rest import ApiException\n" in example
    (pytester.path / "examples").mkdir()
    (pytester.path / "examples" / "test_brief_compliance.py").write_text(
        example.replace("from kubernetes.client.rest import ApiException\n", ""))
    (pytester.path / "fixtures" / "policies").mkdir(parents=True)
    (pytester.path / "fixtures" / "policies" / "brief.yaml").write_text(
        (ROOT / "fixtures" / "policies" / "brief.yaml").read_text())
    pytester.makeconftest("""
        import sys

        def pytest_sessionfinish(session):
            loaded = sorted(m for m in sys.modules if m.split(".")[0] == "kubernetes")
            print(f"kubernetes modules loaded: {len(loaded)} {loaded[:3]}")
    """)
    result = pytester.runpytest_subprocess("--collect-only", "-s", "-p", "no:cacheprovider",
                                           "examples")
    result.stdout.fnmatch_lines(["*kubernetes modules loaded: 0 []*"])
    result.stdout.fnmatch_lines(["*test_secret_reads*", "*6 tests collected*"])

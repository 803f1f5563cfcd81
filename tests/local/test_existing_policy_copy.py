"""The ``kaudit`` fixture on an ``existing`` cluster uses the copy of its policy the backend has.

The cluster is a real local control plane (etcd + kube-apiserver), reached as an existing
cluster through its admin kubeconfig and audit log file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_kaudit.backends.base import ClusterHandle, ClusterSpec
from pytest_kaudit.backends.local import LocalBackend
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.policy import Policy

LOG_EVERYTHING = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""


@pytest.fixture
def cluster(control_plane_binaries: ControlPlaneBinaries,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    backend = LocalBackend(base_dir=tmp_path_factory.mktemp("clusters"))
    handle = backend.start(ClusterSpec(Policy.from_yaml(LOG_EVERYTHING)))
    yield handle
    backend.stop(handle)


def test_fixture_uses_the_backends_copy_of_the_policy(cluster: ClusterHandle,
                                                      pytester: pytest.Pytester) -> None:
    copy = pytester.path / "cluster-policy-copy.yaml"
    copy.write_text(LOG_EVERYTHING)
    # The plugin builds ExistingBackend from its options, which carry no policy copy; here a
    # conftest gives the backend one, as a program constructing ExistingBackend(policy=) does.
    pytester.makeconftest(f"""
        import pytest_kaudit.backend_choice as choice
        import pytest_kaudit.plugin as plugin
        from pytest_kaudit.backends.existing import ExistingBackend

        def make_backend(cfg):
            return ExistingBackend(cfg.kubeconfig, log_path=cfg.log_path, policy={str(copy)!r})

        plugin.make_backend = make_backend
        choice.make_backend = make_backend
    """)
    pytester.makepyfile(f"""
        def test_copy(kaudit):
            assert kaudit.policy is not None, "the copy of the cluster's policy is ignored"
            assert kaudit.policy.source == {str(copy)!r}
            # (no namespace of the test's own: no controller makes its ServiceAccount here)
            assert kaudit.request("GET", "/api/v1/namespaces/default/configmaps") == 200
            # proving absence needs a request the policy is known to log: the copy names one
            kaudit.expect(verb="delete", resource="configmaps").not_logged()
    """)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--kaudit-backend=existing",
        f"--kaudit-kubeconfig={cluster.kubeconfig}",
        f"--kaudit-log-path={Path(cluster.log_source.description)}")
    result.assert_outcomes(passed=1)

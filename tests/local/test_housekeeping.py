"""The plugin's own requests stay out of a test's evidence; namespaces are ready for pods.

Against the real kube-apiserver (local backend). The local control plane has no
kube-controller-manager, so where a ServiceAccount controller is needed a thread of this test
stands in for it, and says so.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from pytest_kaudit.backends.base import ClusterHandle, ClusterSpec
from pytest_kaudit.backends.local import LocalBackend
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.client import AuditIds, make_client
from pytest_kaudit.errors import KauditError
from pytest_kaudit.housekeeping import Housekeeping
from pytest_kaudit.policy import Policy

LOG_EVERYTHING = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""


def _audit_ids(handle: ClusterHandle) -> list[str]:
    path = Path(handle.log_source.description)
    return [json.loads(line)["auditID"] for line in path.read_text().splitlines() if line]


def test_a_tests_events_are_only_its_own_requests(control_plane_binaries: ControlPlaneBinaries,
                                                  pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import pytest
        pytestmark = pytest.mark.kaudit(policy={LOG_EVERYTHING!r})
        HK = []

        def _check(kaudit):
            events = kaudit.events()
            assert events, "the test's own requests are logged"
            assert {{(e.verb, e.resource) for e in events}} == {{("create", "configmaps")}}
            assert not [e for e in kaudit.events(scope="window")
                        if e.audit_id.startswith("kaudit-hk-")]
            HK.append(kaudit.housekeeping)

        def test_first(kaudit):
            kaudit.create_configmap("a", namespace="named-ns")
            kaudit.create_configmap("b", namespace="named-ns")
            kaudit.create_configmap("c")
            _check(kaudit)

        def test_second(kaudit):
            kaudit.create_configmap("d", namespace="named-ns")
            _check(kaudit)
            assert HK[0] is HK[1], "one housekeeping per cluster"
            creates = [s for s in HK[0].ids.sent.values()
                       if s.method == "POST" and s.path == "/api/v1/namespaces"]
            # named-ns once for both tests, and each test's own namespace once
            assert len(creates) == 2, creates
    """)
    # in a subprocess: an in-process run would unload the kubernetes models it imported
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


@pytest.fixture(scope="module")
def cluster(control_plane_binaries: ControlPlaneBinaries,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    backend = LocalBackend(base_dir=tmp_path_factory.mktemp("clusters"))
    handle = backend.start(ClusterSpec(Policy.from_yaml(LOG_EVERYTHING), flags={
        "enable-admission-plugins": "NamespaceLifecycle,ServiceAccount"}))
    try:
        yield handle
    finally:
        backend.stop(handle)


def test_pods_work_with_the_service_account_admission_plugin_enabled(
        cluster: ClusterHandle) -> None:
    from pytest_kaudit.fixture import KAudit

    assert "ServiceAccount" in cluster.apiserver_flags["enable-admission-plugins"]
    assert "disable-admission-plugins" not in cluster.apiserver_flags
    assert cluster.service_account_controller is False
    kaudit = KAudit(cluster, policy=None, test_name="t", timeout=5)
    try:
        kaudit.create_pod("p", namespace="fresh-ns")
        kaudit.create_pod("q")
        sa = k8s.CoreV1Api(kaudit.client).read_namespaced_service_account("default", "fresh-ns")
        assert sa.metadata.name == "default"
        ids = _audit_ids(cluster)
        # the plugin created the ServiceAccount, under its own Audit-ID prefix only
        assert any(i.startswith("kaudit-hk-") for i in ids)
    finally:
        kaudit.close()


def test_where_a_controller_creates_service_accounts_housekeeping_waits_for_it(
        cluster: ClusterHandle) -> None:
    from dataclasses import replace

    with_controller = replace(cluster, service_account_controller=True)
    housekeeping = Housekeeping(with_controller, timeout=30)
    # stand-in for kube-controller-manager's ServiceAccount controller: it creates `default`
    # once the namespace exists, as the real one does (later, on real clusters)
    # its own client: an ApiClient keeps the last response on itself, so it is not shared
    # between threads
    stand_in = make_client(cluster, cluster.admin, AuditIds("stand-in-controller"),
                           user_agent="stand-in ServiceAccount controller")
    core = k8s.CoreV1Api(stand_in)
    stop = threading.Event()
    errors: list[str] = []

    def controller() -> None:
        while not stop.is_set():
            try:
                core.create_namespaced_service_account("waited-ns", k8s.V1ServiceAccount(
                    metadata=k8s.V1ObjectMeta(name="default"),
                    # before 1.21 the token controller also links a token Secret
                    secrets=[k8s.V1ObjectReference(name="default-token-stand-in")]))
                return
            except Exception as exc:  # 404 until the namespace exists; anything else: retry
                errors.append(repr(exc)[:300])
            stop.wait(0.05)

    thread = threading.Thread(target=controller)
    thread.start()
    try:
        try:
            housekeeping.ensure_namespace("waited-ns")
        except KauditError:
            raise AssertionError(f"the stand-in controller failed: {errors[-3:]}") from None
        core.read_namespaced_service_account("default", "waited-ns")  # it exists now
    finally:
        stop.set()
        thread.join()
        stand_in.close()
        housekeeping.close()


def test_a_service_account_that_never_comes_is_a_clear_error(cluster: ClusterHandle) -> None:
    from dataclasses import replace

    housekeeping = Housekeeping(replace(cluster, service_account_controller=True), timeout=0.5)
    try:
        with pytest.raises(KauditError, match='"default" ServiceAccount of namespace lonely-ns '
                                              "did not appear within 0.5s"):
            housekeeping.ensure_namespace("lonely-ns")
    finally:
        housekeeping.close()

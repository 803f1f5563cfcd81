"""The fixture's actions on a real apiserver: the client's own models back, its exceptions on
error, and no generated API class loaded on the way (their import is the warm run's largest
cost, see ``pytest_kaudit/calls.py``)."""

from __future__ import annotations

import pytest

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries

LOG_EVERYTHING = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: RequestResponse
"""


def test_actions_answer_with_models_and_raise_api_exceptions(
    control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester
) -> None:
    # a subprocess: this suite's conftest loads the generated API classes up front
    pytester.makepyfile(f"""
        import sys

        import kubernetes.client as k8s
        import pytest
        from kubernetes.client.exceptions import ApiException

        # releases before the pydantic models load every API class with the package
        EAGER = any(m.startswith("kubernetes.client.api.") for m in sys.modules)

        pytestmark = pytest.mark.kaudit(policy={LOG_EVERYTHING!r})

        def test_actions(kaudit):
            created = kaudit.create_secret("db", string_data={{"password": "x"}})
            assert isinstance(created, k8s.V1Secret) and created.metadata.name == "db"
            assert created.data == {{"password": "eA=="}}  # base64 of "x", as the server keeps it
            assert kaudit.read_secret("db").metadata.uid == created.metadata.uid
            listed = kaudit.list_secrets()
            assert isinstance(listed, k8s.V1SecretList)
            assert [s.metadata.name for s in listed.items] == ["db"]

            kaudit.create_configmap("cfg", data={{"a": "1"}})
            patched = kaudit.patch_configmap("cfg", {{"b": "2"}})
            assert isinstance(patched, k8s.V1ConfigMap) and patched.data == {{"a": "1", "b": "2"}}
            [event] = kaudit.expect(verb="patch", resource="configmaps").logged()
            assert event.request_object == {{"data": {{"b": "2"}}}}  # the patch, as sent

            pod = kaudit.create_pod("web", labels={{"app": "web"}})
            assert isinstance(pod, k8s.V1Pod) and pod.metadata.labels == {{"app": "web"}}
            assert pod.spec.automount_service_account_token is False
            assert [p.metadata.name for p in kaudit.list_pods().items] == ["web"]
            kaudit.delete_pod("web")
            [event] = kaudit.expect(verb="delete", resource="pods").logged()
            assert event.request_object is not None  # DeleteOptions were sent

            with pytest.raises(ApiException) as missing:
                kaudit.read_secret("nope")
            assert missing.value.status == 404 and "nope" in missing.value.body
            with pytest.raises(ApiException) as denied:
                kaudit.read_secret("db", as_user="mallory")
            assert denied.value.status == 403
            with pytest.raises(ApiException) as taken:
                kaudit.create_secret("db")
            assert taken.value.status == 409

            kaudit.grant("mallory", verbs=["get"], resources=["secrets"])
            assert kaudit.read_secret("db", as_user="mallory").metadata.name == "db"
            assert kaudit.request("GET", "/api/v1/namespaces", as_user="eve") == 403
            kaudit.grant("eve", verbs=["list"], resources=["namespaces"], cluster_wide=True)
            assert kaudit.request("GET", "/api/v1/namespaces", as_user="eve") == 200

            generated = sorted(m for m in sys.modules if m.startswith("kubernetes.client.api."))
            assert EAGER or generated == [], generated
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)

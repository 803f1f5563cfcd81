"""The product brief's audit requirements, as a compliance suite.

Policy under test: fixtures/policies/brief.yaml. Run it against any backend:

    pytest examples                          # local control plane (default)
    pytest examples --kaudit-backend=kind    # a kind cluster
"""

import pytest
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.kaudit(policy="../fixtures/policies/brief.yaml")


def test_webapp_pod_delete_logged_with_both_bodies(kaudit):
    kaudit.create_pod("webapp-pod", "prod-namespace")
    kaudit.delete_pod("webapp-pod", "prod-namespace")

    kaudit.expect(
        verb="delete", resource="pods", namespace="prod-namespace", name="webapp-pod"
    ).logged(
        level="RequestResponse",
        stages=["ResponseComplete"],  # RequestReceived is omitted by the policy
        request_object=True,
        response_object=True,
    )


def test_other_pod_deletes_are_not_logged(kaudit):
    kaudit.create_pod("batch-pod", "prod-namespace")
    kaudit.delete_pod("batch-pod", "prod-namespace")

    kaudit.expect(resource="pods", name="batch-pod").not_logged()


def test_secret_reads_logged_at_metadata_without_bodies(kaudit):
    kaudit.create_secret("db-password", string_data={"password": "s3cr3t"})
    kaudit.read_secret("db-password")

    [event] = kaudit.expect(verb="get", resource="secrets", name="db-password").logged(
        level="Metadata", stages=["ResponseComplete"]
    )
    assert event.request_object is None and event.response_object is None


def test_configmap_read_not_logged(kaudit):
    kaudit.create_configmap("app-settings")
    kaudit.read_configmap("app-settings")

    kaudit.expect(resource="configmaps").not_logged()


def test_forbidden_secret_list_logged_with_decision_forbid(kaudit):
    with pytest.raises(ApiException) as denied:
        kaudit.list_secrets(as_user="mallory")
    assert denied.value.status == 403

    [event] = kaudit.expect(verb="list", resource="secrets", user="mallory").logged(
        level="Metadata"
    )
    assert event.code == 403
    assert event.decision == "forbid"


def test_secret_watch_logs_response_started_and_complete(kaudit):
    kaudit.watch("secrets", timeout_seconds=1)

    kaudit.expect(verb="watch", resource="secrets").logged(
        level="Metadata", stages=["ResponseStarted", "ResponseComplete"]
    )

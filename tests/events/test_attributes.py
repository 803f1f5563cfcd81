"""The one event → request-attributes converter, and the readers that go through it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_kaudit.events.attributes import attributes_from_event, group_version
from pytest_kaudit.events.model import event_from_dict
from pytest_kaudit.policy import Level, Policy
from pytest_kaudit.replay import replay_paths

V1ALPHA1 = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1alpha1", "level": "RequestResponse",
    "auditID": "a1", "stage": "ResponseComplete", "verb": "list",
    "requestURI": "/apis/apps/v1/namespaces/ns/deployments?limit=5",
    "user": {"username": "alice", "groups": ["system:authenticated"]},
    "objectRef": {"resource": "deployments", "namespace": "ns", "apiVersion": "apps/v1"},
    "responseStatus": {"code": 200},
    "requestReceivedTimestamp": "2026-11-26T20:10:00.000001Z",
    "stageTimestamp": "2026-11-26T20:10:00.000002Z",
}
POLICY = Policy.from_dict({
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
    "rules": [{"level": "RequestResponse",
               "resources": [{"group": "apps", "resources": ["deployments"]}]},
              {"level": "Metadata"}],
})


def _with_ref(**ref: str) -> dict[str, Any]:
    return {**V1ALPHA1, "objectRef": {"resource": "deployments", **ref}}


def test_group_version_of_each_event_version() -> None:
    assert group_version({"apiVersion": "apps/v1"}) == ("apps", "v1")  # v1alpha1
    assert group_version({"apiVersion": "v1"}) == ("", "v1")  # core, any version
    assert group_version({"apiGroup": "apps", "apiVersion": "v1"}) == ("apps", "v1")  # v1
    assert group_version({}) == ("", "")


def test_v1alpha1_event_attributes_carry_the_group() -> None:
    attrs = attributes_from_event(V1ALPHA1)
    assert (attrs.api_group, attrs.api_version, attrs.path) == (
        "apps", "v1", "/apis/apps/v1/namespaces/ns/deployments")
    event = event_from_dict(V1ALPHA1)
    assert event.api_group == "apps" and event.attributes == attrs
    assert POLICY.evaluate_attributes(attrs).level == Level.REQUEST_RESPONSE


def test_replay_decides_v1alpha1_events_with_their_group(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(json.dumps(V1ALPHA1) + "\n")
    report = replay_paths(POLICY, [str(log)])
    assert report.events == 1
    assert not report.changed_requests, report.changed_requests


def test_a_create_is_decided_without_the_name_the_body_gave() -> None:
    event = {**_with_ref(apiGroup="apps", apiVersion="v1", name="web"), "verb": "create"}
    assert attributes_from_event(event).name == ""
    evict = {**event, "objectRef": {"resource": "pods", "subresource": "eviction",
                                    "name": "web", "apiVersion": "v1"}}
    assert attributes_from_event(evict).name == "web"


def test_failed_authentication_has_no_user() -> None:
    attrs = attributes_from_event({**V1ALPHA1, "user": {}})
    assert attrs.user is None

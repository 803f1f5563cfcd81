"""The traffic sender and judge on a real kube-apiserver: identities, bodies, predictions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_kaudit.backends.base import ClusterHandle, ClusterSpec
from pytest_kaudit.backends.local import LocalBackend
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.policy import Level, Policy, Stage
from pytest_kaudit.traffic import MERGE_PATCH, Identity, RequestSpec, TrafficSession

POLICY = Policy.from_dict({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
    {"level": "RequestResponse", "resources": [{"group": "", "resources": ["configmaps"]}]},
    {"level": "None", "users": ["bob"]},
    {"level": "Metadata"},
]})


@pytest.fixture(scope="module")
def handle(control_plane_binaries: ControlPlaneBinaries) -> Iterator[ClusterHandle]:
    backend = LocalBackend()
    h = backend.start(ClusterSpec(policy=POLICY))
    try:
        yield h
    finally:
        backend.stop(h)


@pytest.fixture
def session(handle: ClusterHandle) -> Iterator[TrafficSession]:
    with TrafficSession(handle, POLICY, name="test_traffic") as s:
        yield s


def test_every_identity_is_sent_as_described_and_judged_as_predicted(
        session: TrafficSession) -> None:
    secret = dict(verb="get", resource="secrets", namespace="default", name="missing")
    specs = [
        RequestSpec(**secret),  # type: ignore[arg-type]
        RequestSpec(**secret, identity=Identity.human("alice", ("dev",))),  # type: ignore[arg-type]
        RequestSpec(**secret, identity=Identity.service_account("default", "robot")),  # type: ignore[arg-type]
        RequestSpec(**secret, identity=Identity.anonymous()),  # type: ignore[arg-type]
        RequestSpec(**secret, identity=Identity.invalid()),  # type: ignore[arg-type]
        RequestSpec(**secret, identity=Identity.impersonating("alice", ("dev",))),  # type: ignore[arg-type]
        RequestSpec(**secret, identity=Identity.human("bob")),  # type: ignore[arg-type]
    ]
    verdicts = session.judge(session.send_all(specs))
    assert [v.sent.status for v in verdicts] == [404, 403, 403, 403, 401, 403, 403]
    assert [v.observed.user for v in verdicts[:6]] == [
        session.handle.admin.user, "alice", "system:serviceaccount:default:robot",
        "system:anonymous", None, session.handle.admin.user]
    assert verdicts[4].observed.stages == {Stage.RESPONSE_STARTED}  # a 401: one event
    assert verdicts[5].observed.impersonated_user == "alice"
    assert not verdicts[6].observed.is_logged and verdicts[6].events == ()
    for v in verdicts:
        assert v.engine_disagreements == [], v.sent.spec.describe()
    assert len({v.sent.audit_id for v in verdicts}) == len(specs)


def test_bodies_follow_level_and_outcome(session: TrafficSession) -> None:
    cm = dict(resource="configmaps", namespace="default", name="kaudit-traffic")
    specs = [RequestSpec(verb="create", **cm),  # type: ignore[arg-type]
             RequestSpec(verb="patch", content_type=MERGE_PATCH, **cm),  # type: ignore[arg-type]
             RequestSpec(verb="create", identity=Identity.human("alice"), **cm),  # type: ignore[arg-type]
             RequestSpec(verb="create", resource="pods", subresource="exec",
                         namespace="default", name="missing")]
    created, patched, denied, exec_ = session.judge(session.send_all(specs))
    assert (created.sent.status, created.observed.level) == (201, Level.REQUEST_RESPONSE)
    assert created.observed.request_body and created.observed.response_body
    assert patched.observed.request_body
    assert denied.sent.status == 403 and denied.observed.request_body is False
    assert denied.observed.response_body  # the Status of the denial
    assert exec_.observed.stages == {Stage.REQUEST_RECEIVED, Stage.RESPONSE_STARTED,
                                     Stage.RESPONSE_COMPLETE}
    for v in (created, patched, denied, exec_):
        assert v.engine_disagreements == [], v.sent.spec.describe()

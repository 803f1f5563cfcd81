"""The judge's prediction and comparison, without a cluster (the real side is in
test_traffic.py)."""

from __future__ import annotations

from pytest_kaudit.policy import Level, Policy, RequestAttributes, Stage
from pytest_kaudit.traffic import Logged, disagreements, predict

POLICY = Policy.from_dict({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                           "omitStages": ["RequestReceived"], "rules": [
                               {"level": "RequestResponse",
                                "resources": [{"group": "", "resources": ["configmaps"]}]},
                               {"level": "Metadata"}]})


def attrs(method: str, path: str, user: str | None = "alice") -> RequestAttributes:
    return RequestAttributes.from_http(method, path, user=user,
                                       groups=("system:authenticated",) if user else ())


def test_prediction_follows_level_stages_and_outcome() -> None:
    created = predict(POLICY, attrs("POST", "/api/v1/namespaces/a/configmaps"),
                      sends_body=True, status=201)
    assert created == Logged(Level.REQUEST_RESPONSE, frozenset({Stage.RESPONSE_COMPLETE}),
                             request_body=True, response_body=True, user="alice")
    denied = predict(POLICY, attrs("POST", "/api/v1/namespaces/a/configmaps"),
                     sends_body=True, status=403)
    assert denied.request_body is False and denied.response_body is True
    unknown = predict(POLICY, attrs("POST", "/api/v1/namespaces/a/configmaps"),
                      sends_body=True)
    assert unknown.request_body is None  # authorised or not: cannot tell offline
    exec_ok = predict(POLICY, attrs("POST", "/api/v1/namespaces/a/pods/p/exec"),
                      sends_body=False, status=101)
    assert exec_ok.stages == {Stage.RESPONSE_STARTED, Stage.RESPONSE_COMPLETE}
    failed_auth = predict(POLICY, attrs("GET", "/api", user=None), sends_body=False)
    assert failed_auth.stages == {Stage.RESPONSE_STARTED} and failed_auth.user is None


def test_disagreements_are_named_field_by_field() -> None:
    want = Logged(Level.METADATA, frozenset({Stage.RESPONSE_COMPLETE}), request_body=False,
                  response_body=None)
    got = Logged(Level.REQUEST, frozenset({Stage.RESPONSE_COMPLETE, Stage.REQUEST_RECEIVED}),
                 request_body=True, response_body=True, impersonated_user="bob")
    assert disagreements(want, got) == [
        "level Request, predicted Metadata",
        "stages RequestReceived, ResponseComplete, predicted ResponseComplete",
        "request body present, predicted absent",
        "impersonated user bob, predicted none",
    ]
    assert disagreements(got, got) == []

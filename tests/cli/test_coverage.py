"""``RuleCoverage``: hits from sent requests and logged events, unreachable rules, reports."""

from __future__ import annotations

import json

from pytest_kaudit.coverage import RuleCoverage, attributes_from_event
from pytest_kaudit.policy import Policy, RequestAttributes

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/healthz*"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["secrets"]
- level: Metadata
  verbs: ["watch"]
- level: Metadata
- level: Request
  resources:
  - group: apps
"""


def _policy() -> Policy:
    return Policy.from_yaml(POLICY, source="audit-policy.yaml")


def test_report_lists_never_hit_and_unreachable_rules():
    cov = RuleCoverage()
    policy = _policy()
    key = cov.add_policy(policy)
    assert key == "audit-policy.yaml"
    assert cov.add_policy(policy) == key
    # a request the test sent that matched a level-None rule (no event exists for it)
    assert cov.record(policy, RequestAttributes.from_http("GET", "/healthz", user="a")) == 0
    # an event the apiserver logged
    event = {
        "level": "RequestResponse",
        "stage": "ResponseComplete",
        "verb": "get",
        "requestURI": "/api/v1/namespaces/prod/secrets/db",
        "user": {"username": "alice", "groups": ["g"]},
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
    }
    assert cov.record(key, event) == 1
    assert cov.percent() == 50.0
    assert cov.report() == (
        "kaudit rule coverage\n"
        "audit-policy.yaml: 2/4 reachable rules covered (50.0%)\n"
        "  never hit:\n"
        "    rule 2 (line 10): level Metadata for watch any request by anyone\n"
        "    rule 3 (line 12): level Metadata for every verb on any request by anyone\n"
        "  unreachable (no request can reach them; fix the policy):\n"
        "    rule 4 (line 13): level Request for every verb on group apps in any namespace by anyone: "
        + cov.to_json()["policies"][0]["rules"][4]["reason"]
    )


def test_a_request_counts_once_per_rule_however_many_stages_it_logged():
    cov = RuleCoverage()
    policy = _policy()
    sent = RequestAttributes.from_http("GET", "/api/v1/namespaces/prod/secrets/db", user="alice")
    stage = {
        "level": "RequestResponse",
        "verb": "get",
        "requestURI": "/api/v1/namespaces/prod/secrets/db",
        "user": {"username": "alice"},
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
    }
    received = {**stage, "stage": "RequestReceived"}
    complete = {**stage, "stage": "ResponseComplete"}
    assert cov.record_request(policy, [sent, received, complete]) == {1}
    # logged differently from what was predicted: both rules, each once
    watched = {**complete, "verb": "watch", "objectRef": {"resource": "pods", "apiVersion": "v1"}}
    assert cov.record_request(policy, [sent, watched, watched]) == {1, 2}
    assert [r["hits"] for r in cov.to_json()["policies"][0]["rules"]] == [0, 2, 1, 0, 0]


def test_to_json_is_serialisable_and_complete():
    cov = RuleCoverage()
    policy = _policy()
    cov.record(policy, policy.evaluate(verb="watch", resource="pods"))
    doc = json.loads(json.dumps(cov.to_json()))
    assert doc["covered"] == 1 and doc["coverable"] == 4 and doc["unreachable"] == 1
    rules = doc["policies"][0]["rules"]
    assert [r["status"] for r in rules] == [
        "uncovered",
        "uncovered",
        "covered",
        "uncovered",
        "unreachable",
    ]
    assert rules[2]["hits"] == 1 and rules[2]["line"] == 10


def test_unmatched_requests_and_empty_coverage():
    cov = RuleCoverage()
    assert cov.report() == "kaudit rule coverage: no policy was used"
    assert cov.percent() == 100.0
    p = Policy.from_yaml(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  users: [x]\n"
    )
    assert cov.record(p, RequestAttributes.from_http("GET", "/version", user="y")) is None
    assert cov.to_json()["policies"][0]["unmatched_requests"] == 1
    assert cov.percent() == 0.0


def test_two_policies_with_same_source_get_distinct_keys():
    cov = RuleCoverage()
    a, b = _policy(), _policy()
    assert (cov.add_policy(a), cov.add_policy(b)) == ("audit-policy.yaml", "audit-policy.yaml #2")
    assert "total: 0/8 reachable rules covered (0.0%)" in cov.report()


def test_attributes_from_401_event_are_unauthenticated():
    attrs = attributes_from_event(
        {
            "verb": "list",
            "user": {},
            "requestURI": "/api/v1/namespaces/default/pods",
            "objectRef": {"resource": "pods", "namespace": "default", "apiVersion": "v1"},
        }
    )
    assert attrs.user is None and attrs.is_resource_request and attrs.namespace == "default"
    attrs = attributes_from_event(
        {"verb": "get", "user": {"username": "a"}, "requestURI": "/version?x=1"}
    )
    assert (attrs.is_resource_request, attrs.path, attrs.user) == (False, "/version", "a")

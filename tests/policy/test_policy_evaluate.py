"""Evaluation: every resource-matching edge case, omitStages union, omitManagedFields precedence."""

from __future__ import annotations

from typing import Any

import pytest
from policy_helpers import FIXTURES, policy

from pytest_kaudit.policy import Decision, Level, Policy, RequestAttributes, Stage


def one_rule(fragment: str, version: str | None = None) -> Policy:
    return policy(f"rules:\n- level: Metadata\n{fragment}", target_version=version)


POD_LOG: dict[str, Any] = {"resource": "pods", "subresource": "log"}
PODS: dict[str, Any] = {"resource": "pods"}

# (rule fragment, request kwargs, matches?, target version)
SEMANTICS = [
    ("  resources: [{resources: [pods]}]\n", PODS, True, None),
    ("  resources: [{resources: [pods]}]\n", POD_LOG, False, None),
    ("  resources: [{resources: [pods/log]}]\n", POD_LOG, True, None),
    ('  resources: [{resources: ["*"]}]\n', POD_LOG, True, None),
    ('  resources: [{resources: ["*/log"]}]\n', POD_LOG, True, None),
    ('  resources: [{resources: ["*/log"]}]\n', PODS, False, None),
    ('  resources: [{resources: ["pods/*"]}]\n', POD_LOG, True, None),
    ('  resources: [{resources: ["pods/*"]}]\n', PODS, True, None),
    ('  resources: [{resources: ["*/*"]}]\n', POD_LOG, False, None),
    ('  resources: [{resources: ["*/*"]}]\n', PODS, False, None),
    ('  resources: [{group: ""}]\n', POD_LOG, True, None),
    ('  resources: [{group: ""}]\n', {"resource": "deployments", "api_group": "apps"}, False, None),
    ("  resources: [{group: apps}]\n",
     {"resource": "deployments", "subresource": "scale", "api_group": "apps"}, True, None),
    ("  resources: [{resources: [deployments]}]\n",
     {"resource": "deployments", "api_group": "apps"}, False, None),
    ('  resources: [{group: "*", resources: ["*/status"]}]\n',
     {"resource": "clusterroles", "subresource": "status",
      "api_group": "rbac.authorization.k8s.io"}, True, "1.36"),
    ("  resources: [{resources: [pods], resourceNames: [a]}]\n", {**PODS, "name": "a"}, True, None),
    ("  resources: [{resources: [pods], resourceNames: [a]}]\n",
     {**PODS, "verb": "list"}, False, None),
    ("  resources: [{resources: [pods], resourceNames: [a]}]\n",
     {**PODS, "verb": "create"}, False, None),
    ('  resources: [{resources: [pods], resourceNames: [""]}]\n',
     {**PODS, "verb": "list"}, True, None),
    ('  namespaces: [""]\n', {"resource": "nodes", "verb": "get", "name": "n1"}, True, None),
    ('  namespaces: [""]\n', {"resource": "pods", "namespace": "default"}, False, None),
    ("  namespaces: [default]\n", {"path": "/healthz"}, False, None),
    ("  namespaces: [foo]\n",
     {"resource": "namespaces", "namespace": "foo", "name": "foo", "verb": "get"}, True, None),
    ('  nonResourceURLs: ["/healthz*"]\n', {"path": "/healthz"}, True, None),
    ('  nonResourceURLs: ["/healthz*"]\n', {"path": "/healthz/etcd"}, True, None),
    ('  nonResourceURLs: ["/healthz*"]\n', {"path": "/healthzfoo"}, True, None),
    ('  nonResourceURLs: ["/healthz"]\n', {"path": "/healthz/"}, False, None),
    ('  nonResourceURLs: ["*"]\n', PODS, False, None),
    ('  nonResourceURLs: ["/api*"]\n', {"path": "/api/v1"}, True, None),
    ('  nonResourceURLs: ["/api*"]\n', {"resource": "pods", "path": "/api/v1/pods"}, False, None),
    ("", PODS, True, None),
    ("", {"path": "/metrics"}, True, None),
    ("  users: [tim]\n  userGroups: [nobody]\n", {**PODS, "user": "tim", "groups": ["x"]},
     False, None),
    ("  users: [tim]\n  userGroups: [nobody]\n", {**PODS, "user": "tim", "groups": ["nobody"]},
     True, None),
    ("  users: [tim]\n", {**PODS, "user": "tim", "authenticated": False}, False, None),
    ("  userGroups: [system:unauthenticated]\n",
     {**PODS, "groups": ["system:unauthenticated"], "authenticated": False}, False, None),
    ("  verbs: [GET]\n", {**PODS, "verb": "get"}, False, None),
    ('  verbs: ["*"]\n', {**PODS, "verb": "get"}, False, None),
    ('  users: ["*"]\n', {**PODS, "user": "tim"}, False, None),
]


@pytest.mark.parametrize(("fragment", "request_kwargs", "matches", "version"), SEMANTICS)
def test_semantics_table(
    fragment: str,
    request_kwargs: dict[str, Any],
    matches: bool,  # noqa: FBT001
    version: str | None,
) -> None:
    decision = one_rule(fragment, version).evaluate(**request_kwargs)
    assert (decision.rule_index == 0) is matches
    assert decision.level is (Level.METADATA if matches else Level.NONE)


def test_group_star_is_literal_in_the_checker_before_1_36() -> None:
    # Validation rejects it before 1.36, so the checker can only be exercised directly.
    from pytest_kaudit.policy.evaluate import names_constraint
    from pytest_kaudit.policy.model import GroupResources

    entries = (GroupResources(group="*", resources=("*/status",)),)
    args = (entries, "rbac.authorization.k8s.io", "clusterroles", "status")
    assert names_constraint(*args, group_wildcard=False)[0] is False
    assert names_constraint(*args, group_wildcard=True)[0] is True


def test_first_match_wins_and_none_stops_evaluation() -> None:
    p = policy("rules:\n- level: None\n  users: [noisy]\n- level: RequestResponse\n")
    assert p.evaluate(user="noisy", resource="pods").rule_index == 0
    assert p.evaluate(user="noisy", resource="pods").level is Level.NONE
    assert p.evaluate(user="alice", resource="pods").level is Level.REQUEST_RESPONSE


def test_omit_stages_union_and_default() -> None:
    p = policy(
        "omitStages: [RequestReceived]\n"
        "rules:\n- level: Metadata\n  omitStages: [Panic]\n  users: [a]\n"
    )
    assert p.evaluate(user="a", path="/x").omit_stages == {Stage.REQUEST_RECEIVED, Stage.PANIC}
    unmatched = p.evaluate(user="b", path="/x")
    assert unmatched == Decision(Level.NONE, frozenset({Stage.REQUEST_RECEIVED}))


@pytest.mark.parametrize(
    ("global_value", "rule_value", "expected"),
    [(False, None, False), (True, None, True), (True, False, False), (False, True, True)],
)
def test_omit_managed_fields_precedence(
    global_value: bool,  # noqa: FBT001
    rule_value: bool | None,  # noqa: FBT001
    expected: bool,  # noqa: FBT001
) -> None:
    rule = "" if rule_value is None else f"  omitManagedFields: {str(rule_value).lower()}\n"
    p = policy(f"omitManagedFields: {str(global_value).lower()}\nrules:\n- level: Request\n{rule}")
    assert p.evaluate(resource="pods").omit_managed_fields is expected


def test_evaluate_attributes_and_http_agree() -> None:
    p = Policy.load(FIXTURES / "brief.yaml")
    attrs = RequestAttributes.from_http(
        "DELETE", "/api/v1/namespaces/prod-namespace/pods/webapp-pod", user="alice"
    )
    assert p.evaluate_attributes(attrs).level is Level.REQUEST_RESPONSE
    other = RequestAttributes.from_http(
        "DELETE", "/api/v1/namespaces/prod-namespace/pods/other", user="alice"
    )
    assert p.evaluate_attributes(other).level is Level.NONE
    secret = RequestAttributes.from_http("GET", "/api/v1/namespaces/x/secrets/s", user="a")
    assert p.evaluate_attributes(secret).level is Level.METADATA
    configmap = RequestAttributes.from_http("GET", "/api/v1/namespaces/x/configmaps/c", user="a")
    assert p.evaluate_attributes(configmap).rule_index is None


def test_gke_style_decisions() -> None:
    p = Policy.load(FIXTURES / "gke-style.yaml")
    assert p.evaluate(user="system:kube-proxy", verb="watch", resource="endpoints").level == "None"
    assert p.evaluate(user="alice", verb="get", resource="secrets", namespace="a").level == (
        "Metadata"
    )
    assert p.evaluate(user="alice", verb="list", resource="pods").level == "Request"
    assert p.evaluate(user="alice", verb="create", resource="deployments", api_group="apps",
                      namespace="a").level == "RequestResponse"
    assert p.evaluate(user="alice", verb="get", path="/healthz/etcd").level == "None"
    assert p.evaluate(user="alice", verb="get", path="/logs").level == "Metadata"
    assert p.evaluate(user="alice", verb="get", resource="widgets", api_group="example.com",
                      namespace="a").rule_index == 20

"""Witnesses of hand-written policies: the rule's own vocabulary, near misses, shadowing."""

from __future__ import annotations

from pytest_kaudit.policy import Policy
from pytest_kaudit.witness import witnesses

POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources: [{group: "", resources: ["endpoints", "services"]}]
  - level: None
    userGroups: ["system:nodes"]
    verbs: ["get"]
    namespaces: ["kube-node-lease"]
    resources: [{group: "coordination.k8s.io", resources: ["leases"]}]
  - level: Metadata
    resources: [{group: "", resources: ["secrets"]}]
  - level: Request
    resources: [{group: "", resources: ["secrets"]}]
  - level: None
    nonResourceURLs: ["/healthz*", "/version"]
  - level: RequestResponse
    resources: [{group: "", resources: ["configmaps"], resourceNames: ["cluster-info"]}]
  - level: Metadata
"""


def test_witnesses_use_the_rules_own_vocabulary() -> None:
    found = witnesses(Policy.from_yaml(POLICY, source="p.yaml"))
    assert [w.status for w in found] == ["reachable", "reachable", "reachable", "unreachable",
                                         "reachable", "reachable", "reachable"]
    proxy = found[0].witness
    assert proxy is not None
    assert (proxy.spec.verb, proxy.spec.resource, proxy.spec.identity.user) == (
        "watch", "endpoints", "system:kube-proxy")
    lease = found[1].witness
    assert lease is not None
    assert lease.spec.identity.groups == ("system:nodes",)
    assert (lease.spec.verb, lease.spec.group, lease.spec.namespace) == (
        "get", "coordination.k8s.io", "kube-node-lease")
    health = found[4].witness
    assert health is not None and health.spec.path in ("/version", "/healthz")
    info = found[5].witness
    assert info is not None and info.spec.name == "cluster-info"


def test_near_misses_fall_through_to_later_rules() -> None:
    found = witnesses(Policy.from_yaml(POLICY, source="p.yaml"))
    misses = {m.changed: m for m in found[0].near_misses}
    assert set(misses) == {"verb", "user"}
    assert misses["verb"].request.spec.verb != "watch"
    assert misses["user"].request.spec.identity.user != "system:kube-proxy"
    assert all(m.request.decision.rule_index == 6 for m in misses.values())
    named = {m.changed: m for m in found[5].near_misses}
    assert named["name"].request.spec.name != "cluster-info"
    assert named["name"].request.decision.rule_index == 6


def test_shadowed_rule_names_its_cover() -> None:
    shadowed = witnesses(Policy.from_yaml(POLICY, source="p.yaml"))[3]
    assert shadowed.witness is None
    assert shadowed.covered_by == (2,)
    assert "rules[2]" in shadowed.reason


def test_cover_by_several_rules_is_found_exactly() -> None:
    # neither earlier rule covers rule 2 alone; together they do (the lint cannot see this)
    policy = Policy.from_yaml("""
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    verbs: ["get", "list", "watch"]
    resources: [{group: "", resources: ["pods"]}]
  - level: Metadata
    resources: [{group: "", resources: ["pods"]}]
  - level: Request
    verbs: ["create", "get"]
    resources: [{group: "", resources: ["pods"]}]
""")
    found = witnesses(policy)
    assert found[2].status == "unreachable"
    assert found[2].covered_by == (0, 1)


def test_verbs_no_http_request_carries_are_not_sendable() -> None:
    policy = Policy.from_yaml("""
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    verbs: ["impersonate"]
    resources: [{group: "", resources: ["users"]}]
""")
    (only,) = witnesses(policy)
    assert only.status == "unsendable"
    assert "impersonate" in only.reason


def test_a_search_too_large_is_refused_with_a_reason(monkeypatch) -> None:
    from pytest_kaudit.witness import search

    monkeypatch.setattr(search, "MAX_CELLS", 3)
    found = witnesses(Policy.from_yaml(POLICY, source="p.yaml"))
    assert all(w.status == "unsendable" and "gave up after 3 cells" in w.reason for w in found)

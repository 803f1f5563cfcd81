"""Witnesses against brute force: random policies, random requests.

For every rule the search calls reachable, its witness, re-derived from the HTTP request it
would send, is decided by that rule. No rule that any sampled *sendable* request reaches is
left without a witness, and no rule called unreachable is reached by any sampled request.
"""

from __future__ import annotations

import random

import pytest
from witness_random import random_attributes, random_policy

from pytest_kaudit.policy import Policy, RequestAttributes
from pytest_kaudit.traffic.request import AUTHENTICATED, RequestSpec
from pytest_kaudit.witness import RuleWitness, make_request, witnesses
from pytest_kaudit.witness.search import (
    NONRESOURCE_VERBS,
    RESOURCE_VERBS,
    WitnessRequest,
    realizes,
)
from pytest_kaudit.witness.search import _Shape as Shape


def as_sent(policy: Policy, spec: RequestSpec) -> int | None:
    """The rule deciding ``spec`` as the apiserver would see it on the wire."""
    identity = spec.identity
    attrs = RequestAttributes.from_http(spec.method, spec.url_path(), user=identity.user,
                                        groups=(*identity.groups, AUTHENTICATED))
    return policy.evaluate_attributes(attrs).rule_index


def random_sendable(rng: random.Random) -> tuple[Shape, str, tuple[str, ...]] | None:
    user = rng.choice(["alice", "system:node:n1", "system:kube-proxy", "carol"])
    groups = tuple(rng.sample(["system:nodes", "devs", "other"], rng.randint(0, 2)))
    if rng.random() < 0.75:
        shape = Shape(rng.choice(RESOURCE_VERBS), rng.choice(["", "kube-system", "prod", "qa"]),
                      rng.choice(["", "apps", "coordination.k8s.io", "batch"]),
                      rng.choice(["pods", "secrets", "namespaces", "nodes", "leases", "widgets"]),
                      rng.choice(["", "", "log", "status", "exec", "*"]),
                      rng.choice(["", "a", "kube-proxy", "b", "kube-system", "prod"]))
    else:
        shape = Shape(rng.choice(NONRESOURCE_VERBS), path=rng.choice(
            ["/healthz", "/healthz/etcd", "/metrics", "/api", "/version", "/logs/x", "/x"]))
    return (shape, user, groups) if realizes(shape) else None


def check_witness(policy: Policy, w: RuleWitness) -> None:
    assert w.witness is not None
    assert as_sent(policy, w.witness.spec) == w.index, w.witness.spec.describe()
    assert w.witness.decision.rule_index == w.index
    for miss in w.near_misses:
        decided = as_sent(policy, miss.request.spec)
        assert decided is None or decided > w.index, miss.request.spec.describe()


@pytest.mark.parametrize("seed", range(100))
def test_witnesses_match_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    policy = random_policy(rng)
    found = witnesses(policy)
    assert [w.index for w in found] == list(range(len(policy.rules)))
    for w in found:
        if w.status == "reachable":
            check_witness(policy, w)
        else:
            assert w.witness is None and w.reason
    reached_by_sendable: set[int] = set()
    for _ in range(400):
        sample = random_sendable(rng)
        if sample is None:
            continue
        shape, user, groups = sample
        req: WitnessRequest = make_request(policy, shape, user, groups)
        if req.decision.rule_index is not None:
            reached_by_sendable.add(req.decision.rule_index)
    for i in reached_by_sendable:
        assert found[i].status == "reachable", (i, found[i].reason, policy.to_dict())
    for _ in range(400):
        attrs = random_attributes(rng)
        i = policy.evaluate_attributes(attrs).rule_index
        if i is not None:
            assert found[i].status != "unreachable", (i, attrs, policy.to_dict())


@pytest.mark.parametrize("seed", range(40))
def test_unreachable_rules_name_the_rules_that_decide_their_requests(seed: int) -> None:
    rng = random.Random(10_000 + seed)
    policy = random_policy(rng, rules=(3, 8))
    for w in witnesses(policy):
        if w.status != "unreachable":
            continue
        assert all(i < w.index for i in w.covered_by)
        rule = policy.rules[w.index]
        for _ in range(300):  # a request the shadowed rule matches is decided by a coverer
            attrs = random_attributes(rng)
            solo = Policy.from_dict({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                                     "rules": [policy.to_dict()["rules"][w.index]]})
            if solo.evaluate_attributes(attrs).rule_index == 0:
                assert policy.evaluate_attributes(attrs).rule_index in w.covered_by, rule

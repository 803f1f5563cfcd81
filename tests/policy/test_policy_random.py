"""Brute force: the compiled matcher and the shadowing analysis against the naive reference."""

from __future__ import annotations

import random
from typing import Any

import pytest
from policy_reference import reference_evaluate, reference_matches

from pytest_kaudit.policy import Policy, RequestAttributes
from pytest_kaudit.policy.lint import lint_policy, rule_covers

USERS = ["alice", "bob", "*"]
USER_GROUPS = ["g1", "g2"]
VERBS = ["get", "list", "create", "delete", "*"]
NAMESPACES = ["", "default", "kube-system"]
GROUPS = ["", "apps"]
PATTERNS = ["pods", "pods/log", "pods/*", "*", "*/log", "*/*", "deployments",
            "deployments/scale", "secrets", "pods/", "*/status"]
NAMES = ["a", "b", ""]
URLS = ["*", "/healthz", "/healthz*", "/api*", "/logs/", "/logs/*", "/"]
LEVELS = ["None", "Metadata", "Request", "RequestResponse"]
STAGES = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]


def some(rng: random.Random, values: list[str], p: float = 0.4) -> list[str]:
    if rng.random() > p:
        return []
    return rng.sample(values, rng.randint(1, min(2, len(values))))


def random_rule(rng: random.Random, groups: list[str]) -> dict[str, Any]:
    rule: dict[str, Any] = {"level": rng.choice(LEVELS)}
    for key, values in (("users", USERS), ("userGroups", USER_GROUPS), ("verbs", VERBS)):
        chosen = some(rng, values, 0.3)
        if chosen:
            rule[key] = chosen
    kind = rng.random()
    if kind < 0.6:
        if rng.random() < 0.4:
            rule["namespaces"] = rng.sample(NAMESPACES, rng.randint(1, 2))
        if rng.random() < 0.8:
            entries = []
            for _ in range(rng.randint(1, 2)):
                entry: dict[str, Any] = {"group": rng.choice(groups)}
                if rng.random() < 0.8:
                    entry["resources"] = rng.sample(PATTERNS, rng.randint(1, 3))
                    if rng.random() < 0.3:
                        entry["resourceNames"] = rng.sample(NAMES, rng.randint(1, 2))
                entries.append(entry)
            rule["resources"] = entries
    elif kind < 0.85:
        rule["nonResourceURLs"] = rng.sample(URLS, rng.randint(1, 2))
    if rng.random() < 0.2:
        rule["omitStages"] = rng.sample(STAGES, 1)
    if rng.random() < 0.2:
        rule["omitManagedFields"] = rng.random() < 0.5
    return rule


def random_policy(rng: random.Random, version: str) -> Policy:
    groups = GROUPS + (["*"] if version >= "1.36" else [])
    doc: dict[str, Any] = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "rules": [random_rule(rng, groups) for _ in range(rng.randint(1, 6))],
    }
    if rng.random() < 0.5:
        doc["omitStages"] = rng.sample(STAGES, 1)
    if rng.random() < 0.3:
        doc["omitManagedFields"] = True
    return Policy.from_dict(doc, target_version=version, strict=False)


def random_request(rng: random.Random) -> RequestAttributes:
    user = rng.choice([None, "alice", "bob", "carol", "*"])
    groups = tuple(some(rng, [*USER_GROUPS, "g3"], 0.6)) if user else ()
    verb = rng.choice([*VERBS, "watch", "patch"])
    if rng.random() < 0.7:
        return RequestAttributes(
            user=user, groups=groups, verb=verb,
            namespace=rng.choice([*NAMESPACES, "other"]),
            resource=rng.choice(["pods", "deployments", "secrets", "*", "nodes"]),
            subresource=rng.choice(["", "", "log", "scale", "status", "*"]),
            name=rng.choice(["", "a", "b", "c"]),
            api_group=rng.choice(["", "", "apps", "x.io"]),
            is_resource_request=True,
        )
    path = rng.choice(["/healthz", "/healthz/etcd", "/healthzfoo", "/api", "/api/v1", "/logs/",
                       "/logs/x", "/", "/version"])
    return RequestAttributes(user=user, groups=groups, verb=verb, path=path)


@pytest.mark.parametrize("version", ["1.20", "1.36"])
def test_compiled_matcher_agrees_with_reference(version: str) -> None:
    rng = random.Random(f"matcher-{version}")
    checked = 0
    for _ in range(200):
        p = random_policy(rng, version)
        for _ in range(120):
            attrs = random_request(rng)
            expected = reference_evaluate(p, attrs)
            assert p.evaluate_attributes(attrs) == expected, (p.to_dict(), attrs)
            checked += 1
    assert checked == 24_000


@pytest.mark.parametrize("version", ["1.20", "1.36"])
def test_shadowing_is_sound(version: str) -> None:
    rng = random.Random(f"shadow-{version}")
    wildcard = version >= "1.36"
    requests = [random_request(rng) for _ in range(1000)]
    covered_pairs = 0
    for _ in range(300):
        p = random_policy(rng, version)
        for j, later in enumerate(p.rules):
            for i in range(j):
                earlier = p.rules[i]
                if not rule_covers(earlier, later, group_wildcard=wildcard):
                    continue
                covered_pairs += 1
                for attrs in requests:
                    if reference_matches(later, attrs, group_wildcard=wildcard):
                        assert reference_matches(earlier, attrs, group_wildcard=wildcard), (
                            earlier, later, attrs)
    assert covered_pairs > 50  # the analysis is not vacuous


@pytest.mark.parametrize("version", ["1.20", "1.36"])
def test_indexed_shadowing_finds_what_brute_force_finds(version: str) -> None:
    """The lint compares each rule only with indexed candidates: it must report the same first
    covering rule as comparing with every earlier rule."""
    rng = random.Random(f"index-{version}")
    wildcard = version >= "1.36"
    found = 0
    for _ in range(800):
        p = random_policy(rng, version)
        expected = []
        for j, later in enumerate(p.rules):
            first = next((i for i in range(j)
                          if rule_covers(p.rules[i], later, group_wildcard=wildcard)), None)
            if first is not None:
                expected.append((f"rules[{j}]", f"rules[{first}]"))
        problems = lint_policy(p, select=["shadowed-rule"])
        got = [(prob.field, prob.message.split(": ", 1)[1].split(" ", 1)[0]) for prob in problems]
        assert got == expected, p.to_dict()
        found += len(expected)
    assert found > 150

"""Random policies and requests from one small vocabulary, for brute-force checks."""

from __future__ import annotations

import random
from typing import Any

from pytest_kaudit.policy import Policy, RequestAttributes

USERS = ["alice", "bob"]
GROUPS = ["g1", "g2", "system:authenticated"]
VERBS = ["get", "list", "create", "watch"]
NAMESPACES = ["", "prod", "dev"]
RESOURCES = ["pods", "pods/log", "secrets", "*", "*/status", "pods/*", "deployments", "configmaps"]
API_GROUPS = ["", "", "apps", "*"]
URLS = ["/healthz", "/healthz*", "/api*", "*", "/version", "/h*"]
STAGES = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]
LEVELS = ["None", "Metadata", "Request", "RequestResponse"]


def _some(rng: random.Random, values: list[str], p: float = 0.4) -> list[str]:
    if rng.random() > p:
        return []
    return rng.sample(values, rng.randint(1, min(2, len(values))))


def random_rule(rng: random.Random) -> dict[str, Any]:
    rule: dict[str, Any] = {"level": rng.choice(LEVELS)}
    for key, vocab in (("users", USERS), ("userGroups", GROUPS), ("verbs", VERBS)):
        if chosen := _some(rng, vocab):
            rule[key] = chosen
    shape = rng.random()
    if shape < 0.5:
        if rng.random() < 0.7:
            entries = []
            for _ in range(rng.randint(1, 2)):
                entry: dict[str, Any] = {"group": rng.choice(API_GROUPS)}
                if rng.random() < 0.8:
                    entry["resources"] = rng.sample(RESOURCES, rng.randint(1, 2))
                    if rng.random() < 0.25:
                        entry["resourceNames"] = rng.sample(["a", ""], 1)
                entries.append(entry)
            rule["resources"] = entries
        if ns := _some(rng, NAMESPACES):
            rule["namespaces"] = ns
    elif shape < 0.75:
        rule["nonResourceURLs"] = rng.sample(URLS, rng.randint(1, 2))
    if rng.random() < 0.2:
        rule["omitStages"] = rng.sample(STAGES, 1)
    return rule


def random_policy(rng: random.Random) -> Policy:
    doc: dict[str, Any] = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "rules": [random_rule(rng) for _ in range(rng.randint(1, 5))],
    }
    if rng.random() < 0.3:
        doc["omitStages"] = rng.sample(STAGES, 1)
    return Policy.from_dict(doc)


def random_request(rng: random.Random) -> RequestAttributes:
    user = rng.choice([*USERS, "carol", None])
    groups = (
        tuple(rng.sample(["g1", "g2", "g3", "system:authenticated"], rng.randint(0, 2)))
        if user
        else ()
    )
    if rng.random() < 0.75:
        return RequestAttributes(
            user=user,
            groups=groups,
            verb=rng.choice([*VERBS, "delete", "patch"]),
            namespace=rng.choice(["", "prod", "dev", "qa"]),
            resource=rng.choice(["pods", "secrets", "deployments", "configmaps", "nodes"]),
            subresource=rng.choice(["", "", "log", "status", "exec"]),
            name=rng.choice(["", "a", "b"]),
            api_group=rng.choice(["", "apps", "batch"]),
            api_version="v1",
            path="",
            is_resource_request=True,
        )
    return RequestAttributes(
        user=user,
        groups=groups,
        verb=rng.choice(["get", "post", "list"]),
        namespace="",
        resource="",
        subresource="",
        name="",
        api_group="",
        api_version="",
        path=rng.choice(
            [
                "/healthz",
                "/healthz/etcd",
                "/healthzx",
                "/h",
                "/api",
                "/apis",
                "/version",
                "/versionx",
                "/metrics",
                "/",
            ]
        ),
        is_resource_request=False,
    )


def outcome(policy: Policy, attrs: RequestAttributes) -> tuple[str, frozenset[str], int | None]:
    d = policy.evaluate_attributes(attrs)
    return str(d.level.value), frozenset(s.value for s in d.omit_stages), d.rule_index

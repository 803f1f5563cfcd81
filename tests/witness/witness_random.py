"""Random policies over a vocabulary with senders, verbs and paths that reach real corner cases."""

from __future__ import annotations

import random
from typing import Any

from pytest_kaudit.policy import Policy, RequestAttributes

USERS = ["alice", "system:node:n1", "system:kube-proxy"]
GROUPS = ["system:nodes", "system:authenticated", "devs"]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
         "impersonate", "post"]
NAMESPACES = ["", "kube-system", "prod"]
RESOURCES = ["pods", "pods/log", "pods/*", "*/status", "secrets", "*", "namespaces",
             "nodes/status", "leases"]
API_GROUPS = ["", "", "apps", "coordination.k8s.io", "*"]
NAMES = ["a", "kube-proxy"]
URLS = ["/healthz", "/healthz*", "/metrics", "/api*", "*", "/version", "/logs/*"]
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
    if shape < 0.55:
        if rng.random() < 0.75:
            entries = []
            for _ in range(rng.randint(1, 2)):
                entry: dict[str, Any] = {"group": rng.choice(API_GROUPS)}
                if rng.random() < 0.8:
                    entry["resources"] = rng.sample(RESOURCES, rng.randint(1, 2))
                    if rng.random() < 0.3:
                        entry["resourceNames"] = rng.sample(NAMES, 1)
                entries.append(entry)
            rule["resources"] = entries
        if ns := _some(rng, NAMESPACES):
            rule["namespaces"] = ns
    elif shape < 0.8:
        rule["nonResourceURLs"] = rng.sample(URLS, rng.randint(1, 2))
    return rule


def random_policy(rng: random.Random, rules: tuple[int, int] = (1, 7)) -> Policy:
    doc = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
           "rules": [random_rule(rng) for _ in range(rng.randint(*rules))]}
    return Policy.from_dict(doc)


def random_attributes(rng: random.Random) -> RequestAttributes:
    """Any request the checker could see, sendable or not."""
    user = rng.choice([*USERS, "carol"])
    groups = tuple(rng.sample(["system:nodes", "devs", "other"], rng.randint(0, 2)))
    if rng.random() < 0.5:
        groups += ("system:authenticated",)
    if rng.random() < 0.75:
        return RequestAttributes(
            user=user, groups=groups, verb=rng.choice([*VERBS, "proxy", "use"]),
            namespace=rng.choice([*NAMESPACES, "qa"]),
            resource=rng.choice(["pods", "secrets", "namespaces", "nodes", "leases", "widgets"]),
            subresource=rng.choice(["", "", "log", "status", "exec", "*"]),
            name=rng.choice(["", "a", "kube-proxy", "b"]),
            api_group=rng.choice(["", "apps", "coordination.k8s.io", "batch"]),
            api_version="v1", is_resource_request=True)
    return RequestAttributes(
        user=user, groups=groups, verb=rng.choice(["get", "post", "put", "list", "impersonate"]),
        path=rng.choice(["/healthz", "/healthz/etcd", "/metrics", "/api", "/apis", "/version",
                         "/logs/x", "/logs", "/"]),
        is_resource_request=False)

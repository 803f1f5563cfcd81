"""``Policy.evaluate(**kwargs)``, the public call: same decisions as the attributes form and the
naive reference, without building a ``RequestAttributes`` per request (its speed next to the
reference is measured by ``benchmarks/bench_policy.py``)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from policy_reference import reference_evaluate
from test_policy_random import random_policy

from pytest_kaudit.policy import Policy, RequestAttributes, request

KEYWORD_VALUES: dict[str, list[Any]] = {
    "user": ["alice", "bob", "carol", "*", "", None],
    "groups": [(), ("g1",), ["g2", "g3"], ("g1", "g2")],
    "verb": ["get", "list", "create", "delete", "watch", "patch", "*", ""],
    "namespace": ["", "default", "kube-system", "other"],
    "resource": ["", "pods", "deployments", "secrets", "*", "nodes"],
    "subresource": ["", "log", "scale", "status", "*"],
    "name": ["", "a", "b", "c"],
    "api_group": ["", "apps", "x.io"],
    "path": [None, "", "/healthz", "/healthz/etcd", "/api", "/logs/", "/logs/x", "/", "/version"],
    "authenticated": [True, True, True, False],
}


def random_keywords(rng: random.Random) -> dict[str, Any]:
    """Any subset of the keywords, so every default and the resource/path inference is hit."""
    return {key: rng.choice(values) for key, values in KEYWORD_VALUES.items()
            if rng.random() < 0.6}


def documented_attributes(kw: dict[str, Any]) -> RequestAttributes:
    """The request ``Policy.evaluate``'s docstring describes for these keywords."""
    if kw.get("resource"):
        is_resource = True
    elif kw.get("path") is not None:
        is_resource = False
    else:
        is_resource = any(kw.get(k) for k in ("namespace", "name", "subresource", "api_group"))
    authenticated = kw.get("authenticated", True)
    user = kw.get("user")
    return RequestAttributes(
        user=(user if user is not None else "") if authenticated else None,
        groups=tuple(kw.get("groups", ())) if authenticated else (),
        verb=kw.get("verb", ""), namespace=kw.get("namespace", ""),
        resource=kw.get("resource", ""), subresource=kw.get("subresource", ""),
        name=kw.get("name", ""), api_group=kw.get("api_group", ""),
        path=kw.get("path") or "", is_resource_request=is_resource,
    )


@pytest.mark.parametrize("version", ["1.20", "1.36"])
def test_public_evaluate_agrees_with_attributes_and_reference(version: str) -> None:
    rng = random.Random(f"public-{version}")
    checked = 0
    for _ in range(150):
        p = random_policy(rng, version)
        for _ in range(80):
            kw = random_keywords(rng)
            attrs = documented_attributes(kw)
            public = p.evaluate(**kw)
            assert public == p.evaluate_attributes(attrs), (p.to_dict(), kw)
            assert public == reference_evaluate(p, attrs), (p.to_dict(), kw)
            checked += 1
    assert checked == 12_000


def test_public_evaluate_builds_no_request_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the frozen attributes object was most of the public call's cost."""
    built = []

    class Counting(RequestAttributes):
        __slots__ = ()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(request, "RequestAttributes", Counting)
    p = Policy.from_dict({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                          "rules": [{"level": "Metadata", "resources": [{"resources": ["pods"]}]}]})
    assert p.evaluate(user="alice", verb="get", resource="pods").level == "Metadata"
    assert p.evaluate(verb="get", path="/healthz").level == "None"
    assert built == []

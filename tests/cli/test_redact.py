"""Redaction: a secret value must never survive ``redact_event``."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pytest_kaudit.redact import redact_event, redacted

SECRET = "c3VwZXJzZWNyZXQtdmFsdWU="  # the value that must never appear
TOKEN = "eyJhbGciOiJSUzI1NiJ9.kaudit-token-payload"


def _event(
    resource: str, body_req: Any, body_resp: Any = None, *, group: str = "", sub: str = ""
) -> dict[str, Any]:
    ref = {"resource": resource, "namespace": "prod", "name": "x", "apiVersion": "v1"}
    if group:
        ref["apiGroup"] = group
    if sub:
        ref["subresource"] = sub
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "id-1",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/prod/{resource}",
        "verb": "create",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": body_req,
        "requestReceivedTimestamp": "2026-11-26T20:00:00.000001Z",
        "stageTimestamp": "2026-11-26T20:00:00.000002Z",
    }
    if body_resp is not None:
        ev["responseObject"] = body_resp
    return ev


SECRET_OBJ = {
    "kind": "Secret",
    "apiVersion": "v1",
    "metadata": {
        "name": "db",
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                {"data": {"password": SECRET}}
            )
        },
    },
    "data": {"password": SECRET},
    "stringData": {"pw": SECRET},
    "type": "Opaque",
}

CASES = {
    "secret create": _event("secrets", SECRET_OBJ, SECRET_OBJ),
    "secret list": _event("secrets", None, {"kind": "SecretList", "items": [SECRET_OBJ]}),
    "secret json patch": _event(
        "secrets", [{"op": "replace", "path": "/data/password", "value": SECRET}]
    ),
    "tokenreview": _event(
        "tokenreviews",
        {"kind": "TokenReview", "spec": {"token": TOKEN}},
        {"kind": "TokenReview", "spec": {"token": TOKEN}, "status": {"authenticated": True}},
        group="authentication.k8s.io",
    ),
    "serviceaccount token": _event(
        "serviceaccounts",
        {"kind": "TokenRequest", "spec": {}},
        {"kind": "TokenRequest", "status": {"token": TOKEN}},
        sub="token",
    ),
    "configmap data": _event("configmaps", {"kind": "ConfigMap", "data": {"k": SECRET}}),
    "configmap json patch": _event(
        "configmaps", [{"op": "add", "path": "/data/k", "value": SECRET}]
    ),
    "secret inside a table": _event(
        "customthings", None, {"kind": "Table", "rows": [{"cells": ["db"], "object": SECRET_OBJ}]}
    ),
    "last-applied on another kind": _event(
        "deployments",
        {
            "kind": "Deployment",
            "metadata": {
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": SECRET}
            },
        },
        group="apps",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_secret_values_never_survive(name):
    event = CASES[name]
    original = copy.deepcopy(event)
    out = redact_event(event)
    assert event == original, "input must not be modified"
    text = json.dumps(out)
    assert SECRET not in text
    assert TOKEN not in text
    assert "<redacted: " in text


def test_whole_bodies_of_secrets_are_replaced_with_their_size():
    out = redact_event(CASES["secret create"])
    size = len(json.dumps(SECRET_OBJ, separators=(",", ":")).encode())
    assert out["requestObject"] == out["responseObject"] == f"<redacted: {size} bytes>"


def test_non_sensitive_fields_are_kept():
    ev = _event(
        "pods",
        {"kind": "Pod", "metadata": {"name": "web"}, "spec": {"containers": [{"name": "c"}]}},
    )
    assert redact_event(ev) == ev
    assert redacted("abc") == "<redacted: 3 bytes>"

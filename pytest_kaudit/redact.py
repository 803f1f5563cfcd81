"""Redaction of audit events before anything prints them.

Audit events can carry Secret bodies, service-account tokens and TokenReview tokens. Every
place that shows an event to a human (failure messages, report sections, the CLI) goes
through :func:`redact_event` first, so a secret can never reach a CI log by accident.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from pytest_kaudit.events.attributes import group_version
from pytest_kaudit.policy.sensitive import CREDENTIAL_KEYS

#: (apiGroup, resource, subresource) whose request and response bodies are dropped whole.
SENSITIVE_RESOURCES: frozenset[tuple[str, str, str]] = CREDENTIAL_KEYS
#: Keys whose values are replaced wherever they appear inside a body.
SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        "data",
        "stringData",
        "binaryData",
        "token",
        "password",
        "bearerToken",
    }
)
#: JSON-patch paths (``/data/x``) whose ``value`` is sensitive.
_SENSITIVE_PATCH_PREFIXES = tuple(f"/{k}" for k in SENSITIVE_KEYS)
BODY_KEYS = ("requestObject", "responseObject")


def redacted(value: Any) -> str:
    """The placeholder for a removed value: ``<redacted: N bytes>`` (compact JSON size)."""
    if isinstance(value, str):
        size = len(value.encode())
    else:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    return f"<redacted: {size} bytes>"


def _is_sensitive_target(event: Mapping[str, Any]) -> bool:
    ref = event.get("objectRef")
    if not isinstance(ref, Mapping):
        return False
    key = (group_version(ref)[0], ref.get("resource") or "", ref.get("subresource") or "")
    return key in SENSITIVE_RESOURCES or key[1] == "secrets"


def redact_body(body: Any) -> Any:
    """Redact sensitive keys anywhere in a body, and Secret objects nested in lists or tables."""
    if isinstance(body, Mapping):
        if body.get("kind") == "Secret":
            return {
                k: (
                    redacted(v)
                    if k not in ("kind", "apiVersion", "metadata", "type")
                    else redact_body(v)
                )
                for k, v in body.items()
            }
        out: dict[str, Any] = {}
        path = body.get("path")
        patch_op = isinstance(path, str) and path.startswith(_SENSITIVE_PATCH_PREFIXES)
        for k, v in body.items():
            if k in SENSITIVE_KEYS and v is not None:
                out[k] = redacted(v)
            elif patch_op and k == "value":
                out[k] = redacted(v)
            elif k == "annotations" and isinstance(v, Mapping):
                out[k] = {
                    ak: (redacted(av) if ak.endswith("last-applied-configuration") else av)
                    for ak, av in v.items()
                }
            else:
                out[k] = redact_body(v)
        return out
    if isinstance(body, list):
        return [redact_body(v) for v in body]
    return body


def redact_event(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an audit event that is safe to print.

    Bodies of Secrets, TokenReviews, TokenRequests and ``serviceaccounts/token`` are replaced
    whole; in every other body, ``data``/``stringData``/``token``-like fields, JSON-patch
    values aimed at them, and last-applied-configuration annotations are replaced. The input
    is not modified.
    """
    event = dict(raw)
    whole = _is_sensitive_target(event)
    for key in BODY_KEYS:
        if key in event and event[key] is not None:
            event[key] = redacted(event[key]) if whole else redact_body(copy.deepcopy(event[key]))
    return event

"""Redaction of audit events before anything prints them.

Audit events can carry Secret bodies, service-account tokens and TokenReview tokens. Every
place that shows an event to a human (failure messages, report sections, the CLI) goes
through :func:`redact_event` first, so a secret can never reach a CI log by accident.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

#: (apiGroup, resource, subresource) whose request and response bodies are dropped whole.
SENSITIVE_RESOURCES: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("", "secrets", ""),
        ("authentication.k8s.io", "tokenreviews", ""),
        ("authentication.k8s.io", "tokenrequests", ""),
        ("", "serviceaccounts", "token"),
    }
)
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
    key = (ref.get("apiGroup") or "", ref.get("resource") or "", ref.get("subresource") or "")
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


def _one_line(event: Mapping[str, Any]) -> str:
    user = event.get("user") or {}
    ref = event.get("objectRef") or {}
    status = event.get("responseStatus") or {}
    parts = [
        str(event.get("stageTimestamp") or event.get("requestReceivedTimestamp") or "-"),
        str(event.get("stage", "?")),
        f"level={event.get('level', '?')}",
        f"verb={event.get('verb', '?')}",
        f"uri={event.get('requestURI', '?')}",
        f"user={user.get('username') or '(unauthenticated)'}",
    ]
    if status.get("code") is not None:
        parts.append(f"code={status['code']}")
    parts.append(f"auditID={event.get('auditID', '?')}")
    out = " ".join(parts)
    if ref:
        res = ref.get("resource", "")
        if ref.get("subresource"):
            res += "/" + ref["subresource"]
        if ref.get("apiGroup"):
            res += "." + ref["apiGroup"]
        where = "/".join(x for x in (ref.get("namespace"), ref.get("name")) if x)
        out += f"\n    objectRef: {res}" + (f" {where}" if where else "")
    imp = event.get("impersonatedUser")
    if isinstance(imp, Mapping) and imp.get("username"):
        out += f"\n    impersonatedUser: {imp['username']}"
    ann = event.get("annotations")
    if isinstance(ann, Mapping) and ann:
        out += "\n    annotations: " + ", ".join(f"{k}={v}" for k, v in sorted(ann.items()))
    return out


def format_events(events: Iterable[Mapping[str, Any]], *, max_body_chars: int = 400) -> str:
    """Render events as a readable, redacted report section (one block per event)."""
    blocks = []
    for n, raw in enumerate(events, 1):
        event = redact_event(raw)
        text = f"[{n}] {_one_line(event)}"
        for key in BODY_KEYS:
            if key in event:
                body = event[key]
                shown = (
                    body
                    if isinstance(body, str)
                    else json.dumps(body, separators=(",", ":"), sort_keys=True)
                )
                if len(shown) > max_body_chars:
                    shown = shown[:max_body_chars] + f"... ({len(shown)} chars)"
                text += f"\n    {key}: {shown}"
        blocks.append(text)
    return "\n".join(blocks) if blocks else "(no audit events)"

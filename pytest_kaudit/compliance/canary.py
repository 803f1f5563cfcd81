"""The Secret canary: one unique value sent through every route Secret data travels.

:func:`canary_plan` lists the requests (each with where the value rides: in the request
body, the response body, or both); the engine predicts which ones a policy lets into the log,
and :func:`scan_log` searches the real log, rotated files included, for the value in plain,
base64 and JSON-escaped form. Hits are reported by file, line and form, never by content.
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pytest_kaudit.events.log import FileLogSource, LogSource
from pytest_kaudit.traffic import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    RequestSpec,
)

Carrier = Literal["request", "response", "both"]
SECRET_NAME = "kaudit-canary"
SERVICE_ACCOUNT = "kaudit-canary"
#: Bytes of log searched at most; beyond it the scan stops and says so.
MAX_SCAN_BYTES = 2 << 30


@dataclass(frozen=True)
class Canary:
    """The secret values of one run. Never printed; ``repr`` hides them."""

    value: str
    review_token: str

    @classmethod
    def new(cls) -> Canary:
        """Fresh random values, unique to this run."""
        return cls(f"kaudit-canary-{secrets.token_hex(12)}",
                   f"kaudit-canary-token-{secrets.token_hex(12)}")

    def __repr__(self) -> str:
        return "Canary(<hidden>)"

    def forms(self, *, extra: Sequence[str] = ()) -> dict[str, bytes]:
        """Every encoding to search for, by name."""
        out: dict[str, bytes] = {}
        for label, value in (("value", self.value), ("token", self.review_token),
                             *((f"issued token {i + 1}", v) for i, v in enumerate(extra))):
            raw = value.encode()
            out[f"{label} (plain)"] = raw
            out[f"{label} (base64)"] = base64.b64encode(raw)
            escaped = json.dumps(value)[1:-1].encode()
            if escaped != raw:
                out[f"{label} (JSON-escaped)"] = escaped
        return out


@dataclass(frozen=True)
class Step:
    """One request of the plan and where the canary rides in it."""

    spec: RequestSpec
    carrier: Carrier | None  # None: a setup request the canary does not ride in


def canary_plan(canary: Canary, namespace: str) -> list[Step]:
    """Every request a Secret value or token travels in, in sending order (all as admin)."""
    b64 = base64.b64encode(canary.value.encode()).decode()
    name = SECRET_NAME

    def secret(body_extra: dict[str, object]) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace}, "type": "Opaque",
                **body_extra}

    def req(verb: str, **kw: object) -> RequestSpec:
        return RequestSpec(verb=verb, resource="secrets", namespace=namespace, name=name,
                           label="canary", **kw)  # type: ignore[arg-type]

    steps = [
        Step(RequestSpec(verb="create", resource="namespaces", name=namespace,
                         body={"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": namespace}}), None),
        Step(RequestSpec(verb="create", resource="serviceaccounts", namespace=namespace,
                         name=SERVICE_ACCOUNT), None),
        Step(req("create", body=secret({"stringData": {"canary": canary.value}})), "both"),
        Step(req("update", body=secret({"data": {"canary": b64}})), "both"),
        Step(req("patch", content_type=MERGE_PATCH,
                 body={"stringData": {"canary": canary.value}}), "both"),
        Step(req("patch", content_type=STRATEGIC_PATCH,
                 body={"data": {"canary": b64}}), "both"),
        Step(req("patch", content_type=JSON_PATCH,
                 body=[{"op": "replace", "path": "/data/canary", "value": b64}]), "both"),
        Step(req("patch", content_type=APPLY_PATCH,
                 body=json.dumps(secret({"stringData": {"canary": canary.value}}))), "both"),
        Step(req("get"), "response"),
        Step(RequestSpec(verb="list", resource="secrets", namespace=namespace,
                         label="canary"), "response"),
        Step(RequestSpec(verb="watch", resource="secrets", namespace=namespace,
                         query=(("timeoutSeconds", "1"),), label="canary"), "response"),
        Step(RequestSpec(verb="create", resource="serviceaccounts", subresource="token",
                         namespace=namespace, name=SERVICE_ACCOUNT, keep_response=True,
                         label="issues a token"), "response"),
        Step(RequestSpec(verb="create", resource="tokenreviews",
                         group="authentication.k8s.io", name="kaudit-canary",
                         body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                               "spec": {"token": canary.review_token}},
                         label="submits a token"), "both"),
        # a Secret's delete answers with a Status, not the object
        Step(RequestSpec(verb="delete", resource="secrets", namespace=namespace, name=name,
                         label="canary"), None),
        # leave nothing behind on a cluster that outlives the check
        Step(RequestSpec(verb="delete", resource="serviceaccounts", namespace=namespace,
                         name=SERVICE_ACCOUNT), None),
        Step(RequestSpec(verb="delete", resource="namespaces", name=namespace), None),
    ]
    return steps


def issued_token(response: bytes | None) -> str | None:
    """The token a TokenRequest response carries (kept in memory only)."""
    if not response:
        return None
    try:
        doc = json.loads(response)
    except ValueError:
        return None
    token = (doc.get("status") or {}).get("token") if isinstance(doc, dict) else None
    return token if isinstance(token, str) and token else None


@dataclass(frozen=True)
class Hit:
    """A canary form found in the log: where, in which form, in which request."""

    file: str
    line: int
    form: str
    audit_id: str | None


def _log_files(path: Path) -> list[Path]:
    stem, ext = path.stem, path.suffix
    rotated = {*path.parent.glob(f"{stem}-*{ext}"), *path.parent.glob(f"{stem}-*{ext}.gz")}
    return [*sorted(rotated, key=lambda p: p.name.removesuffix(".gz")), path]


def _file_blobs(source: LogSource) -> Iterator[tuple[str, bytes]]:
    if isinstance(source, FileLogSource):
        for p in _log_files(source.path):
            try:
                data = p.read_bytes()
            except FileNotFoundError:
                continue
            yield str(p), gzip.decompress(data) if p.suffix == ".gz" else data
        return
    follower = source.follow(from_start=True)
    try:
        while True:
            chunks = follower.read_new()
            if not chunks:
                return
            for c in chunks:
                yield c.label, c.data
    finally:
        follower.close()


def scan_log(source: LogSource, forms: dict[str, bytes]) -> tuple[list[Hit], int]:
    """Every line of the log holding any form; returns the hits and the bytes searched."""
    hits: list[Hit] = []
    lines_seen: dict[str, int] = {}
    carry: dict[str, bytes] = {}
    total = 0
    for label, data in _file_blobs(source):
        total += len(data)
        if total > MAX_SCAN_BYTES:
            raise ValueError(f"the audit log is larger than {MAX_SCAN_BYTES} bytes; "
                             "the canary scan stopped")
        buf = carry.pop(label, b"") + data
        lines = buf.split(b"\n")
        tail = lines.pop()
        if tail:
            carry[label] = tail
        base = lines_seen.get(label, 0)
        for i, line in enumerate(lines, start=base + 1):
            for form, needle in forms.items():
                if needle in line:
                    hits.append(Hit(label, i, form, _audit_id(line)))
        lines_seen[label] = base + len(lines)
    for label, tail in carry.items():
        line_no = lines_seen.get(label, 0) + 1
        for form, needle in forms.items():
            if needle in tail:
                hits.append(Hit(label, line_no, form, _audit_id(tail)))
    return hits, total


def _audit_id(line: bytes) -> str | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    value = doc.get("auditID") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None

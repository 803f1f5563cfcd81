"""The canary scan over a log directory: rotated and compressed files, every encoding."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

from pytest_kaudit.compliance.canary import Canary, canary_plan, issued_token, scan_log
from pytest_kaudit.events.log import FileLogSource


def _line(audit_id: str, body: object) -> str:
    return json.dumps({"kind": "Event", "auditID": audit_id, "stage": "ResponseComplete",
                       "requestObject": body}) + "\n"


def test_every_form_is_found_in_current_rotated_and_gzipped_files(tmp_path: Path) -> None:
    canary = Canary.new()
    b64 = base64.b64encode(canary.value.encode()).decode()
    (tmp_path / "audit-2026-01-01T00-00-00.000.log.gz").write_bytes(gzip.compress(
        (_line("a1", {"x": 1}) + _line("a2", {"data": {"k": b64}})).encode()))
    (tmp_path / "audit-2026-01-02T00-00-00.000.log").write_text(
        _line("a3", {"stringData": {"k": canary.value}}))
    (tmp_path / "audit.log").write_text(
        _line("a4", {"x": 2}) + _line("a5", {"spec": {"token": canary.review_token}})
        + _line("a6", {"status": {"token": "issued-jwt"}}))
    (tmp_path / "other.log").write_text(_line("zz", {"k": canary.value}))  # not ours
    hits, searched = scan_log(FileLogSource(tmp_path / "audit.log"),
                              canary.forms(extra=["issued-jwt"]))
    where = [(Path(h.file).name, h.line, h.form, h.audit_id) for h in hits]
    assert where == [
        ("audit-2026-01-01T00-00-00.000.log.gz", 2, "value (base64)", "a2"),
        ("audit-2026-01-02T00-00-00.000.log", 1, "value (plain)", "a3"),
        ("audit.log", 2, "token (plain)", "a5"),
        ("audit.log", 3, "issued token 1 (plain)", "a6"),
    ]
    assert searched > 0


def test_the_canary_never_shows_in_its_repr_or_the_plan() -> None:
    canary = Canary.new()
    assert canary.value not in repr(canary)
    for step in canary_plan(canary, "ns"):
        assert canary.value not in step.spec.describe() and canary.value not in repr(step.spec)


def test_the_issued_token_is_read_from_a_token_request_response() -> None:
    body = json.dumps({"kind": "TokenRequest", "status": {"token": "t0k"}}).encode()
    assert issued_token(body) == "t0k"
    assert issued_token(b"not json") is None and issued_token(None) is None

"""The typed record decoder: agrees with a full JSON decode, and rejects bad fields by name."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from pytest_kaudit.events.attributes import attributes_from_event
from pytest_kaudit.replay.records import EventRecord, ObjectRefRecord, decode_record, rejection

HERE = Path(__file__).parent


def decode_line(line: bytes) -> EventRecord[ObjectRefRecord] | str:
    """The record of ``line``, or the reason the engine gives for rejecting it."""
    try:
        return decode_record(line)
    except msgspec.DecodeError as exc:
        return rejection(line, exc)

CLI_DATA = HERE.parent / "cli" / "data"


def _corpus_lines() -> list[bytes]:
    lines = gzip.decompress((HERE / "data" / "corpus.log.gz").read_bytes()).splitlines()
    lines += (CLI_DATA / "audit.log").read_bytes().splitlines()
    return [ln for ln in lines if ln.strip()]


def test_every_corpus_line_decodes_to_what_a_full_decode_sees() -> None:
    lines = _corpus_lines()
    assert len(lines) > 1500
    for line in lines:
        record = decode_line(line)
        assert isinstance(record, EventRecord), record
        full = json.loads(line)
        assert (record.level, record.stage, record.verb) == (
            full["level"], full["stage"], full["verb"])
        assert record.received == datetime.fromisoformat(
            full["requestReceivedTimestamp"].replace("Z", "+00:00"))
        assert record.user.username == full["user"].get("username", "")
        assert list(record.user.groups) == full["user"].get("groups", [])
        assert (record.object_ref is None) == ("objectRef" not in full)
        # bodies are measured, not decoded: the raw slice is the compact JSON as written
        for raw, key in ((record.request_object, "requestObject"),
                         (record.response_object, "responseObject")):
            if key in full:
                assert json.loads(bytes(raw)) == full[key]
            else:
                assert len(raw) == 0
        # the record hands the event-to-attributes function what the full event would
        assert attributes_from_event(record.as_event()) == attributes_from_event(full)


def _line(**fields: str) -> bytes:
    """One event line; ``fields`` replace members by their raw JSON text."""
    members = {
        "kind": '"Event"',
        "apiVersion": '"audit.k8s.io/v1"',
        "level": '"Metadata"',
        "auditID": '"x"',
        "stage": '"ResponseComplete"',
        "requestURI": '"/api/v1/namespaces/n/pods"',
        "verb": '"list"',
        "user": '{"username":"a","groups":["g"]}',
        "objectRef": '{"resource":"pods","namespace":"n","apiVersion":"v1"}',
        "requestReceivedTimestamp": '"2026-01-01T00:00:00.000000Z"',
    }
    members.update(fields)
    return ("{" + ",".join(f'"{k}":{v}' for k, v in members.items()) + "}\n").encode()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_line(user='{"username":"a","groups"["g"]}'), "not JSON"),
        (_line(level="5"), "level: expected a string, got a number"),
        (_line(level='"metadata"'),
         "level: 'metadata' is not an audit level (expected None, Metadata, Request, "
         "RequestResponse; did you mean 'Metadata'?)"),
        (_line(stage='"Bogus"'),
         "stage: 'Bogus' is not an audit stage (expected RequestReceived, ResponseStarted, "
         "ResponseComplete, Panic)"),
        (_line(stage="null"), "stage: expected a string, got null"),
        (_line(requestReceivedTimestamp='"yesterday"'),
         "requestReceivedTimestamp: not an RFC 3339 time with a zone "
         "(such as 2024-01-02T03:04:05.000000Z)"),
        (_line(requestReceivedTimestamp='"2026-01-01T00:00:00"'),
         "requestReceivedTimestamp: not an RFC 3339 time with a zone "
         "(such as 2024-01-02T03:04:05.000000Z)"),
        (_line(user='{"username":"a","groups":[1]}'), "user.groups[0]: expected `str`, got `int`"),
        (_line(objectRef='{"resource":5}'), "objectRef.resource: expected `str`, got `int`"),
        (_line(user='"bob"'), "not an audit event (no user)"),
        (b'{"level":"Metadata","auditID":"x","stage":"ResponseComplete","user":{}}\n',
         "requestReceivedTimestamp: missing"),
        (b"[1, 2]\n", "not a JSON object"),
        (b'{"hello":"world"}\n', "not an audit event (no stage/auditID)"),
        (b"\xff\xfe\n", "not JSON"),
    ],
)
def test_bad_fields_are_rejected_by_name(line: bytes, reason: str) -> None:
    assert decode_line(line) == reason


def test_a_long_level_value_is_clipped_in_the_reason() -> None:
    reason = decode_line(_line(level='"' + "x" * 5000 + '"'))
    assert isinstance(reason, str) and len(reason) < 200

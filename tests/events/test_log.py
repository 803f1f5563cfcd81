"""The incremental audit log reader, on real files: offsets, partial lines, rotation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_kaudit.events.log import AuditLog, FileLogSource


def _line(audit_id: str, stage: str = "ResponseComplete", **extra: object) -> bytes:
    event = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": audit_id, "stage": stage, "requestURI": "/api/v1/namespaces/ns/secrets/s",
        "verb": "get", "user": {"username": "alice", "groups": ["system:authenticated"]},
        "objectRef": {"resource": "secrets", "namespace": "ns", "name": "s", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-11-26T20:54:05.562442Z",
        "stageTimestamp": "2026-11-26T20:54:05.563548Z", **extra,
    }
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.log"
    path.write_bytes(_line("before-1") + _line("before-2"))
    return path


def test_tail_starts_at_the_current_end(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    assert log.poll() == []
    _append(log_file, _line("after-1"))
    assert [e.audit_id for e in log.poll()] == ["after-1"]
    assert log.poll() == []  # nothing is read twice


def test_a_trailing_partial_line_waits_for_its_newline(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    line = _line("split")
    _append(log_file, line[:40])
    assert log.poll() == []
    assert log.problems == []
    _append(log_file, line[40:])
    assert [e.audit_id for e in log.poll()] == ["split"]


def test_rotation_by_rename_loses_nothing(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    _append(log_file, _line("old-tail"))
    # lumberjack: rename to audit-<timestamp>.log, then a fresh audit.log
    log_file.rename(log_file.with_name("audit-2026-11-26T20-54-05.678.log"))
    log_file.write_bytes(_line("new-1"))
    assert [e.audit_id for e in log.poll()] == ["old-tail", "new-1"]
    _append(log_file, _line("new-2"))
    assert [e.audit_id for e in log.poll()] == ["new-2"]


def test_rotation_between_polls_after_a_read(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    _append(log_file, _line("a"))
    assert [e.audit_id for e in log.poll()] == ["a"]
    _append(log_file, _line("b"))
    log_file.rename(log_file.with_name("audit-rotated.log"))
    assert [e.audit_id for e in log.poll()] == ["b"]  # the new file does not exist yet
    log_file.write_bytes(_line("c"))
    assert [e.audit_id for e in log.poll()] == ["c"]


def test_truncation_in_place_restarts_from_zero(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    with log_file.open("r+b") as fh:
        fh.truncate(0)
    _append(log_file, _line("x"))
    assert [e.audit_id for e in log.poll()] == ["x"]


def test_a_log_created_later_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"  # kube-apiserver < 1.22 creates it on the first event
    log = AuditLog.tail(FileLogSource(path))
    assert log.poll() == []
    path.write_bytes(_line("first"))
    assert [e.audit_id for e in log.poll()] == ["first"]


def test_undecodable_lines_are_reported_without_their_content(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    _append(log_file, b'{"kind":"Event","stringData":{"password":"hunter2"\n')
    _append(log_file, b"[1, 2]\n" + _line("fine"))
    assert [e.audit_id for e in log.poll()] == ["fine"]
    assert len(log.problems) == 2
    text = "\n".join(str(p) for p in log.problems)
    assert "hunter2" not in text
    assert "undecodable line" in text and str(log_file) in text


def test_mixed_streams_skip_non_json_lines(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file), mixed=True)
    _append(log_file, b"I1126 20:54:05.1 server.go:1] klog line\n" + _line("ok"))
    assert [e.audit_id for e in log.poll()] == ["ok"]
    assert log.problems == []


def test_id_prefix_decodes_only_matching_lines(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file), id_prefix="kaudit-abc")
    _append(log_file, _line("kaudit-abc-1") + b"not json at all\n" + _line("other"))
    assert [e.audit_id for e in log.poll()] == ["kaudit-abc-1"]
    assert log.problems == []  # the non-matching garbage line was never decoded


def test_event_fields(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    _append(log_file, _line("f", impersonatedUser={"username": "bob", "groups": ["g"]},
                            annotations={"authorization.k8s.io/decision": "forbid"}))
    [event] = log.poll()
    assert (event.user, event.impersonated_user, event.resource, event.namespace, event.name) == (
        "alice", "bob", "secrets", "ns", "s")
    assert event.code == 200 and event.decision == "forbid"
    assert event.level == "Metadata" and event.stage == "ResponseComplete"
    assert not event.has_request_object and event.is_resource_request


def test_reading_stays_incremental(log_file: Path) -> None:
    big = b"".join(_line(f"bg-{i}") for i in range(2000))
    _append(log_file, big)
    log = AuditLog.tail(FileLogSource(log_file))
    _append(log_file, _line("mine"))
    assert [e.audit_id for e in log.poll()] == ["mine"]
    assert log.bytes_read == len(_line("mine"))
    assert os.path.getsize(log_file) > 100 * log.bytes_read


def test_several_rotations_between_two_polls(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    _append(log_file, _line("r1"))
    log_file.rename(log_file.with_name("audit-2026-11-26T20-00-00.000.log"))
    log_file.write_bytes(_line("r2"))
    log_file.rename(log_file.with_name("audit-2026-11-26T20-00-01.000.log"))
    log_file.write_bytes(_line("r3"))
    assert [e.audit_id for e in log.poll()] == ["r1", "r2", "r3"]


def test_a_missed_rotation_that_was_compressed(log_file: Path) -> None:
    import gzip

    log = AuditLog.tail(FileLogSource(log_file))
    log_file.rename(log_file.with_name("audit-2026-11-26T20-00-00.000.log"))
    middle = log_file.with_name("audit-2026-11-26T20-00-01.000.log.gz")
    middle.write_bytes(gzip.compress(_line("compressed")))
    log_file.write_bytes(_line("current"))
    assert [e.audit_id for e in log.poll()] == ["compressed", "current"]


def test_a_large_backlog_streams_in_bounded_reads(log_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_kaudit.events.log as log_module

    monkeypatch.setattr(log_module, "_MAX_READ", 1000)  # lines straddle every read boundary
    log = AuditLog.tail(FileLogSource(log_file))
    _append(log_file, b"".join(_line(f"b-{i}") for i in range(50)))
    ids = [e.audit_id for e in log.iter_new()]
    assert ids == [f"b-{i}" for i in range(50)]
    assert log.problems == []


def test_a_line_half_read_before_a_rotation_is_completed_from_the_old_file(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    line = _line("straddles")
    _append(log_file, line[:50])
    assert log.poll() == []
    _append(log_file, line[50:])
    log_file.rename(log_file.with_name("audit-2026-11-26T20-54-05.678.log"))
    log_file.write_bytes(_line("after"))
    assert [e.audit_id for e in log.poll()] == ["straddles", "after"]
    assert log.problems == []


def test_json_that_is_not_an_event_is_reported_not_raised(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    _append(log_file, b'{"stage":"ResponseComplete","auditID":"x","user":"bob"}\n'
                      b'{"stage":"Bogus","auditID":"y"}\n' + _line("ok"))
    assert [e.audit_id for e in log.poll()] == ["ok"]
    assert len(log.problems) == 2


def test_event_repr_never_shows_bodies(log_file: Path) -> None:
    log = AuditLog.tail(FileLogSource(log_file))
    _append(log_file, _line("r", requestObject={"kind": "Secret", "stringData": {"p": "hunter2"}}))
    [event] = log.poll()
    assert "hunter2" not in repr(event)


def test_attributes_of_a_create_event_have_no_name() -> None:
    from pytest_kaudit.events.attributes import attributes_from_event

    base = {"verb": "create", "user": {"username": "a"}, "requestURI": "/api/v1/namespaces/n/pods",
            "objectRef": {"resource": "pods", "namespace": "n", "name": "p1"}}
    assert attributes_from_event(base).name == ""  # the checker saw only the URL
    evict = {**base, "objectRef": {"resource": "pods", "namespace": "n", "name": "p1",
                                   "subresource": "eviction"}}
    assert attributes_from_event(evict).name == "p1"
    assert attributes_from_event({**base, "verb": "get"}).name == "p1"

"""Command-based audit log sources (no cluster): incremental reads, rotation, mixed output."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_kaudit.backends._logsources import CommandLogSource
from pytest_kaudit.events.log import AuditLog


def event(n: int) -> bytes:
    return (
        json.dumps(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": f"id-{n}",
                "stage": "ResponseComplete",
                "verb": "get",
                "requestURI": "/api",
                "user": {"username": "u"},
            }
        ).encode()
        + b"\n"
    )


def test_offset_command_reads_only_new_bytes_and_survives_rotation(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(event(1))
    calls = tmp_path / "calls"
    source = CommandLogSource(
        ["sh", "-c", f"echo {{offset1}} >> {calls}; tail -c +{{offset1}} {log}"],
        size_command=["stat", "-c", "%s", str(log)],
    )
    reader = AuditLog.tail(source)
    assert reader.poll() == []  # opened at the end
    with log.open("ab") as fh:
        fh.write(event(2) + event(3)[:10])  # a partial line waits for its end
    assert [e.audit_id for e in reader.poll()] == ["id-2"]
    with log.open("ab") as fh:
        fh.write(event(3)[10:])
    assert [e.audit_id for e in reader.poll()] == ["id-3"]
    log.write_bytes(event(4))  # rotated: smaller than our offset
    assert [e.audit_id for e in reader.poll()] == ["id-4"]
    offsets = [int(x) for x in calls.read_text().split()]
    assert offsets[-1] == 1 and max(offsets) > 1


def test_whole_output_command_skips_known_bytes(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(event(1))
    reader = AuditLog(CommandLogSource(["cat", str(log)]).follow(from_start=True))
    assert [e.audit_id for e in reader.poll()] == ["id-1"]
    with log.open("ab") as fh:
        fh.write(event(2))
    assert [e.audit_id for e in reader.poll()] == ["id-2"]


def test_json_only_drops_interleaved_apiserver_output(tmp_path: Path) -> None:
    log = tmp_path / "stdout"
    log.write_bytes(b"I1126 12:00:00 server.go:1] Serving securely\n" + event(1) + b"W warn\n")
    source = CommandLogSource(["cat", str(log)], json_only=True)
    reader = AuditLog(source.follow(from_start=True))
    assert [e.audit_id for e in reader.poll()] == ["id-1"]
    assert reader.problems == []


def test_failing_command_names_itself(tmp_path: Path) -> None:
    source = CommandLogSource(["cat", str(tmp_path / "missing")], description="node:audit.log")
    try:
        source.follow(from_start=True).read_new()
    except Exception as exc:  # AuditLogError
        assert "node:audit.log" in str(exc) and "exit 1" in str(exc)
    else:
        raise AssertionError("expected AuditLogError")


def test_default_description_masks_tokens_and_passwords() -> None:
    source = CommandLogSource(
        [
            "kubectl", "--token=s3cret1", "--password", "s3cret2", "--token", "s3cret3",
            "logs", "-n", "kube-system", "kube-apiserver-n1",
        ]
    )
    assert source.description == (
        "kubectl --token=*** --password *** --token *** logs -n kube-system kube-apiserver-n1"
    )
    curl = CommandLogSource(["curl", "-sH", "Authorization: Bearer s3cret4", "https://h/log"])
    assert curl.description == "curl -sH Authorization: Bearer *** https://h/log"
    shell = CommandLogSource(["sh", "-c", "kubectl --password=s3cret5 get --raw /x"])
    assert "s3cret" not in shell.description and "--password=***" in shell.description
    assert CommandLogSource(["cat", "/x"], description="mine").description == "mine"

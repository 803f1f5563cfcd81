"""Evidence lines name the log an event came from, and no line number the reader never knew."""

from __future__ import annotations

import dataclasses

from pytest_kaudit.events.model import AuditEvent, event_from_dict
from pytest_kaudit.traffic.judge import evidence

EVENT = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "a1",
    "stage": "ResponseComplete", "verb": "get", "requestURI": "/api/v1/namespaces/ns/pods/p",
    "user": {"username": "alice", "groups": ["system:authenticated"]},
    "objectRef": {"resource": "pods", "namespace": "ns", "name": "p", "apiVersion": "v1"},
    "responseStatus": {"code": 200},
}


def test_evidence_names_the_file_only() -> None:
    line = evidence([event_from_dict(EVENT, file="/var/log/audit.log")])[0]
    assert line.startswith("/var/log/audit.log: ")
    assert ":0:" not in line


def test_events_carry_no_line_number() -> None:
    assert "line_no" not in {f.name for f in dataclasses.fields(AuditEvent)}

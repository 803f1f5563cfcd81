"""Criteria matching and the failure-message building blocks (golden strings)."""

from __future__ import annotations

import pytest

from pytest_kaudit.events.model import AuditEvent, event_from_dict
from pytest_kaudit.expect.criteria import FIELDS, Criteria
from pytest_kaudit.expect.report import Prediction, describe_event, format_near_misses
from pytest_kaudit.policy import Decision, Level, Stage


def _event(**over: object) -> AuditEvent:
    raw: dict[str, object] = {
        "kind": "Event", "level": "Metadata", "auditID": "id-1", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/prod/secrets/s1", "verb": "get",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "s1", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }
    raw.update(over)
    return event_from_dict(raw)


@pytest.mark.parametrize(
    ("field", "expected", "actual"),
    [
        ("verb", "list", "get"),
        ("resource", "pods", "secrets"),
        ("subresource", "log", ""),
        ("namespace", "dev", "prod"),
        ("name", "s2", "s1"),
        ("api_group", "apps", ""),
        ("user", "bob", "alice"),
        ("impersonated_user", "carol", None),
        ("stage", "RequestReceived", "ResponseComplete"),
        ("level", "RequestResponse", "Metadata"),
        ("code", 403, 200),
        ("decision", "forbid", "allow"),
        ("audit_id", "id-2", "id-1"),
    ],
)
def test_each_field_is_compared(field: str, expected: object, actual: object) -> None:
    event = _event()
    assert Criteria.from_filters({field: actual}).match(event)
    [mismatch] = Criteria.from_filters({field: expected}).difference(event)
    assert (mismatch.field, mismatch.expected) == (field, expected)


def test_every_filter_is_covered_above() -> None:
    assert len(FIELDS) == 13


def test_enums_and_any_of_collections() -> None:
    event = _event()
    assert Criteria.from_filters({"level": Level.METADATA, "stage": Stage.RESPONSE_COMPLETE}).match(event)
    assert Criteria.from_filters({"verb": ["get", "list"]}).match(event)
    assert not Criteria.from_filters({"verb": {"watch", "list"}}).match(event)


def test_unknown_filter_names_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown audit event filter\\(s\\) verbs; filters are: verb,"):
        Criteria.from_filters({"verbs": "get"})


def test_mismatch_and_repr_text() -> None:
    criteria = Criteria.from_filters({"verb": "get", "level": "RequestResponse", "code": [200, 201]})
    assert repr(criteria) == "verb=get, level=RequestResponse, code=200 or 201"
    [m] = criteria.difference(_event())
    assert str(m) == "level: Metadata (expected RequestResponse)"


def test_describe_event_never_prints_bodies() -> None:
    event = _event(level="RequestResponse",
                   requestObject={"kind": "Secret", "data": {"password": "aHVudGVyMg=="}},
                   responseObject={"kind": "Secret", "data": {"password": "aHVudGVyMg=="}})
    text = describe_event(event)
    assert text == ("get secrets prod/s1 by alice, ResponseComplete at RequestResponse, "
                    "code 200 (allow), bodies: request+response, auditID id-1")
    assert "aHVudGVy" not in text


def test_near_misses_rank_by_differing_fields_and_cap_at_five() -> None:
    criteria = Criteria.from_filters({"verb": "get", "name": "s1", "namespace": "prod"})
    events = [_event(auditID=f"far-{i}", verb="list",
                     objectRef={"resource": "secrets", "namespace": "x", "name": "y"})
              for i in range(6)]
    events.append(_event(auditID="near", level="Metadata",
                         objectRef={"resource": "secrets", "namespace": "prod", "name": "s2"}))
    lines = format_near_misses(criteria, events)
    assert lines[0] == "  nearest events logged in this test (fewest differing fields first):"
    assert "auditID near" in lines[1]
    assert lines[2] == '        name: s2 (expected s1)'
    assert lines[-1] == "    ... and 2 more"


def test_prediction_text() -> None:
    decision = Decision(level=Level.METADATA, omit_stages=frozenset({Stage.REQUEST_RECEIVED}),
                        omit_managed_fields=False, rule_index=1)
    text = Prediction(decision, "level Metadata for secrets", 13, "brief.yaml",
                      "GET /api/v1/namespaces/p/secrets/s by admin").describe()
    assert text == ("rules[1] (brief.yaml:13) applies to GET /api/v1/namespaces/p/secrets/s by "
                    "admin, so Metadata\n      rules[1]: level Metadata for secrets\n"
                    "      omitted stages: RequestReceived")
    none = Decision(level=Level.NONE, omit_stages=frozenset(), omit_managed_fields=False,
                    rule_index=None)
    assert Prediction(none, None, None, "p.yaml", "get configmaps").describe() == (
        "no rule of p.yaml matches get configmaps, so level None (not logged)\n"
        "      omitted stages: none")

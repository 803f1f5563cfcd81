"""Feeds a session's requests and events into :class:`~pytest_kaudit.coverage.RuleCoverage`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kaudit.coverage import RuleCoverage
from pytest_kaudit.events.model import AuditEvent
from pytest_kaudit.policy import Policy, RequestAttributes

if TYPE_CHECKING:
    from pytest_kaudit.fixture import KAudit


class SessionCoverage:
    """Rule coverage of every policy the session's tests ran against."""

    def __init__(self) -> None:
        self.rules = RuleCoverage()
        self._seen = False

    def record_test(self, policy: Policy, kaudit: KAudit, events: Sequence[AuditEvent]) -> None:
        """Count the rules deciding the test's requests, one hit per request and rule: what
        each request was sent with (so level-None rules count too) and the stages logged for it.
        """
        self._seen = True
        self.rules.add_policy(policy)
        evidence: dict[str, list[RequestAttributes | Mapping[str, Any]]] = {}
        for sent in list(kaudit.ids.sent.values()):
            try:
                attrs = kaudit.attributes_of_sent(sent)
            except ValueError:  # a path the apiserver itself rejects before auditing
                continue
            evidence.setdefault(sent.audit_id, []).append(attrs)
        for event in events:
            evidence.setdefault(event.audit_id, []).append(dict(event.raw))
        for of_one_request in evidence.values():
            self.rules.record_request(policy, of_one_request)

    def has_data(self) -> bool:
        """Whether any test ran against a policy."""
        return self._seen

    def report(self) -> str:
        """The terminal summary."""
        return self.rules.report()

    def to_json(self) -> dict[str, Any]:
        """The JSON written by ``--kaudit-coverage``."""
        return self.rules.to_json()

    def percent(self) -> float:
        """Covered reachable rules, in percent."""
        return self.rules.percent()


def write_report(path: str | Path, report: dict[str, Any]) -> str | None:
    """Write the JSON report; None on success, else why it could not be written.

    The directory was created at start-up; it is created again in case the run removed it,
    so a whole run's coverage is not lost to a missing directory.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w") as fh:
            json.dump(report, fh, indent=2)
    except OSError as exc:
        return f"kaudit: cannot write the coverage report {target}: {exc.strerror or exc}"
    return None

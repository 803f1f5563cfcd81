"""What one request left in the audit log, and what the policy engine says it should leave.

Both sides have the same shape, :class:`Logged`, so a requirement is checked the same way on
a prediction (offline) and on the real log, and a disagreement between the two is a plain
field-by-field comparison. Stage rules come from :mod:`pytest_kaudit.policy.stages`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_kaudit.events.model import AuditEvent
from pytest_kaudit.expect.report import describe_event, stage_list
from pytest_kaudit.policy import Level, Policy, RequestAttributes, Stage
from pytest_kaudit.policy.bodies import request_body_logged, response_body_logged
from pytest_kaudit.policy.stages import stages_for


@dataclass(frozen=True)
class Logged:
    """How one request appears in the log. ``None`` for a body means "cannot tell"."""

    level: Level
    stages: frozenset[Stage]
    request_body: bool | None
    response_body: bool | None
    impersonated_user: str | None = None
    user: str | None = None

    @property
    def is_logged(self) -> bool:
        """At least one event was (or will be) written."""
        return bool(self.stages)

    def describe(self) -> str:
        """``Metadata (ResponseComplete), bodies: none``."""
        if not self.is_logged:
            return "not logged"
        bodies = [n for n, has in (("request", self.request_body),
                                   ("response", self.response_body)) if has]
        return (f"{self.level.value} ({stage_list(self.stages)}), bodies: "
                f"{'+'.join(bodies) if bodies else 'none'}")


def observe(events: Sequence[AuditEvent]) -> Logged:
    """Summarise the events of one request (one auditID)."""
    if not events:
        return Logged(Level.NONE, frozenset(), request_body=False, response_body=False)
    final = events[-1]
    level = max((e.level for e in events), key=lambda lv: lv.rank)
    impersonated = next((e.impersonated_user for e in events if e.impersonated_user), None)
    return Logged(
        level=level,
        stages=frozenset(e.stage for e in events),
        request_body=any(e.has_request_object for e in events),
        response_body=any(e.has_response_object for e in events),
        impersonated_user=impersonated,
        user=final.user or None,
    )


def predict(policy: Policy, attrs: RequestAttributes, *, sends_body: bool,
            status: int | None = None, authorized: bool | None = None,
            impersonated_user: str | None = None) -> Logged:
    """What the policy makes the apiserver log for a request with ``attrs``.

    ``status`` is the HTTP status the request got, when known. Without it, ``authorized``
    says whether the request gets past authentication and authorisation (its body is only
    decoded then); a body whose presence cannot be told is ``None``.
    """
    decision = policy.evaluate_attributes(attrs)
    stages = stages_for(attrs, decision)
    level = decision.level
    request_body = request_body_logged(level, attrs, stages, sends_body=sends_body,
                                       status=status, authorized=authorized)
    response_body = response_body_logged(level, attrs, stages, status=status)
    recorded = impersonated_user if stages - {Stage.REQUEST_RECEIVED} else None
    return Logged(level=level if stages else Level.NONE, stages=stages,
                  request_body=request_body, response_body=response_body,
                  impersonated_user=recorded, user=attrs.user)


def disagreements(predicted: Logged, observed: Logged) -> list[str]:
    """Where the real log contradicts the prediction (unknown predicted bodies are skipped)."""
    out = []
    if predicted.level != observed.level:
        out.append(f"level {observed.level.value}, predicted {predicted.level.value}")
    if predicted.stages != observed.stages:
        out.append(f"stages {stage_list(observed.stages)}, predicted "
                   f"{stage_list(predicted.stages)}")
    for name in ("request_body", "response_body"):
        want, got = getattr(predicted, name), getattr(observed, name)
        if want is not None and want != got:
            words = name.replace("_", " ")
            out.append(f"{words} {'present' if got else 'absent'}, predicted "
                       f"{'present' if want else 'absent'}")
    if predicted.impersonated_user != observed.impersonated_user:
        out.append(f"impersonated user {observed.impersonated_user or 'none'}, predicted "
                   f"{predicted.impersonated_user or 'none'}")
    return out


def evidence(events: Sequence[AuditEvent]) -> list[str]:
    """One body-free line per event, with the log file it was read from."""
    out = []
    for e in events:
        where = f"{e.file}: " if e.file else ""
        out.append(where + describe_event(e))
    return out

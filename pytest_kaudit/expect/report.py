"""Failure messages that explain an audit expectation, top to bottom.

1. headline (what was asserted, the count found); 2. the expectation in the user's terms;
3. what the policy predicts for such a request, flagged first when it already contradicts the
expectation; 4. the scope searched; 5. the nearest events, ranked by how many fields differ,
showing only those fields. Nothing here prints a request or response body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_kaudit.events.model import AuditEvent
from pytest_kaudit.expect.criteria import Criteria, Mismatch
from pytest_kaudit.policy.model import Decision, Level, Stage

MAX_NEAR_MISSES = 5


@dataclass(frozen=True)
class Prediction:
    """The policy engine's decision for the request an expectation is about."""

    decision: Decision
    rule_summary: str | None      # one line describing the deciding rule
    rule_line: int | None         # its line in the policy file
    policy_source: str | None     # the policy file (or "<inline policy>")
    request: str                  # the request the prediction was made for, in words

    def describe(self) -> str:
        """E.g. ``rules[1] (policy.yaml:14) applies to ..., so Metadata`` plus the omitted
        stages.
        """
        d = self.decision
        where = self.policy_source or "policy"
        if d.rule_index is None:
            head = f"no rule of {where} matches {self.request}, so level None (not logged)"
        else:
            loc = f"{where}:{self.rule_line}" if self.rule_line else where
            head = f"rules[{d.rule_index}] ({loc}) applies to {self.request}, so {d.level.value}"
            if self.rule_summary:
                head += f"\n      rules[{d.rule_index}]: {self.rule_summary}"
        omitted = ", ".join(sorted(s.value for s in d.omit_stages)) or "none"
        return f"{head}\n      omitted stages: {omitted}"


def stage_list(stages: set[Stage] | frozenset[Stage]) -> str:
    """Stages in the order the apiserver emits them."""
    return ", ".join(s.value for s in sorted(stages, key=lambda stage: stage.rank)) or "none"


def describe_event(event: AuditEvent) -> str:
    """One line per event: what happened, who did it, how it was logged. Never a body."""
    target = event.resource or event.path
    if event.subresource:
        target += f"/{event.subresource}"
    if event.api_group:
        target = f"{event.api_group}/{target}"
    obj = "/".join(x for x in (event.namespace, event.name) if x)
    who = event.user or "<unauthenticated>"
    if event.impersonated_user:
        who += f" as {event.impersonated_user}"
    parts = [f"{event.verb} {target}{' ' + obj if obj else ''} by {who}",
             f"{event.stage.value} at {event.level.value}"]
    if event.response_code is not None:
        code = str(event.response_code)
        if event.decision:
            code += f" ({event.decision})"
        parts.append(f"code {code}")
    bodies = [n for n, has in (("request", event.has_request_object),
                                ("response", event.has_response_object)) if has]
    parts.append(f"bodies: {'+'.join(bodies) if bodies else 'none'}")
    parts.append(f"auditID {event.audit_id}")
    return ", ".join(parts)


def near_misses(
    criteria: Criteria, events: Sequence[AuditEvent]
) -> list[tuple[AuditEvent, list[Mismatch]]]:
    """Events ranked by how many fields differ (fewest first), ties in log order."""
    scored = [(e, criteria.difference(e)) for e in events]
    ranked = sorted(enumerate(scored), key=lambda item: (len(item[1][1]), item[0]))
    return [pair for _, pair in ranked]


def format_near_misses(criteria: Criteria, events: Sequence[AuditEvent],
                       title: str = "nearest events logged in this test") -> list[str]:
    """The near-miss block: at most MAX_NEAR_MISSES events, only their differing fields."""
    if not events:
        return [f"  {title}: none"]
    ranked = near_misses(criteria, events)
    lines = [f"  {title} (fewest differing fields first):"]
    for event, diff in ranked[:MAX_NEAR_MISSES]:
        lines.append(f"    - {describe_event(event)}")
        lines += [f"        {m}" for m in diff]
    if len(ranked) > MAX_NEAR_MISSES:
        lines.append(f"    ... and {len(ranked) - MAX_NEAR_MISSES} more")
    return lines


def contradiction(prediction: Prediction | None, level: Level | None,
                  stages: frozenset[Stage] | None, *, expect_logged: bool) -> str | None:
    """A sentence when the policy's own prediction already contradicts the expectation."""
    if prediction is None:
        return None
    d = prediction.decision
    if expect_logged and d.level == Level.NONE:
        return ("the policy itself says this request is not logged (level None): "
                "either the policy or the test is wrong")
    if not expect_logged and d.level != Level.NONE:
        return (f"the policy itself says this request is logged at {d.level.value}: "
                "either the policy or the test is wrong")
    if level is not None and d.level != Level.NONE and d.level != level:
        return (f"the policy itself gives {d.level.value}, not {level.value}: "
                "either the policy or the test is wrong")
    if stages is not None and stages & d.omit_stages:
        return (f"the policy omits {stage_list(stages & d.omit_stages)}, which the test expects")
    return None


def failure_message(
    headline: str,
    criteria: Criteria,
    *,
    prediction: Prediction | None,
    contradicts: str | None,
    scope: str,
    events: Sequence[AuditEvent],
    details: Sequence[str] = (),
    near_title: str = "nearest events logged in this test",
    show_near: bool = True,
) -> str:
    """Assemble the whole explanation (see module docstring for the order)."""
    lines = [headline, f"  expected: {criteria!r}"]
    if contradicts:
        lines.append(f"  NOTE: {contradicts}")
    if prediction is not None:
        lines.append(f"  policy prediction: {prediction.describe()}")
    else:
        lines.append("  policy prediction: unavailable (no policy copy given for this cluster)")
    lines += [f"  {d}" for d in details]
    lines.append(f"  searched: {scope}")
    if show_near:
        lines += format_near_misses(criteria, events, near_title)
    return "\n".join(lines)

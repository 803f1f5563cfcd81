"""Prove every rule live: send each witness (and its near misses) and judge what was logged.

Sending and judging go through :class:`pytest_kaudit.traffic.TrafficSession`, the same
attributed clients, barrier and log cursor the ``kaudit`` fixture uses. A disagreement between
the real log and the engine's prediction is a MISMATCH, shown with the body-free events and the
fixture's own policy-mismatch lines (the text of ``PolicyMismatchWarning``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_kaudit.backends.base import ClusterHandle
from pytest_kaudit.policy import Policy
from pytest_kaudit.traffic import TrafficSession, Verdict, evidence
from pytest_kaudit.witness.search import RuleWitness

RowStatus = Literal["OK", "MISMATCH", "UNREACHABLE", "NOT SENDABLE"]


@dataclass(frozen=True)
class Check:
    """One request sent for a rule (its witness or a near miss) and how it was judged."""

    role: str                # "witness" or "near miss (verb)"
    request: str             # the request in words
    rule_index: int | None   # the rule the engine says decides it
    predicted: str
    observed: str
    disagreements: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"role": self.role, "request": self.request, "rule": self.rule_index,
                "predicted": self.predicted, "observed": self.observed,
                "disagreements": list(self.disagreements), "evidence": list(self.evidence)}


@dataclass(frozen=True)
class RuleResult:
    """One row of the verify report."""

    index: int
    line: int | None
    summary: str
    status: RowStatus
    reason: str = ""
    checks: tuple[Check, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"rule": self.index, "line": self.line, "summary": self.summary,
                "status": self.status, "reason": self.reason,
                "checks": [c.to_dict() for c in self.checks]}


def _check(session: TrafficSession, policy: Policy, role: str, verdict: Verdict) -> Check:
    predicted = verdict.predicted
    events = list(verdict.events)
    mismatch = tuple(verdict.engine_disagreements)
    lines: tuple[str, ...] = ()
    if mismatch:
        lines = tuple(evidence(events)) + tuple(session.kaudit.policy_mismatches(events))
    return Check(
        role=role,
        request=_describe(verdict),
        rule_index=policy.evaluate_attributes(verdict.sent.attributes).rule_index,
        predicted=predicted.describe() if predicted else "unknown",
        observed=verdict.observed.describe(),
        disagreements=mismatch,
        evidence=lines,
    )


def _describe(verdict: Verdict) -> str:
    """The request in words, with the caller's groups (they decide ``userGroups`` rules)."""
    spec = verdict.sent.spec
    groups = spec.identity.groups
    return spec.describe() + (f" (groups {', '.join(groups)})" if groups else "")


def verify_witnesses(policy: Policy, found: Sequence[RuleWitness], handle: ClusterHandle, *,
                     timeout: float = 10.0) -> list[RuleResult]:
    """Send every reachable rule's witness and near misses to ``handle``; one row per rule."""
    session = TrafficSession(handle, policy, name="kaudit verify", timeout=timeout)
    try:
        plan: list[tuple[int, str]] = []
        specs = []
        for w in found:
            if w.witness is None:
                continue
            plan.append((w.index, "witness"))
            specs.append(w.witness.spec)
            for miss in w.near_misses:
                plan.append((w.index, f"near miss ({miss.changed})"))
                specs.append(miss.request.spec)
        verdicts = session.judge(session.send_all(specs))
        by_rule: dict[int, list[tuple[str, Verdict]]] = {}
        for (index, role), verdict in zip(plan, verdicts, strict=True):
            by_rule.setdefault(index, []).append((role, verdict))
        return [_row(session, policy, w, by_rule.get(w.index, [])) for w in found]
    finally:
        session.close()


def _row(session: TrafficSession, policy: Policy, w: RuleWitness,
         judged: list[tuple[str, Verdict]]) -> RuleResult:
    line, summary = policy.rule_line(w.index), w.rule.summary()
    if w.status == "unreachable":
        return RuleResult(w.index, line, summary, "UNREACHABLE", w.reason)
    if w.status == "unsendable":
        return RuleResult(w.index, line, summary, "NOT SENDABLE", w.reason)
    checks = tuple(_check(session, policy, role, verdict) for role, verdict in judged)
    witness = judged[0][1].sent
    if witness.impersonated:
        decided = policy.evaluate_attributes(witness.attributes).rule_index
        if decided != w.index:
            user = witness.spec.identity.user
            return RuleResult(
                w.index, line, summary, "NOT SENDABLE",
                f"this backend cannot mint credentials for {user!r}; the admin impersonates "
                f"it, and the policy matches the admin, whom rules[{decided}] decides",
                checks)
    note = ""
    if witness.impersonated:
        note = (f"sent by the admin impersonating {witness.spec.identity.user!r}: this backend "
                "cannot mint credentials")
    status: RowStatus = "MISMATCH" if any(c.disagreements for c in checks) else "OK"
    return RuleResult(w.index, line, summary, status, note, checks)

"""Rule coverage: which policy rules the test session actually exercised.

The plugin feeds it two kinds of evidence: the attributes of requests the tests *sent*
(so a ``level: None`` rule, which never produces an event, still counts as hit) and the
events the apiserver *logged*. A rule nobody hit is untested policy; a rule nobody *can*
hit (shadowed by an earlier rule, from the policy lint) is reported as unreachable instead,
because no test can fix that - only the policy can. Pure: no pytest import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_kaudit.events.attributes import attributes_from_event

if TYPE_CHECKING:
    from pytest_kaudit.policy import Decision, Policy, RequestAttributes

_RULE_FIELD = re.compile(r"^rules\[(\d+)\]")
UNREACHABLE_CODES = frozenset({"shadowed-rule", "unreachable-rule"})


@dataclass
class _Tracked:
    key: str
    policy: Policy
    hits: list[int]
    unreachable: dict[int, str] | None = None  # rule index -> lint message (lazy)
    extra: dict[str, int] = field(default_factory=lambda: {"unmatched": 0})


class RuleCoverage:
    """Hit counts per rule for one or more policies, with a terminal and a JSON report."""

    def __init__(self) -> None:
        self._by_key: dict[str, _Tracked] = {}
        self._by_id: dict[int, str] = {}

    # ----------------------------------------------------------------- feeding
    def add_policy(self, policy: Policy, *, name: str | None = None) -> str:
        """Start tracking ``policy``; returns its key (the same policy object -> same key)."""
        existing = self._by_id.get(id(policy))
        if existing is not None:
            return existing
        base = name or policy.source or "policy"
        key = base
        n = 2
        while key in self._by_key:
            key = f"{base} #{n}"
            n += 1
        self._by_key[key] = _Tracked(key, policy, [0] * len(policy.rules))
        self._by_id[id(policy)] = key
        return key

    def _tracked(self, policy: Policy | str) -> _Tracked:
        if isinstance(policy, str):
            return self._by_key[policy]
        key = self._by_id.get(id(policy))
        return self._by_key[key] if key is not None else self._by_key[self.add_policy(policy)]

    def record(
        self,
        policy: Policy | str,
        what: RequestAttributes | Decision | Mapping[str, Any],
    ) -> int | None:
        """Mark the rule that decides ``what`` as hit; returns its index (None: no rule).

        ``what`` is the attributes of a request a test sent, a raw logged event (dict), or an
        already computed Decision.
        """
        tracked = self._tracked(policy)
        index = self._rule_of(tracked, what)
        self._hit(tracked, index)
        return index

    def record_request(
        self,
        policy: Policy | str,
        evidence: Iterable[RequestAttributes | Decision | Mapping[str, Any]],
    ) -> set[int | None]:
        """Count one request (one Audit-ID) once: ``evidence`` is everything known about it
        (the attributes it was sent with, each stage the apiserver logged for it), and each rule
        that evidence points at gets one hit. Returns those rules' indexes (None: no rule).
        """
        tracked = self._tracked(policy)
        rules = {self._rule_of(tracked, what) for what in evidence}
        for index in rules:
            self._hit(tracked, index)
        return rules

    @staticmethod
    def _rule_of(
        tracked: _Tracked, what: RequestAttributes | Decision | Mapping[str, Any]
    ) -> int | None:
        if isinstance(what, Mapping):
            what = attributes_from_event(what)
        if hasattr(what, "rule_index") and hasattr(what, "level"):
            index: int | None = what.rule_index
            return index
        return tracked.policy.evaluate_attributes(what).rule_index

    @staticmethod
    def _hit(tracked: _Tracked, index: int | None) -> None:
        if index is None:
            tracked.extra["unmatched"] += 1
        else:
            tracked.hits[index] += 1

    # ----------------------------------------------------------------- queries
    def _unreachable(self, tracked: _Tracked) -> dict[int, str]:
        if tracked.unreachable is None:
            found: dict[int, str] = {}
            try:
                problems = tracked.policy.lint()
            except Exception:  # a lint crash must not hide the coverage report
                problems = []
            for p in problems:
                if p.code not in UNREACHABLE_CODES:
                    continue
                m = _RULE_FIELD.match(p.field or "")
                if m:
                    found.setdefault(int(m.group(1)), p.message)
            tracked.unreachable = found
        return tracked.unreachable

    def counts(self) -> tuple[int, int, int]:
        """(covered, coverable, unreachable) over all policies; unreachable rules are not
        coverable.
        """
        covered = coverable = unreachable = 0
        for t in self._by_key.values():
            dead = self._unreachable(t)
            for i, hits in enumerate(t.hits):
                if i in dead and not hits:
                    unreachable += 1
                    continue
                coverable += 1
                covered += bool(hits)
        return covered, coverable, unreachable

    def percent(self) -> float:
        """Covered rules as a percentage of reachable rules (100.0 when there are none)."""
        covered, coverable, _ = self.counts()
        return 100.0 if coverable == 0 else 100.0 * covered / coverable

    def to_json(self) -> dict[str, Any]:
        """Machine-readable coverage (the ``--kaudit-coverage=PATH`` file)."""
        policies = []
        for t in self._by_key.values():
            dead = self._unreachable(t)
            rules = []
            for i, rule in enumerate(t.policy.rules):
                status = "covered" if t.hits[i] else ("unreachable" if i in dead else "uncovered")
                rules.append(
                    {
                        "index": i,
                        "line": t.policy.rule_line(i),
                        "level": str(rule.level.value),
                        "summary": rule.summary(),
                        "hits": t.hits[i],
                        "status": status,
                        **({"reason": dead[i]} if status == "unreachable" else {}),
                    }
                )
            policies.append(
                {
                    "key": t.key,
                    "source": t.policy.source,
                    "rules": rules,
                    "covered": sum(1 for r in rules if r["status"] == "covered"),
                    "total": len(rules),
                    "unmatched_requests": t.extra["unmatched"],
                }
            )
        covered, coverable, unreachable = self.counts()
        return {
            "version": 1,
            "policies": policies,
            "covered": covered,
            "coverable": coverable,
            "unreachable": unreachable,
            "percent": round(self.percent(), 2),
        }

    def report(self) -> str:
        """The terminal summary: per policy N/M covered, then never-hit and unreachable rules."""
        if not self._by_key:
            return "kaudit rule coverage: no policy was used"
        lines = ["kaudit rule coverage"]
        for t in self._by_key.values():
            dead = self._unreachable(t)
            n = len(t.hits)
            hit = sum(1 for h in t.hits if h)
            reachable = n - sum(1 for i in dead if not t.hits[i])
            pct = 100.0 if reachable == 0 else 100.0 * hit / reachable
            lines.append(f"{t.key}: {hit}/{reachable} reachable rules covered ({pct:.1f}%)")
            never = [i for i in range(n) if not t.hits[i] and i not in dead]
            if never:
                lines.append("  never hit:")
                lines += [f"    {self._rule_label(t, i)}" for i in never]
            unreach = [i for i in range(n) if not t.hits[i] and i in dead]
            if unreach:
                lines.append("  unreachable (no request can reach them; fix the policy):")
                lines += [f"    {self._rule_label(t, i)}: {dead[i]}" for i in unreach]
        covered, coverable, _ = self.counts()
        if len(self._by_key) > 1:
            lines.append(
                f"total: {covered}/{coverable} reachable rules covered ({self.percent():.1f}%)"
            )
        return "\n".join(lines)

    @staticmethod
    def _rule_label(t: _Tracked, i: int) -> str:
        line = t.policy.rule_line(i)
        where = f" (line {line})" if line else ""
        return f"rule {i}{where}: {t.policy.rules[i].summary()}"

"""The outcome of checking requirements: one :class:`CheckResult` per requirement.

Results hold no Secret data: requests are described by verb, resource, namespace, name and
user; events by :func:`~pytest_kaudit.expect.report.describe_event`; canary hits by file,
line and encoding only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_kaudit.compliance.model import Requirement

Status = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class RuleRef:
    """The policy rule that decided a request (``index`` None: no rule matched)."""

    index: int | None
    line: int | None
    summary: str | None
    source: str

    def describe(self) -> str:
        """``rules[2] (policy.yaml:14)`` or ``no rule (the default, None)``."""
        if self.index is None:
            return "no rule matches (level None)"
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"rules[{self.index}] ({where})"


@dataclass(frozen=True)
class Failure:
    """One request (or flag, or log line) that does not meet the requirement."""

    subject: str
    problems: tuple[str, ...]
    rule: RuleRef | None = None
    evidence: tuple[str, ...] = ()

    def describe(self) -> str:
        """``create secrets a by alice: not logged (decided by rules[1] (p.yaml:9))``."""
        text = f"{self.subject}: {'; '.join(self.problems)}"
        if self.rule is not None:
            text += f" [decided by {self.rule.describe()}]"
        return text


@dataclass(frozen=True)
class Fix:
    """A change to the policy (or flags) that makes the requirement pass, engine-checked."""

    kind: Literal["rule", "flag"]
    text: str                 # a YAML rule snippet, or ``--flag=value``
    where: str                # where to put it, in words
    insert_at: int | None = None
    verified: bool = False

    def to_json(self) -> dict[str, Any]:
        """The fix as JSON."""
        return {"kind": self.kind, "text": self.text, "where": self.where,
                "insertAt": self.insert_at, "verified": self.verified}


@dataclass
class CheckResult:
    """One requirement checked: engine prediction, real outcome (if run), why, and a fix."""

    requirement: Requirement
    predicted: Status
    status: Status
    failures: list[Failure] = field(default_factory=list)
    fix: Fix | None = None
    engine_bugs: list[str] = field(default_factory=list)
    requests: int = 0
    proven: bool = False
    note: str = ""

    @property
    def passed(self) -> bool:
        """Passed, and the engine agrees with the real log."""
        return self.status == "pass" and not self.engine_bugs

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (same content as the text and HTML reports)."""
        r = self.requirement
        return {
            "id": r.id, "title": r.title, "pack": r.pack, "kind": r.kind,
            "sources": list(r.sources), "rationale": r.rationale,
            "status": self.status, "predicted": self.predicted, "proven": self.proven,
            "requests": self.requests, "note": self.note,
            "failures": [{"subject": f.subject, "problems": list(f.problems),
                          "rule": None if f.rule is None else {
                              "index": f.rule.index, "line": f.rule.line,
                              "summary": f.rule.summary, "source": f.rule.source},
                          "evidence": list(f.evidence)} for f in self.failures],
            "fix": self.fix.to_json() if self.fix else None,
            "engineBugs": list(self.engine_bugs),
            "definedAt": r.where,
        }


@dataclass
class Report:
    """Everything ``kaudit check`` found, for every output format."""

    policy: str
    policy_text: str
    packs: list[str]
    mode: Literal["offline", "real"]
    results: list[CheckResult]
    conflicts: list[str] = field(default_factory=list)
    backend: str = ""
    apiserver_version: str = ""
    seconds: float = 0.0
    #: What the loader ignored or warned about (the apiserver loads such fields silently).
    policy_warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckResult]:
        """Results that did not pass (or whose prediction the log contradicted)."""
        return [r for r in self.results if not r.passed]

    @property
    def engine_bugs(self) -> list[str]:
        """Every engine/log disagreement, prefixed with its requirement id."""
        return [f"{r.requirement.id}: {b}" for r in self.results for b in r.engine_bugs]

    def to_json(self) -> dict[str, Any]:
        """The whole report as JSON."""
        passed = sum(1 for r in self.results if r.passed)
        return {
            "policy": self.policy, "packs": self.packs, "mode": self.mode,
            "backend": self.backend, "apiserverVersion": self.apiserver_version,
            "seconds": round(self.seconds, 2),
            "summary": {"requirements": len(self.results), "passed": passed,
                        "failed": len(self.results) - passed,
                        "engineBugs": len(self.engine_bugs)},
            "conflicts": self.conflicts,
            "policyWarnings": self.policy_warnings,
            "results": [r.to_json() for r in self.results],
        }

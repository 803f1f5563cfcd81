"""Audit requirements as data: what to send, and what the audit log must make of it.

A requirement is one of four kinds: ``traffic`` (requests and a condition on how each is
logged), ``flag`` (a kube-apiserver audit flag), ``canary`` (a secret value must never reach
the log by any route) and ``gap`` (a write to every resource the server serves is logged
unless a rule names that resource). Built-in packs and user files share this format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pytest_kaudit.policy import Level
from pytest_kaudit.traffic import Identity, Logged, RequestSpec

Kind = Literal["traffic", "flag", "canary", "gap"]


@dataclass(frozen=True)
class LevelBound:
    """``atLeast`` / ``atMost`` / ``exactly`` a level."""

    op: Literal["atLeast", "atMost", "exactly"]
    level: Level

    def holds(self, level: Level) -> bool:
        """Whether ``level`` satisfies the bound."""
        if self.op == "atLeast":
            return level >= self.level
        if self.op == "atMost":
            return level <= self.level
        return level == self.level

    def describe(self) -> str:
        """``at least Metadata``."""
        words = {"atLeast": "at least", "atMost": "at most", "exactly": "exactly"}[self.op]
        return f"{words} {self.level.value}"


@dataclass(frozen=True)
class Want:
    """What must hold for every request of a traffic requirement."""

    logged: bool | None = None
    level: LevelBound | None = None
    request_body: bool | None = None
    response_body: bool | None = None
    impersonated_user: bool = False

    def failures(self, spec: RequestSpec, logged: Logged) -> list[str]:
        """Why ``logged`` does not meet this want (empty: it does)."""
        out: list[str] = []
        is_logged = logged.is_logged
        if self.logged is True and not is_logged:
            out.append("not logged")
        if self.logged is False and is_logged:
            out.append(f"logged at {logged.level.value}, must not be logged")
        if self.level is not None and not self.level.holds(logged.level):
            got = logged.level.value if is_logged else "not logged"
            out.append(f"{got}, must be {self.level.describe()}")
        for name, want, has in (("request body", self.request_body, logged.request_body),
                                ("response body", self.response_body, logged.response_body)):
            if want is True and has is False:
                out.append(f"no {name} logged, one is required")
            elif want is False and has is True:
                out.append(f"{name} logged, it must not be")
        if self.impersonated_user and spec.identity.kind == "impersonated" and \
                logged.impersonated_user != spec.identity.user:
            out.append(f"impersonated user {spec.identity.user} not recorded")
        return out

    def describe(self) -> str:
        """The condition in words."""
        parts = []
        if self.logged is True:
            parts.append("logged")
        if self.logged is False:
            parts.append("not logged")
        if self.level is not None:
            parts.append(f"level {self.level.describe()}")
        for name, want in (("request body", self.request_body),
                           ("response body", self.response_body)):
            if want is not None:
                parts.append(f"{name} {'present' if want else 'absent'}")
        if self.impersonated_user:
            parts.append("impersonated user recorded")
        return ", ".join(parts) or "anything"

    def minimum_level(self) -> Level:
        """The lowest level a fix rule must give for this want to hold."""
        if self.level is not None and self.level.op in ("atLeast", "exactly"):
            base = self.level.level
        else:
            base = Level.METADATA if self.logged or self.impersonated_user else Level.NONE
        if self.request_body:
            base = max(base, Level.REQUEST, key=lambda lv: lv.rank)
        if self.response_body:
            base = Level.REQUEST_RESPONSE
        return base

    def fix_level(self) -> Level:
        """The level a fix rule gives: the minimum, capped by an ``atMost`` bound."""
        if self.logged is False:
            return Level.NONE
        if self.level is not None and self.level.op == "atMost":
            return self.level.level
        return self.minimum_level()


@dataclass(frozen=True)
class RequestTemplate:
    """Requests a requirement sends: every verb × namespace × identity combination."""

    verbs: tuple[str, ...]
    resource: str = ""
    subresource: str = ""
    group: str = ""
    version: str = "v1"
    namespaces: tuple[str, ...] = ("",)
    name: str = "kaudit-check"
    path: str = ""
    identities: tuple[Identity, ...] = (Identity.admin(),)
    patch_type: str | None = None

    def expand(self) -> list[RequestSpec]:
        """The concrete requests."""
        out = []
        for identity in self.identities:
            for namespace in self.namespaces:
                for verb in self.verbs:
                    out.append(RequestSpec(
                        verb=verb, resource=self.resource, subresource=self.subresource,
                        group=self.group, version=self.version, namespace=namespace,
                        name=self.name, path=self.path, identity=identity,
                        content_type=self.patch_type or "application/json"))
        return out


@dataclass(frozen=True)
class FlagCheck:
    """A kube-apiserver flag that must be set, optionally to at least a number."""

    name: str
    at_least: int | None = None
    policy_has_rules: bool = False

    def describe(self) -> str:
        """``--audit-log-maxage >= 30``."""
        if self.at_least is not None:
            return f"--{self.name} >= {self.at_least}"
        extra = " to a policy with at least one rule" if self.policy_has_rules else ""
        return f"--{self.name} set{extra}"


@dataclass(frozen=True)
class Requirement:
    """One check a report shows as one row."""

    id: str
    title: str
    sources: tuple[str, ...]
    rationale: str
    pack: str
    kind: Kind
    requests: tuple[RequestTemplate, ...] = ()
    want: Want | None = None
    flag: FlagCheck | None = None
    conflicts_with: tuple[str, ...] = ()
    file: str = ""
    line: int = 0

    def specs(self) -> list[RequestSpec]:
        """Every request of a traffic requirement."""
        return [s for t in self.requests for s in t.expand()]

    @property
    def where(self) -> str:
        """``cis.yaml:12``."""
        return f"{self.file}:{self.line}" if self.file else self.id

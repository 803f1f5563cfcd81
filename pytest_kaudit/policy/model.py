"""Typed, immutable view of an audit ``Policy`` as kube-apiserver decodes it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kaudit._suggest import closest
from pytest_kaudit.policy.versions import Version, VersionLike

if TYPE_CHECKING:
    from pytest_kaudit.policy.evaluate import CompiledPolicy
    from pytest_kaudit.policy.problems import Problem
    from pytest_kaudit.policy.request import RequestAttributes


class Level(str, Enum):
    """Audit level; ordered ``None < Metadata < Request < RequestResponse``.

    Comparisons also accept plain strings; an unknown string ranks like ``None``, as in the
    apiserver's ``helpers.go``.
    """

    NONE = "None"
    METADATA = "Metadata"
    REQUEST = "Request"
    REQUEST_RESPONSE = "RequestResponse"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """0 for None ... 3 for RequestResponse."""
        return LEVEL_RANK[self.value]

    @staticmethod
    def rank_of(value: object) -> int:
        """Rank of a Level or level string; unknown strings rank 0, like ``None``."""
        return LEVEL_RANK.get(str(value.value if isinstance(value, Level) else value), 0)

    def __lt__(self, other: object) -> bool:
        return self.rank < Level.rank_of(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= Level.rank_of(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > Level.rank_of(other)

    def __ge__(self, other: object) -> bool:
        return self.rank >= Level.rank_of(other)


#: Level names from least to most logged (the enum's order), and each one's rank.
LEVEL_NAMES: tuple[str, ...] = tuple(level.value for level in Level)
LEVEL_RANK: Mapping[str, int] = {name: rank for rank, name in enumerate(LEVEL_NAMES)}


class Stage(str, Enum):
    """Audit stage, in the apiserver's spelling, declared in the order a request passes them."""

    REQUEST_RECEIVED = "RequestReceived"
    RESPONSE_STARTED = "ResponseStarted"
    RESPONSE_COMPLETE = "ResponseComplete"
    PANIC = "Panic"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """0 for RequestReceived ... 3 for Panic: the order a request passes the stages."""
        return STAGE_RANK[self.value]


#: Stage names in the order a request passes them (the enum's order), and each one's rank.
STAGE_NAMES: tuple[str, ...] = tuple(stage.value for stage in Stage)
STAGE_RANK: Mapping[str, int] = {name: rank for rank, name in enumerate(STAGE_NAMES)}


#: Names people write for stages that do not exist, and the stage they mean.
_STAGE_MISNOMERS = {"RequestStarted": "RequestReceived", "RequestComplete": "ResponseComplete",
                    "RequestCompleted": "ResponseComplete", "ResponseCompleted": "ResponseComplete"}


def parse_level(value: object, where: str = "level") -> Level:
    """A level a user gave (``"Metadata"`` or ``Level.METADATA``), spelled exactly.

    Raises:
        ValueError: ``value`` is no level; the message lists the levels and the likely one.
    """
    if isinstance(value, Level):
        return value
    if isinstance(value, str) and value in LEVEL_RANK:
        return Level(value)
    raise ValueError(_invalid(where, value, list(LEVEL_RANK), None))


def parse_stage(value: object, where: str = "stage") -> Stage:
    """A stage a user gave (``"ResponseComplete"`` or ``Stage.RESPONSE_COMPLETE``), spelled exactly.

    Raises:
        ValueError: ``value`` is no stage; the message lists the stages and the likely one
            (``RequestComplete`` -> ``ResponseComplete``,
            ``RequestStarted`` -> ``RequestReceived``).
    """
    if isinstance(value, Stage):
        return value
    names = list(STAGE_NAMES)
    if isinstance(value, str) and value in names:
        return Stage(value)
    guess = _STAGE_MISNOMERS.get(value) if isinstance(value, str) else None
    raise ValueError(_invalid(where, value, names, guess))


def _invalid(where: str, value: object, names: list[str], guess: str | None) -> str:
    guess = guess or closest(str(value), names)
    hint = f"; did you mean {guess!r}?" if guess and guess != value else ""
    return f"{where}: invalid choice: {value!r} (choose from {', '.join(names)}{hint})"


@dataclass(frozen=True, slots=True)
class IgnoredDocument:
    """A YAML document after the first one in a policy file: kube-apiserver never reads it.

    ``index`` counts documents from 1 (the first ignored one is 2); ``rules`` and ``levels``
    describe what it would have done if it were a policy; ``error`` is set when it is not even
    valid YAML (which kube-apiserver does not notice either).
    """

    index: int
    line: int | None
    kind: str | None = None
    rules: int = 0
    levels: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class GroupResources:
    """One ``resources`` entry: an API group ("" = core) and resources/names within it."""

    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def describe(self) -> str:
        """Short text such as ``pods/log`` or ``deployments (apps)`` for summaries."""
        if not self.resources:
            what = "all resources in the core group" if not self.group else f"group {self.group}"
            return "all resources in any group" if self.group == "*" else what
        text = ",".join(self.resources)
        if self.group:
            text += f" ({self.group})"
        if self.resource_names:
            text += f" named {','.join(self.resource_names)}"
        return text


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule; empty selector lists mean "match all" (see ``summary``)."""

    level: Level
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[Stage] = frozenset()
    omit_managed_fields: bool | None = None
    line: int | None = None

    @property
    def is_resource_only(self) -> bool:
        """``resources`` or ``namespaces`` restrict the rule to resource requests."""
        return bool(self.resources or self.namespaces)

    @property
    def is_non_resource_only(self) -> bool:
        """``nonResourceURLs`` (without resources/namespaces) restricts it to other paths."""
        return bool(self.non_resource_urls) and not self.is_resource_only

    @property
    def is_catch_all(self) -> bool:
        """No selector at all: the rule matches every request, authenticated or not."""
        return not (
            self.users
            or self.user_groups
            or self.verbs
            or self.resources
            or self.namespaces
            or self.non_resource_urls
        )

    def summary(self) -> str:
        """One line for humans, e.g. ``level Metadata for get,list secrets in any namespace``."""
        verbs = ",".join(self.verbs) if self.verbs else "every verb on"
        if self.is_resource_only:
            what = "; ".join(gr.describe() for gr in self.resources) or "all resources"
            if not self.namespaces:
                where = " in any namespace"
            elif self.namespaces == ("",):
                where = " (cluster-scoped only)"
            else:
                names = ",".join(ns if ns else '""' for ns in self.namespaces)
                where = f" in namespace{'s' if len(self.namespaces) > 1 else ''} {names}"
            target = what + where
        elif self.non_resource_urls:
            target = "non-resource URLs " + ",".join(self.non_resource_urls)
        else:
            target = "any request"
        if self.users and self.user_groups:
            who = f"by users {','.join(self.users)} in groups {','.join(self.user_groups)}"
        elif self.users:
            who = f"by user{'s' if len(self.users) > 1 else ''} {','.join(self.users)}"
        elif self.user_groups:
            who = f"by group{'s' if len(self.user_groups) > 1 else ''} {','.join(self.user_groups)}"
        else:
            who = "by anyone"
        return f"level {self.level.value} for {verbs} {target} {who}"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decides for one request: level, omitted stages and the deciding rule."""

    level: Level
    omit_stages: frozenset[Stage] = frozenset()
    omit_managed_fields: bool = False
    rule_index: int | None = None


@dataclass(frozen=True, eq=False)
class Policy:
    """A loaded, validated audit policy. Build it with ``load``, ``from_yaml`` or ``from_dict``.

    Construction always goes through the loader so that every instance is one kube-apiserver
    would accept for ``target_version``.
    """

    rules: tuple[PolicyRule, ...]
    omit_stages: frozenset[Stage] = frozenset()
    omit_managed_fields: bool = False
    source: str | None = None
    text: str = ""
    warnings: list[Problem] = field(default_factory=list)
    api_version: str = "audit.k8s.io/v1"
    target_version: Version = (1, 37)
    #: Source line per field path (``rules[0].verbs`` -> 7); used by lints and problems.
    positions: Mapping[str, int] = field(default_factory=dict, repr=False)
    #: Field paths given explicitly as ``[]`` or null ("match all", maybe by accident).
    empty_fields: frozenset[str] = field(default_factory=frozenset, repr=False)
    metadata: Mapping[str, Any] | None = field(default=None, repr=False)
    #: Documents after the first in the source text, which kube-apiserver ignores.
    ignored_documents: tuple[IgnoredDocument, ...] = field(default=(), repr=False)
    _compiled: CompiledPolicy | None = field(default=None, init=False, repr=False)

    # ----------------------------------------------------------------- constructors
    @classmethod
    def load(
        cls, path: str | Path, *, strict: bool = True, target_version: VersionLike = None
    ) -> Policy:
        """Read and load a policy file (YAML or JSON); problems name the file path.

        Raises:
            PolicyError: the file cannot be read, or has problems (all of them are listed).
        """
        from pytest_kaudit.policy.load import load_file

        return load_file(path, strict=strict, target_version=target_version)

    @classmethod
    def from_yaml(
        cls,
        text: str,
        *,
        source: str | None = None,
        strict: bool = True,
        target_version: VersionLike = None,
    ) -> Policy:
        """Load policy text (YAML 1.1 or JSON; only the first document counts, as in Go).

        Raises:
            PolicyError: with every problem found, in the apiserver's order.
        """
        from pytest_kaudit.policy.load import load_text

        return load_text(text, source=source, strict=strict, target_version=target_version)

    @classmethod
    def from_dict(
        cls,
        obj: Mapping[str, Any],
        *,
        source: str | None = None,
        strict: bool = True,
        target_version: VersionLike = None,
    ) -> Policy:
        """Load an already-parsed document; ``text`` becomes its YAML dump.

        Raises:
            PolicyError: with every problem found, in the apiserver's order.
        """
        from pytest_kaudit.policy.load import load_object

        return load_object(obj, source=source, strict=strict, target_version=target_version)

    # ----------------------------------------------------------------- queries
    def rule_line(self, index: int) -> int | None:
        """1-based source line of ``rules[index]`` (None when unknown)."""
        return self.rules[index].line

    def to_dict(self) -> dict[str, Any]:
        """The document as kube-apiserver sees it: unknown fields dropped, apiserver key names."""
        doc: dict[str, Any] = {"apiVersion": self.api_version, "kind": "Policy"}
        if self.metadata:
            doc["metadata"] = dict(self.metadata)
        doc["rules"] = [_rule_to_dict(r) for r in self.rules]
        if self.omit_stages:
            doc["omitStages"] = _sorted_stages(self.omit_stages)
        if self.omit_managed_fields:
            doc["omitManagedFields"] = True
        return doc

    @property
    def compiled(self) -> CompiledPolicy:
        """The match structures, built once on first use."""
        compiled = self._compiled
        if compiled is None:
            from pytest_kaudit.policy.evaluate import CompiledPolicy

            compiled = CompiledPolicy(self)
            object.__setattr__(self, "_compiled", compiled)
        return compiled

    def evaluate(
        self,
        *,
        user: str | None = None,
        groups: tuple[str, ...] | list[str] = (),
        verb: str = "",
        namespace: str = "",
        resource: str = "",
        subresource: str = "",
        name: str = "",
        api_group: str = "",
        path: str | None = None,
        authenticated: bool = True,
    ) -> Decision:
        """Decide level and stages for one request, exactly like the apiserver's checker.

        A non-empty ``resource`` makes it a resource request; otherwise ``path`` makes it a
        non-resource request (if neither is given, it is a resource request only when
        ``namespace``, ``name``, ``subresource`` or ``api_group`` is). ``authenticated=False``
        models a 401: the user is nil, so rules with ``users``/``userGroups`` never match;
        ``user=None`` with ``authenticated=True`` is an authenticated user named "".
        """
        # The values go straight to the matcher: building a RequestAttributes per call would
        # cost several times the decision itself.
        if resource:
            is_resource = True
        elif path is not None:
            is_resource = False
        else:
            is_resource = bool(namespace or name or subresource or api_group)
        if authenticated:
            who: str | None = user if user is not None else ""
            groups = tuple(groups)
        else:
            who, groups = None, ()
        return (self._compiled or self.compiled).decide_fields(
            is_resource, who, groups, verb, namespace, resource, subresource, name, api_group,
            path or "",
        )

    def evaluate_attributes(self, attrs: RequestAttributes) -> Decision:
        """Decide for prepared attributes (``user=None`` means unauthenticated)."""
        return self.compiled.decide(attrs)

    def decision_of_rule(self, index: int | None) -> Decision:
        """The decision a request gets when rule ``index`` is the first to match it
        (``None``: no rule matches): the rule's level, its and the policy's omitted stages."""
        return self.compiled.decision_of_rule(index)

    def lint(
        self,
        *,
        flags: Mapping[str, str] | list[str] | tuple[str, ...] | None = None,
        target_version: VersionLike = None,
    ) -> list[Problem]:
        """Run every registered lint (and the flag checks when ``flags`` is given)."""
        from pytest_kaudit.policy.lint import lint_policy

        return lint_policy(self, flags=flags, target_version=target_version)


def _sorted_stages(stages: frozenset[Stage]) -> list[str]:
    order = list(Stage)
    return [s.value for s in sorted(stages, key=order.index)]


def _rule_to_dict(rule: PolicyRule) -> dict[str, Any]:
    out: dict[str, Any] = {"level": rule.level.value}
    if rule.users:
        out["users"] = list(rule.users)
    if rule.user_groups:
        out["userGroups"] = list(rule.user_groups)
    if rule.verbs:
        out["verbs"] = list(rule.verbs)
    if rule.resources:
        entries = []
        for gr in rule.resources:
            entry: dict[str, Any] = {}
            if gr.group:
                entry["group"] = gr.group
            if gr.resources:
                entry["resources"] = list(gr.resources)
            if gr.resource_names:
                entry["resourceNames"] = list(gr.resource_names)
            entries.append(entry)
        out["resources"] = entries
    if rule.namespaces:
        out["namespaces"] = list(rule.namespaces)
    if rule.non_resource_urls:
        out["nonResourceURLs"] = list(rule.non_resource_urls)
    if rule.omit_stages:
        out["omitStages"] = _sorted_stages(rule.omit_stages)
    if rule.omit_managed_fields is not None:
        out["omitManagedFields"] = rule.omit_managed_fields
    return out

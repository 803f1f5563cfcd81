"""The audit checker (kubernetes ``apiserver/pkg/audit/policy/checker.go``),
compiled once per policy into set lookups.

Each rule becomes frozensets (users, groups, verbs, namespaces) plus resource and path
predicates. Per request "shape" (api group + resource + subresource, or non-resource path) we
keep the tuple of rules that can match it, with the resource-name constraint folded in, so a
decision is a short loop of set membership tests and no rule dictionaries are walked.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from pytest_kaudit.policy.model import Decision, GroupResources, Level, PolicyRule
from pytest_kaudit.policy.versions import has_group_wildcard

if TYPE_CHECKING:
    from pytest_kaudit.policy.model import Policy
    from pytest_kaudit.policy.request import RequestAttributes

#: (users, user_groups, verbs, namespaces, names, decision); None = no restriction.
_Candidate = tuple[
    "frozenset[str] | None",
    "frozenset[str] | None",
    "frozenset[str] | None",
    "frozenset[str] | None",
    "frozenset[str] | None",
    Decision,
]
_CACHE_LIMIT = 20_000


def resource_pattern_matches(pattern: str, resource: str, subresource: str) -> bool:
    """Whether one ``resources`` string matches a resource/subresource (``ruleMatchesResource``)."""
    combined = f"{resource}/{subresource}" if subresource else resource
    if pattern == combined or pattern == "*":
        return True
    if subresource and pattern.startswith("*/") and pattern[2:] == subresource:
        return True
    return pattern.endswith("/*") and pattern[:-2] == resource


def path_pattern_matches(pattern: str, path: str) -> bool:
    """Whether one ``nonResourceURLs`` string matches a path: ``*``, exact, or trailing-``*``."""
    if pattern == "*" or pattern == path:
        return True
    return pattern.endswith("*") and path.startswith(pattern.rstrip("*"))


def names_constraint(
    entries: tuple[GroupResources, ...],
    api_group: str,
    resource: str,
    subresource: str,
    *,
    group_wildcard: bool,
) -> tuple[bool, frozenset[str] | None]:
    """(can match, allowed names or None for any) of a rule's resources for one request shape."""
    names: set[str] = set()
    matched = False
    for entry in entries:
        if not (entry.group == api_group or (group_wildcard and entry.group == "*")):
            continue
        if not entry.resources:
            return True, None
        for pattern in entry.resources:
            if resource_pattern_matches(pattern, resource, subresource):
                if not entry.resource_names:
                    return True, None
                matched = True
                names.update(entry.resource_names)
    return matched, (frozenset(names) if matched else None)


class CompiledPolicy:
    """Match structures for one policy; ``decide`` is the hot path."""

    __slots__ = (
        "_rules",
        "_decisions",
        "_default",
        "_group_wildcard",
        "_resource_cache",
        "_path_cache",
    )

    def __init__(self, policy: Policy) -> None:
        self._group_wildcard = has_group_wildcard(policy.target_version)
        self._rules = policy.rules
        self._decisions = tuple(
            Decision(
                level=rule.level,
                omit_stages=frozenset(rule.omit_stages | policy.omit_stages),
                omit_managed_fields=(
                    rule.omit_managed_fields
                    if rule.omit_managed_fields is not None
                    else policy.omit_managed_fields
                ),
                rule_index=i,
            )
            for i, rule in enumerate(policy.rules)
        )
        self._default = Decision(
            level=Level.NONE,
            omit_stages=frozenset(policy.omit_stages),
            omit_managed_fields=policy.omit_managed_fields,
            rule_index=None,
        )
        self._resource_cache: dict[tuple[str, str, str], tuple[_Candidate, ...]] = {}
        self._path_cache: dict[str, tuple[_Candidate, ...]] = {}

    def decision_of_rule(self, index: int | None) -> Decision:
        """The decision of rule ``index`` (``None``: the policy's default, level None)."""
        return self._default if index is None else self._decisions[index]

    @staticmethod
    def _selectors(rule: PolicyRule) -> tuple[frozenset[str] | None, ...]:
        return (
            frozenset(rule.users) if rule.users else None,
            frozenset(rule.user_groups) if rule.user_groups else None,
            frozenset(rule.verbs) if rule.verbs else None,
        )

    def _resource_candidates(self, key: tuple[str, str, str]) -> tuple[_Candidate, ...]:
        api_group, resource, subresource = key
        out: list[_Candidate] = []
        for rule, decision in zip(self._rules, self._decisions, strict=True):
            users, groups, verbs = self._selectors(rule)
            if rule.namespaces or rule.resources:
                names: frozenset[str] | None = None
                if rule.resources:
                    ok, names = names_constraint(
                        rule.resources, api_group, resource, subresource,
                        group_wildcard=self._group_wildcard,
                    )
                    if not ok:
                        continue
                namespaces = frozenset(rule.namespaces) if rule.namespaces else None
                out.append((users, groups, verbs, namespaces, names, decision))
            elif rule.non_resource_urls:
                continue
            else:
                out.append((users, groups, verbs, None, None, decision))
        if len(self._resource_cache) >= _CACHE_LIMIT:
            self._resource_cache.clear()
        result = self._resource_cache[key] = tuple(out)
        return result

    def _path_candidates(self, path: str) -> tuple[_Candidate, ...]:
        out: list[_Candidate] = []
        for rule, decision in zip(self._rules, self._decisions, strict=True):
            if rule.namespaces or rule.resources:
                continue
            if rule.non_resource_urls and not any(
                path_pattern_matches(p, path) for p in rule.non_resource_urls
            ):
                continue
            users, groups, verbs = self._selectors(rule)
            out.append((users, groups, verbs, None, None, decision))
        if len(self._path_cache) >= _CACHE_LIMIT:
            self._path_cache.clear()
        result = self._path_cache[path] = tuple(out)
        return result

    def decide(self, attrs: RequestAttributes) -> Decision:
        """First matching rule's decision, or level None with the policy's omitStages."""
        return self.decide_fields(
            attrs.is_resource_request, attrs.user, attrs.groups, attrs.verb, attrs.namespace,
            attrs.resource, attrs.subresource, attrs.name, attrs.api_group, attrs.path,
        )

    def decide_fields(
        self,
        is_resource_request: bool,  # noqa: FBT001 - positional: this is the hot path
        user: str | None,
        groups: Collection[str],
        verb: str,
        namespace: str,
        resource: str,
        subresource: str,
        name: str,
        api_group: str,
        path: str,
    ) -> Decision:
        """``decide`` on the attribute values themselves, so a caller holding plain values
        (``Policy.evaluate``) need not build a ``RequestAttributes`` per request."""
        if is_resource_request:
            key = (api_group, resource, subresource)
            candidates = self._resource_cache.get(key)
            if candidates is None:
                candidates = self._resource_candidates(key)
        else:
            candidates = self._path_cache.get(path)
            if candidates is None:
                candidates = self._path_candidates(path)
            namespace = name = ""
        for users, user_groups, verbs, namespaces, names, decision in candidates:
            if users is not None and (user is None or user not in users):
                continue
            if user_groups is not None and (user is None or user_groups.isdisjoint(groups)):
                continue
            if verbs is not None and verb not in verbs:
                continue
            if namespaces is not None and namespace not in namespaces:
                continue
            if names is not None and name not in names:
                continue
            return decision
        return self._default

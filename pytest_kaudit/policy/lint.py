"""Policy lints: one registry entry per lint (id, severity, check, fix), all warnings.

A check receives the policy and yields ``Finding``s; ``lint_policy`` turns them into ``Problem``s
with the policy's file and the finding's line. Adding a lint is adding one ``Lint`` to ``LINTS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_kaudit._suggest import closest
from pytest_kaudit.policy import resources
from pytest_kaudit.policy.evaluate import (
    names_constraint,
    path_pattern_matches,
    resource_pattern_matches,
)
from pytest_kaudit.policy.flags import validate_flags
from pytest_kaudit.policy.model import GroupResources, Level, Policy, PolicyRule, Stage
from pytest_kaudit.policy.problems import Problem, Severity
from pytest_kaudit.policy.request import NON_RESOURCE_VERBS, RESOURCE_VERBS, RequestAttributes
from pytest_kaudit.policy.sensitive import SENSITIVE_RESOURCES
from pytest_kaudit.policy.versions import (
    Version,
    VersionLike,
    format_version,
    has_group_wildcard,
    parse_version,
)


@dataclass(frozen=True)
class Finding:
    """What a check found; ``field`` is a path whose line is looked up in the policy."""

    message: str
    field: str
    hint: str | None = None
    fix: str | None = None
    line: int | None = None  # when the finding is not about a field of the first document


@dataclass(frozen=True)
class Lint:
    """A registered lint: stable id, severity, what it checks and its default one-line fix."""

    id: str
    severity: Severity
    description: str
    fix: str
    check: Callable[[Policy], Iterator[Finding]]


# ------------------------------------------------------------------------------- shadowing
def _subset(earlier: Sequence[str], later: Sequence[str]) -> bool:
    """An earlier selector admits everything a later one does (empty = everything)."""
    if not earlier:
        return True
    return bool(later) and set(later) <= set(earlier)


def _resource_pattern_covers(a: str, b: str) -> bool:
    """Pattern ``a`` matches every (resource, subresource) that pattern ``b`` matches."""
    if a == "*" or a == b:
        return True
    if b == "*" or b.endswith("/*") or b.startswith("*/"):
        return False
    resource, slash, sub = b.partition("/")
    if slash and (not sub or "/" in sub):
        return True  # b can never equal "resource/subresource": it matches nothing
    return resource_pattern_matches(a, resource, sub)


def _entry_covers(
    a: GroupResources, b: GroupResources, pattern: str | None, *, gw: bool
) -> bool:
    if not (a.group == b.group or (gw and a.group == "*")):
        return False
    if not a.resources:
        return True
    if pattern is None:  # b is a whole group
        return "*" in a.resources and not a.resource_names
    if a.resource_names and not _subset(a.resource_names, b.resource_names):
        return False
    return any(_resource_pattern_covers(p, pattern) for p in a.resources)


def _url_covers(a: str, b: str) -> bool:
    if a == "*" or a == b:
        return True
    if b == "*":
        return False
    if b.endswith("*"):
        return a.endswith("*") and b.rstrip("*").startswith(a.rstrip("*"))
    return path_pattern_matches(a, b)


def rule_covers(a: PolicyRule, b: PolicyRule, *, group_wildcard: bool) -> bool:
    """True only when rule ``a`` provably matches every request rule ``b`` matches.

    Sound, not complete: coverage is checked entry by entry (never by a union of several of
    ``a``'s entries), so some real shadowing goes unreported, but nothing is reported falsely.
    """
    if not (
        _subset(a.users, b.users)
        and _subset(a.user_groups, b.user_groups)
        and _subset(a.verbs, b.verbs)
    ):
        return False
    if a.is_resource_only:
        if not b.is_resource_only or not _subset(a.namespaces, b.namespaces):
            return False
        if not a.resources:
            return True
        if not b.resources:
            whole = GroupResources(group="*")
            return group_wildcard and any(
                _entry_covers(e, whole, None, gw=group_wildcard) and e.group == "*"
                for e in a.resources
            )
        for entry in b.resources:
            patterns: Sequence[str | None] = entry.resources or (None,)
            for pattern in patterns:
                if not any(
                    _entry_covers(e, entry, pattern, gw=group_wildcard) for e in a.resources
                ):
                    return False
        return True
    if a.non_resource_urls:
        if b.is_resource_only or not b.non_resource_urls:
            return False
        return all(any(_url_covers(p, q) for p in a.non_resource_urls) for q in b.non_resource_urls)
    return True


#: Above this many rules the shadowing analysis is skipped (with a note), and it stops after
#: this many rule comparisons: the index keeps real policies far below both.
SHADOW_MAX_RULES = 20_000
SHADOW_MAX_COMPARISONS = 1_000_000

_Key = tuple[str, ...]


class _ShadowIndex:
    """Earlier rules by their discriminating fields, so each rule is compared only with the
    earlier rules that could cover it (a superset of them; ``rule_covers`` decides).

    Per field a rule is filed under every value it lists, or under ``""`` (its "any" bucket)
    when it lists none: an earlier rule can cover a later one only if it lists the later
    rule's first value, or lists nothing. The request shape (resource entry or URL) is filed
    the same way, by group and resource, or by URL with trailing-``*`` prefixes. A bucket is
    a bit set of rule indices (a Python int), so the candidates are the AND, over the fields,
    of the OR of the buckets the later rule allows: a few word-wide operations per rule.
    """

    def __init__(self, *, group_wildcard: bool) -> None:
        self.gw = group_wildcard
        self.buckets: dict[_Key, int] = {}

    def _file(self, key: _Key, index: int) -> None:
        self.buckets[key] = self.buckets.get(key, 0) | (1 << index)

    def add(self, index: int, rule: PolicyRule) -> None:
        """File ``rule`` (the rule at ``index``) under each of its keys."""
        for name, values in _list_fields(rule):
            for value in values or ("",):
                self._file(("f", name, "=" + value if values else ""), index)
        if not rule.is_resource_only:
            if not rule.non_resource_urls:
                self._file(("any",), index)
            for url in rule.non_resource_urls:
                if url.endswith("*"):
                    self._file(("prefix", url.rstrip("*")), index)
                else:
                    self._file(("url", url), index)
            return
        if not rule.resources:
            self._file(("all-resources",), index)
        for entry in rule.resources:
            names = entry.resource_names or ("",)
            for pattern in entry.resources or ("*",):
                base = "*" if pattern == "*" or pattern.startswith("*/") else pattern.split("/")[0]
                for name in names:
                    self._file(("res", entry.group, base, name), index)
            self._file(("group", entry.group), index)

    def candidates(self, rule: PolicyRule) -> int:
        """The bit set of earlier rules that could cover ``rule`` (a superset of them)."""
        found = self._union(self._shape_keys(rule))
        for name, values in _list_fields(rule):
            if not found:
                break
            keys = [("f", name, "")]
            if values:
                keys.append(("f", name, "=" + values[0]))
            found &= self._union(keys)
        return found

    def _union(self, keys: Sequence[_Key]) -> int:
        bits = 0
        get = self.buckets.get
        for key in keys:
            bits |= get(key, 0)
        return bits

    def _shape_keys(self, rule: PolicyRule) -> list[_Key]:
        keys: list[_Key] = [("any",)]
        if not rule.is_resource_only:
            if rule.non_resource_urls:
                url = rule.non_resource_urls[0]
                stem = url.rstrip("*")
                keys.append(("url", url))
                keys += [("prefix", stem[:n]) for n in range(len(stem) + 1)]
            return keys
        keys.append(("all-resources",))
        groups = ("*",) if self.gw else ()
        if not rule.resources:
            return keys + [("res", g, "*", "") for g in groups]
        pick = _index_pattern(rule.resources)
        if pick is None:  # only patterns that match nothing: any entry of the group covers
            entry = rule.resources[0]
            return keys + [("group", g) for g in (entry.group, *groups)]
        entry, pattern = pick
        wanted = ["", *entry.resource_names[:1]]
        bases = ["*"] if pattern is None or pattern == "*" or pattern.startswith("*/") else [
            pattern.split("/")[0], "*"]
        for group in (entry.group, *groups):
            for base in bases:
                keys += [("res", group, base, name) for name in wanted]
        return keys


def _list_fields(rule: PolicyRule) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("users", rule.users), ("userGroups", rule.user_groups), ("verbs", rule.verbs),
            ("namespaces", rule.namespaces))


def _index_pattern(entries: tuple[GroupResources, ...]) -> tuple[GroupResources, str | None] | None:
    """An (entry, pattern) of a later rule that some entry of a covering rule must cover."""
    for entry in entries:
        if not entry.resources:
            return entry, None
        for pattern in entry.resources:
            resource, slash, sub = pattern.partition("/")
            if not (slash and (not sub or "/" in sub)) and pattern != "*/*":
                return entry, pattern
    return None


_Selectors = tuple[frozenset[str], ...]


def _selector_sets(rule: PolicyRule) -> _Selectors:
    return tuple(frozenset(values) for _, values in _list_fields(rule))


def _selectors_cover(earlier: _Selectors, later: _Selectors) -> bool:
    """``_subset`` on users, userGroups, verbs and namespaces, as a quick pre-check.

    Namespaces only count for resource rules, but an earlier rule that lists namespaces is
    one, so the check never rejects a rule ``rule_covers`` would accept.
    """
    for mine, theirs in zip(earlier, later, strict=True):
        if mine and not (theirs and theirs <= mine):
            return False
    return True


def _check_shadowed(policy: Policy) -> Iterator[Finding]:
    rules = policy.rules
    if len(rules) > SHADOW_MAX_RULES:
        yield Finding(
            f"shadowing analysis skipped: the policy has {len(rules):,} rules, more than the "
            f"{SHADOW_MAX_RULES:,} it is run on",
            "rules",
            fix="split the policy, or lint a smaller copy",
        )
        return
    gw = has_group_wildcard(policy.target_version)
    index = _ShadowIndex(group_wildcard=gw)
    budget = SHADOW_MAX_COMPARISONS
    selectors = [_selector_sets(rule) for rule in rules]
    for j, later in enumerate(rules):
        candidates = index.candidates(later)
        wanted = selectors[j]
        while candidates:
            lowest = candidates & -candidates
            candidates ^= lowest
            i = lowest.bit_length() - 1
            budget -= 1
            if budget < 0:
                yield Finding(
                    f"shadowing analysis stopped at rules[{j}] after "
                    f"{SHADOW_MAX_COMPARISONS:,} rule comparisons; later rules were not checked",
                    f"rules[{j}]",
                    fix="split the policy, or lint a smaller copy",
                )
                return
            if not _selectors_cover(selectors[i], wanted):
                continue
            earlier = rules[i]
            if rule_covers(earlier, later, group_wildcard=gw):
                where = f" at line {earlier.line}" if earlier.line else ""
                yield Finding(
                    f"rule {j} is unreachable: rules[{i}]{where} ({earlier.summary()}) already "
                    "matches every request it matches",
                    f"rules[{j}]",
                    fix=f"delete rules[{j}], or move it above rules[{i}]",
                )
                break
        index.add(j, later)


# ------------------------------------------------------------------------------- catch-all
def _check_no_catch_all(policy: Policy) -> Iterator[Finding]:
    if policy.rules and not any(rule.is_catch_all for rule in policy.rules):
        last = len(policy.rules) - 1
        yield Finding(
            "no catch-all rule at the end: requests that no rule matches are not audited "
            "(level None)",
            f"rules[{last}]",
        )


def _check_catch_all_not_last(policy: Policy) -> Iterator[Finding]:
    for i, rule in enumerate(policy.rules[:-1]):
        if rule.is_catch_all:
            rest = len(policy.rules) - 1 - i
            yield Finding(
                f"rules[{i}] has no selectors, so it matches every request and the {rest} "
                f"rule{'s' if rest > 1 else ''} after it never apply",
                f"rules[{i}]",
            )


_SELECTOR_KEYS = ("users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs")


def _check_empty_selector(policy: Policy) -> Iterator[Finding]:
    for path in sorted(policy.empty_fields, key=lambda p: (policy.positions.get(p, 0), p)):
        key = path.rsplit(".", 1)[-1]
        if not path.startswith("rules[") or key not in (*_SELECTOR_KEYS, "resourceNames"):
            continue
        if ".resources[" in path:
            meaning = "every resource of its group" if key == "resources" else "every name"
        else:
            meaning = {
                "users": "every user",
                "userGroups": "every user group",
                "verbs": "every verb",
                "resources": "every resource",
                "namespaces": "every namespace",
                "nonResourceURLs": "every request",
            }[key]
        yield Finding(
            f"{key} is given but empty, which kube-apiserver reads as 'match {meaning}'",
            path,
            fix=f"list the {key} you mean, or delete the key",
        )


# ------------------------------------------------------------------------------- sensitive
SENSITIVE_TARGETS = tuple((*r.key, r.label) for r in SENSITIVE_RESOURCES)


def _secret_leaks(policy: Policy) -> dict[int, list[str]]:
    """Rules (by index) that decide Request or RequestResponse for a sensitive resource."""
    gw = has_group_wildcard(policy.target_version)
    leaks: dict[int, list[str]] = {}
    for group, resource, sub, label in SENSITIVE_TARGETS:
        for i, rule in enumerate(policy.rules):
            if rule.is_non_resource_only:
                continue
            names: frozenset[str] | None = None
            if rule.resources:
                ok, names = names_constraint(rule.resources, group, resource, sub,
                                             group_wildcard=gw)
                if not ok:
                    continue
            if rule.level >= Level.REQUEST:
                leaks.setdefault(i, []).append(label)
            if not (rule.users or rule.user_groups or rule.verbs or rule.namespaces or names):
                break  # every later rule is unreachable for this resource
    return leaks


def _check_secret_bodies(policy: Policy) -> Iterator[Finding]:
    for i, labels in sorted(_secret_leaks(policy).items()):
        rule = policy.rules[i]
        yield Finding(
            f"{', '.join(labels)} logged at level {rule.level.value}: request/response bodies "
            "carry secret data (Secret values, tokens) into the audit log",
            f"rules[{i}].level",
            fix=(
                f"add a rule above rules[{i}]: `- level: Metadata` with resources "
                '[{group: "", resources: [secrets, configmaps, serviceaccounts/token]}, '
                "{group: authentication.k8s.io, resources: [tokenreviews]}]"
            ),
        )


def _check_request_received(policy: Policy) -> Iterator[Finding]:
    if Stage.REQUEST_RECEIVED in policy.omit_stages:
        return
    audited = [r for r in policy.rules if r.level != Level.NONE]
    if audited and all(Stage.REQUEST_RECEIVED in r.omit_stages for r in audited):
        return
    field = "omitStages" if "omitStages" in policy.positions else ""
    yield Finding(
        "RequestReceived is not omitted: every audited request is logged twice "
        "(RequestReceived and ResponseComplete), doubling the log volume",
        field,
    )


_WILDCARD_FIELDS = (("users", "users"), ("user_groups", "userGroups"), ("verbs", "verbs"),
                    ("namespaces", "namespaces"))


#: Well-known resources that live only in a named API group (never in core).
NAMED_GROUP_RESOURCES: Mapping[str, str] = {
    **dict.fromkeys(
        ("deployments", "replicasets", "daemonsets", "statefulsets", "controllerrevisions"),
        "apps",
    ),
    **dict.fromkeys(("jobs", "cronjobs"), "batch"),
    **dict.fromkeys(("ingresses", "ingressclasses", "networkpolicies"), "networking.k8s.io"),
    **dict.fromkeys(("roles", "rolebindings", "clusterroles", "clusterrolebindings"),
                    "rbac.authorization.k8s.io"),
    **dict.fromkeys(("tokenreviews",), "authentication.k8s.io"),
    **dict.fromkeys(("subjectaccessreviews", "selfsubjectaccessreviews",
                     "localsubjectaccessreviews", "selfsubjectrulesreviews"),
                    "authorization.k8s.io"),
    "certificatesigningrequests": "certificates.k8s.io",
    "leases": "coordination.k8s.io",
    "horizontalpodautoscalers": "autoscaling",
    "poddisruptionbudgets": "policy",
    "podsecuritypolicies": "policy",
    **dict.fromkeys(("storageclasses", "volumeattachments", "csidrivers", "csinodes",
                     "csistoragecapacities"), "storage.k8s.io"),
    "customresourcedefinitions": "apiextensions.k8s.io",
    **dict.fromkeys(("mutatingwebhookconfigurations", "validatingwebhookconfigurations",
                     "validatingadmissionpolicies", "validatingadmissionpolicybindings"),
                    "admissionregistration.k8s.io"),
    "priorityclasses": "scheduling.k8s.io",
    "runtimeclasses": "node.k8s.io",
    "endpointslices": "discovery.k8s.io",
    "apiservices": "apiregistration.k8s.io",
    **dict.fromkeys(("flowschemas", "prioritylevelconfigurations"),
                    "flowcontrol.apiserver.k8s.io"),
}


def _check_missing_group(policy: Policy) -> Iterator[Finding]:
    for i, rule in enumerate(policy.rules):
        for k, entry in enumerate(rule.resources):
            if entry.group:
                continue
            for m, pattern in enumerate(entry.resources):
                base = pattern.split("/", 1)[0]
                group = NAMED_GROUP_RESOURCES.get(base)
                if group is None:
                    continue
                yield Finding(
                    f'"{pattern}" is not in the core group: {base} live in "{group}", and an '
                    'entry without group means the core group (""), so it never matches them',
                    f"rules[{i}].resources[{k}].resources[{m}]",
                    fix=f"set group: {group} on this resources entry",
                )


# ------------------------------------------------------------------------------- never-matching
#: RBAC verbs checked by authorizers on special resources; no request carries them.
AUTHORIZATION_VERBS = ("impersonate", "bind", "escalate", "use", "approve", "sign", "attest")
_METHOD_TO_VERB = {"post": "create", "put": "update", "head": "get"}
_VERB_TO_METHOD = {"create": "post", "update": "put", "list": "get", "watch": "get",
                   "deletecollection": "delete", "proxy": "get"}


def _check_unknown_verb(policy: Policy) -> Iterator[Finding]:
    valid: tuple[str, ...]
    for i, rule in enumerate(policy.rules):
        if rule.is_resource_only:
            valid, kind = RESOURCE_VERBS, "resource requests"
        elif rule.non_resource_urls:
            valid, kind = NON_RESOURCE_VERBS, "non-resource requests"
        else:
            valid, kind = tuple(dict.fromkeys(RESOURCE_VERBS + NON_RESOURCE_VERBS)), "requests"
        for j, verb in enumerate(rule.verbs):
            if verb in valid or verb == "*":
                continue
            field = f"rules[{i}].verbs[{j}]"
            lower = verb.lower()
            if lower in valid:
                yield Finding(f'verb "{verb}" never matches: request verbs are lower-case and '
                              "compared exactly", field, hint=f'write "{lower}"',
                              fix=f'replace "{verb}" with "{lower}"')
            elif lower in AUTHORIZATION_VERBS:
                yield Finding(f'verb "{verb}" never matches: it is an RBAC authorization verb, '
                              "which no request carries", field,
                              hint="match the requests it permits instead, by their own verbs "
                              "(get, create, update and so on)", fix=f'remove "{verb}"')
            elif lower in RESOURCE_VERBS + NON_RESOURCE_VERBS:
                other = (_METHOD_TO_VERB if rule.is_resource_only else _VERB_TO_METHOD).get(lower)
                hint = f'write "{other}"' if other else None
                yield Finding(f'verb "{verb}" never matches here: {kind} have the verbs '
                              f"{', '.join(valid)}", field, hint=hint,
                              fix=f'replace "{verb}" with "{other}"' if other else
                              f'remove "{verb}"')
            else:
                guess = closest(verb, valid)
                yield Finding(f'verb "{verb}" never matches: {kind} have the verbs '
                              f"{', '.join(valid)}", field,
                              hint=f'did you mean "{guess}"?' if guess else None,
                              fix=f'replace "{verb}" with "{guess}"' if guess else
                              f'remove "{verb}"')


def _group_label(group: str) -> str:
    return 'the core group ("")' if not group else f"group {group}"


def _judge_resource(group: str, pattern: str, version: Version) -> tuple[str, str | None] | None:
    """Why ``pattern`` in ``group`` never matches on ``version`` (message, hint), or None."""
    where = f"{_group_label(group)} in Kubernetes {format_version(version)}"
    if pattern == "*":
        return None
    resource, slash, sub = pattern.partition("/")
    if pattern == "*/*" or (slash and (not sub or "/" in sub)) or not resource:
        return (f'"{pattern}" never matches: a resources entry is "resource", '
                '"resource/subresource", "*", "resource/*" or "*/subresource"', None)
    if resource == "*":
        subs = resources.subresources_at(group, version)
        if sub in subs:
            return None
        guess = closest(sub, subs)
        return (f'no resource of {where} has a subresource "{sub}", so "{pattern}" never '
                "matches", f'did you mean "*/{guess}"?' if guess else None)
    names = resources.names_at(group, version)
    for name in (resource, pattern) if slash and sub != "*" else (resource,):
        if name in names:
            continue
        why = resources.AUTHORIZATION_ONLY.get((group, name)) or resources.AUTHORIZATION_ONLY.get(
            (group, name.split("/")[0]))
        if why:
            return f'"{name}" never matches: no request has it as its resource; {why}', None
        when = resources.served(group, name)
        if when is not None:
            return f'"{name}" is not served by Kubernetes {format_version(version)} ' \
                   f"({when.describe()}), so it never matches", None
        if name == resource:
            others = [g for g in resources.groups_serving(resource) if g != group]
            if others and not group and resource in NAMED_GROUP_RESOURCES:
                return None  # missing-group says it better
            hint = None
            guess = closest(resource, [n for n in names if "/" not in n])
            if others:
                hint = f"{resource} is in {_group_label(others[0])}"
            elif guess:
                hint = f'did you mean "{guess}"?'
                if guess.lower() == resource.lower():
                    hint = f'resource names are lower-case: did you mean "{guess}"?'
            return f'"{resource}" is not a resource of {where}, so it never matches', hint
        choices = sorted(n for n in names if n.startswith(resource + "/"))
        guess = closest(name, choices)
        listed = ", ".join(c.split("/")[1] for c in choices) or "none"
        return (f'{resource} has no subresource "{sub}" in Kubernetes '
                f"{format_version(version)} (it has: {listed}), so it never matches",
                f'did you mean "{guess}"?' if guess else None)
    return None


def _check_unknown_resource(policy: Policy) -> Iterator[Finding]:
    version = policy.target_version
    for i, rule in enumerate(policy.rules):
        for k, entry in enumerate(rule.resources):
            if not resources.is_builtin_group(entry.group):
                continue  # custom resources and aggregated APIs: any name may exist
            for m, pattern in enumerate(entry.resources):
                verdict = _judge_resource(entry.group, pattern, version)
                if verdict is None:
                    continue
                message, hint = verdict
                yield Finding(message, f"rules[{i}].resources[{k}].resources[{m}]", hint=hint,
                              fix=f'replace "{pattern}" with the resource you mean, or remove it')


def _pattern_hint(key: str, value: str) -> str | None:
    """What to write instead of a wildcard in a field matched exactly."""
    parts = value.split(":")
    if key == "users" and value.startswith("system:serviceaccount:"):
        if len(parts) == 4 and "*" not in parts[2] and parts[2]:
            return f'to match every service account of namespace {parts[2]}, use userGroups: ' \
                   f'["system:serviceaccounts:{parts[2]}"]'
        return 'to match every service account, use userGroups: ["system:serviceaccounts"]'
    if key == "users" and value.startswith("system:node:"):
        return 'to match every node, use userGroups: ["system:nodes"]'
    if key == "userGroups" and value.startswith("system:serviceaccounts:"):
        return 'to match every service account, use "system:serviceaccounts"'
    if key == "resourceNames":
        return "leave resourceNames out to match every name"
    return f"list each of the {key} you mean"


def _check_literal_wildcard(policy: Policy) -> Iterator[Finding]:
    for i, rule in enumerate(policy.rules):
        for attr, key in _WILDCARD_FIELDS:
            values: tuple[str, ...] = getattr(rule, attr)
            if "*" in values:
                j = values.index("*")
                effect = (
                    "so this rule never matches"
                    if len(values) == 1
                    else 'so that entry never matches anything'
                )
                yield Finding(
                    f'"*" is not a wildcard in {key}: it only matches the literal string "*", '
                    f"{effect}",
                    f"rules[{i}].{key}[{j}]",
                    fix=f"remove {key} (an absent or empty list matches all)"
                    if len(values) == 1
                    else f'remove "*" from {key}',
                )
            if key == "verbs":
                continue
            for j, value in enumerate(values):
                if "*" in value and value != "*":
                    yield _pattern_finding(key, value, f"rules[{i}].{key}[{j}]")
        for k, entry in enumerate(rule.resources):
            for j, value in enumerate(entry.resource_names):
                if "*" in value:
                    yield _pattern_finding("resourceNames", value,
                                           f"rules[{i}].resources[{k}].resourceNames[{j}]")


def _pattern_finding(key: str, value: str, field: str) -> Finding:
    return Finding(
        f'"{value}" is not a pattern: kube-apiserver compares {key} exactly, so it only '
        f'matches the literal string "{value}"',
        field,
        hint=_pattern_hint(key, value),
        fix=f'replace "{value}" with exact values',
    )


_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check_invalid_namespace(policy: Policy) -> Iterator[Finding]:
    for i, rule in enumerate(policy.rules):
        for j, namespace in enumerate(rule.namespaces):
            if not namespace or "*" in namespace:
                continue  # "" is cluster-scoped; wildcards are literal-wildcard's
            if len(namespace) <= 63 and _NAMESPACE_RE.match(namespace):
                continue
            hint = None
            if _NAMESPACE_RE.match(namespace.lower().replace("_", "-")):
                hint = f'did you mean "{namespace.lower().replace("_", "-")}"?'
            yield Finding(
                f'"{namespace}" is not a valid namespace name (lower-case letters, digits and '
                "'-', at most 63), so no request is ever in it",
                f"rules[{i}].namespaces[{j}]",
                hint=hint,
            )


def _always_resource(url: str) -> bool:
    """Whether every path ``url`` matches (exactly, or as a ``prefix*``) is a resource path.

    Whether a path is a resource request depends only on its prefix and segment count, so
    if the prefix of a ``prefix*`` pattern already is one, every longer path is one too.
    """
    if url == "*" or "?" in url or "#" in url:
        return False
    try:
        return RequestAttributes.from_http("GET", url.rstrip("*")).is_resource_request
    except ValueError:  # refused before the audit filter (/api/v1/watch): never audited
        return True


def _check_resource_url(policy: Policy) -> Iterator[Finding]:
    for i, rule in enumerate(policy.rules):
        for j, url in enumerate(rule.non_resource_urls):
            if not _always_resource(url):
                continue
            yield Finding(
                f'"{url}" is a resource request path: kube-apiserver audits requests to it as '
                "resource requests, which nonResourceURLs never matches",
                f"rules[{i}].nonResourceURLs[{j}]",
                hint="match it with resources (group and resource name) and namespaces instead",
                fix="move it to a rule with resources",
            )


def _check_ignored_documents(policy: Policy) -> Iterator[Finding]:
    leaks = _secret_leaks(policy)
    leak_note = ""
    if leaks:
        i, labels = next(iter(sorted(leaks.items())))
        leak_note = (f"; meanwhile the first document logs {labels[0]} at "
                     f"{policy.rules[i].level.value} (rules[{i}])")
    for doc in policy.ignored_documents:
        where = f" (line {doc.line})" if doc.line else ""
        if doc.error is not None:
            what = f"is not valid YAML ({doc.error})"
        elif doc.rules:
            levels = f" at {', '.join(doc.levels)}" if doc.levels else ""
            what = (f"holds {doc.rules} rule{'s' if doc.rules != 1 else ''}{levels} that "
                    f"never appl{'y' if doc.rules != 1 else 'ies'}")
        else:
            what = f"holds a {doc.kind} that is never read" if doc.kind else "is never read"
        yield Finding(
            f"document {doc.index}{where} is ignored: kube-apiserver reads only the first YAML "
            f"document of a policy file, and this one {what}{leak_note}",
            "",
            hint="a policy file holds one Policy; '---' starts a document kube-apiserver "
            "never reads",
            line=doc.line,
            fix="move its rules into the first document (in the order they should apply), "
            "or delete it",
        )


LINTS: tuple[Lint, ...] = (
    Lint("shadowed-rule", "warning", "a rule no request can reach: an earlier rule matches "
         "every request it matches", "delete the rule or move it up", _check_shadowed),
    Lint("match-everything", "warning", "a rule without selectors before other rules",
         "add the intended selectors, or move the rule to the end", _check_catch_all_not_last),
    Lint("empty-selector", "warning", "a selector given as [] or null, which matches all",
         "list the values, or delete the key", _check_empty_selector),
    Lint("no-catch-all", "warning", "no final rule without selectors",
         "append `- level: Metadata` as the last rule", _check_no_catch_all),
    Lint("secret-bodies", "warning", "Secrets, ConfigMaps, TokenReviews or serviceaccounts/token "
         "at Request or RequestResponse", "log them at Metadata in an earlier rule",
         _check_secret_bodies),
    Lint("request-received-not-omitted", "warning", "RequestReceived is logged, doubling volume",
         "add `omitStages: [RequestReceived]` at the top level", _check_request_received),
    Lint("literal-wildcard", "warning", '"*" or a pattern such as kube-* in users, userGroups, '
         "verbs, namespaces or resourceNames (matched exactly)",
         "remove the \"*\"; an empty list matches all", _check_literal_wildcard),
    Lint("missing-group", "warning", "a named-group resource (deployments) listed without its "
         "group", "set the resources entry's group", _check_missing_group),
    Lint("unknown-verb", "warning", "a verb no request of that kind has (GET, Watch, "
         "impersonate, post on resources)", "use the lower-case request verb",
         _check_unknown_verb),
    Lint("unknown-resource", "warning", "a resource or subresource the target version does not "
         "serve in that built-in group (secret, Pods, pods/logs)",
         "use the plural, lower-case resource name", _check_unknown_resource),
    Lint("invalid-namespace", "warning", "a namespace name no namespace can have (upper case, "
         "'_')", "use the namespace's real name", _check_invalid_namespace),
    Lint("resource-url", "warning", "a nonResourceURLs entry that is a resource path "
         "(/api/v1/pods)", "match it with resources instead", _check_resource_url),
    Lint("ignored-document", "warning", "a YAML document after the first, which kube-apiserver "
         "never reads", "merge it into the first document or delete it",
         _check_ignored_documents),
)


def _line(policy: Policy, path: str) -> int | None:
    while path:
        if path in policy.positions:
            return policy.positions[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return 1 if policy.positions else None


def lint_policy(
    policy: Policy,
    *,
    flags: Mapping[str, Any] | Sequence[str] | None = None,
    target_version: VersionLike = None,
    select: Sequence[str] | None = None,
) -> list[Problem]:
    """Run the registered lints (all, or the ids in ``select``), then the flag checks.

    The flag checks run only when ``flags`` is given; their errors keep severity "error".
    """
    problems: list[Problem] = []
    for lint in LINTS:
        if select is not None and lint.id not in select:
            continue
        for finding in lint.check(policy):
            problems.append(
                Problem(
                    lint.severity,
                    lint.id,
                    finding.message,
                    policy.source,
                    finding.line or _line(policy, finding.field),
                    finding.field,
                    hint=finding.hint,
                    fix=finding.fix or lint.fix,
                )
            )
    if flags is not None:
        version = parse_version(target_version) if target_version else policy.target_version
        problems.extend(validate_flags(flags, target_version=version))
    return problems

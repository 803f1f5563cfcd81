"""Policy lints: one registry entry per lint (id, severity, check, fix), all warnings.

A check receives the policy and yields ``Finding``s; ``lint_policy`` turns them into ``Problem``s
with the policy's file and the finding's line. Adding a lint is adding one ``Lint`` to ``LINTS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_kaudit.policy.evaluate import (
    names_constraint,
    path_pattern_matches,
    resource_pattern_matches,
)
from pytest_kaudit.policy.flags import validate_flags
from pytest_kaudit.policy.model import GroupResources, Level, Policy, PolicyRule, Stage
from pytest_kaudit.policy.problems import Problem, Severity
from pytest_kaudit.policy.versions import VersionLike, has_group_wildcard, parse_version


@dataclass(frozen=True)
class Finding:
    """What a check found; ``field`` is a path whose line is looked up in the policy."""

    message: str
    field: str
    hint: str | None = None
    fix: str | None = None


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


def _check_shadowed(policy: Policy) -> Iterator[Finding]:
    gw = has_group_wildcard(policy.target_version)
    for j, later in enumerate(policy.rules):
        for i in range(j):
            earlier = policy.rules[i]
            if rule_covers(earlier, later, group_wildcard=gw):
                where = f" at line {earlier.line}" if earlier.line else ""
                yield Finding(
                    f"rule {j} is unreachable: rules[{i}]{where} ({earlier.summary()}) already "
                    "matches every request it matches",
                    f"rules[{j}]",
                    fix=f"delete rules[{j}], or move it above rules[{i}]",
                )
                break


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
SENSITIVE_TARGETS = (
    ("", "secrets", "", "Secrets"),
    ("", "configmaps", "", "ConfigMaps"),
    ("authentication.k8s.io", "tokenreviews", "", "TokenReviews"),
    ("", "serviceaccounts", "token", "serviceaccounts/token (TokenRequests)"),
)


def _check_secret_bodies(policy: Policy) -> Iterator[Finding]:
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
    for i, labels in sorted(leaks.items()):
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


def _check_literal_wildcard(policy: Policy) -> Iterator[Finding]:
    for i, rule in enumerate(policy.rules):
        for attr, key in _WILDCARD_FIELDS:
            values: tuple[str, ...] = getattr(rule, attr)
            if "*" not in values:
                continue
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
    Lint("literal-wildcard", "warning", '"*" in users, userGroups, verbs or namespaces (literal)',
         "remove the \"*\"; an empty list matches all", _check_literal_wildcard),
    Lint("missing-group", "warning", "a named-group resource (deployments) listed without its "
         "group", "set the resources entry's group", _check_missing_group),
)
LINTS_BY_ID: Mapping[str, Lint] = {lint.id: lint for lint in LINTS}


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
                    _line(policy, finding.field),
                    finding.field,
                    hint=finding.hint,
                    fix=finding.fix or lint.fix,
                )
            )
    if flags is not None:
        version = parse_version(target_version) if target_version else policy.target_version
        problems.extend(validate_flags(flags, target_version=version))
    return problems

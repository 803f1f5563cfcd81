"""Per-field rule matching, mirroring kube-apiserver's checker field by field.

The policy engine answers *which* rule matches; ``explain`` must also say *why not* for
every earlier rule, and the request-space partition (``diff``, witnesses) needs each field's
predicate on its own. All use the functions here, which follow kube-apiserver's checker
(staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_kaudit.policy import GroupResources, PolicyRule, RequestAttributes


def user_matches(rule: PolicyRule, user: str | None) -> bool:
    """``users``: exact name; an unauthenticated request (user None) never matches a list."""
    return not rule.users or (user is not None and user in rule.users)


def groups_match(rule: PolicyRule, user: str | None, groups: Sequence[str]) -> bool:
    """``userGroups``: any overlap with the caller's groups."""
    if not rule.user_groups:
        return True
    return user is not None and any(g in rule.user_groups for g in groups)


def verb_matches(rule: PolicyRule, verb: str) -> bool:
    """``verbs``: exact, lower-case; ``"*"`` is literal."""
    return not rule.verbs or verb in rule.verbs


def is_resource_rule(rule: PolicyRule) -> bool:
    """Rules naming resources or namespaces only match resource requests."""
    return bool(rule.namespaces or rule.resources)


def namespace_matches(rule: PolicyRule, namespace: str) -> bool:
    """``namespaces``: exact; ``""`` is cluster-scoped."""
    return not rule.namespaces or namespace in rule.namespaces


def group_resource_matches(
    gr: GroupResources, api_group: str, resource: str, subresource: str, name: str
) -> bool:
    """One ``resources`` entry against a resource request (``group: "*"`` = any group)."""
    if gr.group != api_group and gr.group != "*":
        return False
    if not gr.resources:
        return True
    combined = f"{resource}/{subresource}" if subresource else resource
    for res in gr.resources:
        if gr.resource_names and name not in gr.resource_names:
            continue
        if res == combined or res == "*":
            return True
        if subresource and res.startswith("*/") and res[2:] == subresource:
            return True
        if res.endswith("/*") and res[:-2] == resource:
            return True
    return False


def resources_match(
    rule: PolicyRule, api_group: str, resource: str, subresource: str, name: str
) -> bool:
    """``resources``: any entry matches (empty list = everything)."""
    if not rule.resources:
        return True
    return any(
        group_resource_matches(gr, api_group, resource, subresource, name) for gr in rule.resources
    )


def url_matches(spec: str, path: str) -> bool:
    """One ``nonResourceURLs`` pattern: ``*``, exact, or trailing-``*`` string prefix."""
    return spec == "*" or spec == path or (spec.endswith("*") and path.startswith(spec[:-1]))


def path_matches(rule: PolicyRule, path: str) -> bool:
    """``nonResourceURLs`` against a non-resource path (empty list = everything)."""
    return not rule.non_resource_urls or any(url_matches(s, path) for s in rule.non_resource_urls)


def _fmt(values: Sequence[object]) -> str:
    return "[" + ", ".join(repr(str(v)) for v in values) + "]"


def _resource_label(attrs: RequestAttributes) -> str:
    res = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    group = attrs.api_group or "core"
    name = f" name {attrs.name!r}" if attrs.name else ""
    return f"{res!r} in group {group!r}{name}"


def mismatches(rule: PolicyRule, attrs: RequestAttributes) -> list[str]:
    """Every field of ``rule`` that rejects ``attrs``, as ``field: why`` lines.

    Returns an empty list exactly when the rule matches (checked against the engine in tests).
    Unlike the checker, it does not stop at the first failing field, so the user sees all.
    """
    why: list[str] = []
    user = attrs.user
    if not user_matches(rule, user):
        who = "unauthenticated request" if user is None else f"user {user!r}"
        why.append(f"users: {who} not in {_fmt(rule.users)}")
    if not groups_match(rule, user, attrs.groups):
        if user is None:
            why.append(
                "userGroups: unauthenticated request has no groups "
                f"(rule wants {_fmt(rule.user_groups)})"
            )
        else:
            why.append(
                f"userGroups: none of {_fmt(list(attrs.groups))} in {_fmt(rule.user_groups)}"
            )
    if not verb_matches(rule, attrs.verb):
        why.append(f"verbs: {attrs.verb!r} not in {_fmt(rule.verbs)}")
    if is_resource_rule(rule):
        if not attrs.is_resource_request:
            why.append(
                "resources/namespaces: rule only matches resource requests; "
                f"{attrs.path!r} is a non-resource URL"
            )
            return why
        if not namespace_matches(rule, attrs.namespace):
            ns = (
                repr(attrs.namespace)
                if attrs.namespace
                else "'' (cluster-scoped or all namespaces)"
            )
            why.append(f"namespaces: {ns} not in {_fmt(rule.namespaces)}")
        if not resources_match(
            rule, attrs.api_group, attrs.resource, attrs.subresource, attrs.name
        ):
            why.append(f"resources: {_resource_label(attrs)} matches no entry")
    elif rule.non_resource_urls:
        if attrs.is_resource_request:
            why.append(
                "nonResourceURLs: rule only matches non-resource URLs; this is a resource request"
            )
        elif not path_matches(rule, attrs.path or ""):
            why.append(
                f"nonResourceURLs: {attrs.path!r} matches none of {_fmt(rule.non_resource_urls)}"
            )
    return why

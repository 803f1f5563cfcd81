"""A deliberately naive transcription of the policy checker (checker.go), for cross-checks."""

from __future__ import annotations

from pytest_kaudit.policy import Decision, Level, Policy, PolicyRule, RequestAttributes


def reference_matches(rule: PolicyRule, a: RequestAttributes, *, group_wildcard: bool) -> bool:
    if rule.users and (a.user is None or a.user not in rule.users):
        return False
    if rule.user_groups and (a.user is None or not set(a.groups) & set(rule.user_groups)):
        return False
    if rule.verbs and a.verb not in rule.verbs:
        return False
    if rule.namespaces or rule.resources:
        if not a.is_resource_request:
            return False
        if rule.namespaces and a.namespace not in rule.namespaces:
            return False
        if not rule.resources:
            return True
        combined = a.resource + ("/" + a.subresource if a.subresource else "")
        for gr in rule.resources:
            if gr.group == a.api_group or (group_wildcard and gr.group == "*"):
                if not gr.resources:
                    return True
                for res in gr.resources:
                    if gr.resource_names and a.name not in gr.resource_names:
                        continue
                    if res == combined or res == "*":
                        return True
                    if a.subresource and res.startswith("*/") and res[2:] == a.subresource:
                        return True
                    if res.endswith("/*") and res[:-2] == a.resource:
                        return True
        return False
    if rule.non_resource_urls:
        if a.is_resource_request:
            return False
        return any(
            spec == "*"
            or spec == a.path
            or (spec.endswith("*") and a.path.startswith(spec.rstrip("*")))
            for spec in rule.non_resource_urls
        )
    return True


def reference_evaluate(policy: Policy, a: RequestAttributes) -> Decision:
    wildcard = policy.target_version >= (1, 36)
    for i, rule in enumerate(policy.rules):
        if reference_matches(rule, a, group_wildcard=wildcard):
            omf = rule.omit_managed_fields
            return Decision(
                level=rule.level,
                omit_stages=frozenset(rule.omit_stages | policy.omit_stages),
                omit_managed_fields=policy.omit_managed_fields if omf is None else omf,
                rule_index=i,
            )
    return Decision(Level.NONE, frozenset(policy.omit_stages), policy.omit_managed_fields, None)

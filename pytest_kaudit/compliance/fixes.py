"""Fixes that are known to work: a rule snippet and where to insert it, or a flag value.

A rule fix covers exactly the failing requests (their API groups, resources and verbs) at the
level the requirement asks for, and goes right before the first rule that decides any of
them, so no earlier rule can shadow it. It is applied to a copy of the policy and the
requirement is decided again by the engine; only a fix that makes it pass is shown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

import yaml

from pytest_kaudit.compliance.canary import Canary, canary_plan
from pytest_kaudit.compliance.checks import (
    CheckContext,
    canary_leaks,
    flag_failures,
    predict_one,
    sends_body,
)
from pytest_kaudit.compliance.discovery import gap_specs
from pytest_kaudit.compliance.model import Requirement
from pytest_kaudit.compliance.results import Fix
from pytest_kaudit.errors import PolicyError
from pytest_kaudit.policy import Level, Policy, RequestAttributes
from pytest_kaudit.traffic import predict

_FLAG_EXAMPLES = {
    "audit-log-path": "/var/log/kubernetes/audit/audit.log",
    "audit-policy-file": "/etc/kubernetes/audit-policy.yaml",
}


def _failing_attrs(req: Requirement, ctx: CheckContext) -> list[RequestAttributes]:
    """The checker attributes of every request the engine says fails ``req``."""
    out = []
    if req.kind == "traffic":
        assert req.want is not None
        for spec in req.specs():
            attrs = spec.attributes(ctx.admin)
            logged = predict(ctx.policy, attrs, sends_body=sends_body(spec),
                             authorized=True if spec.identity.kind == "admin" else None,
                             impersonated_user=spec.identity.user
                             if spec.identity.kind == "impersonated" else None)
            if req.want.failures(spec, logged):
                out.append(attrs)
    elif req.kind == "canary":
        for step in canary_plan(Canary("x", "y"), ctx.canary_namespace):
            if step.carrier is not None and canary_leaks(ctx.policy, step, ctx.admin)[0]:
                out.append(step.spec.attributes(ctx.admin))
    elif req.kind == "gap":
        _, failures = predict_one(req, ctx)
        failing = {f.subject for f in failures}
        out = [s.attributes(ctx.admin) for _, s in gap_specs(ctx.gap_targets)
               if s.describe() in failing]
    return out


def fix_rules(attrs: list[RequestAttributes], level: Level, *, restrict_verbs: bool
              ) -> list[dict[str, Any]]:
    """Rules covering exactly these requests' resources (and verbs) at ``level``."""
    groups: dict[str, set[str]] = defaultdict(set)
    paths: set[str] = set()
    for a in attrs:
        if a.is_resource_request:
            groups[a.api_group].add(f"{a.resource}/{a.subresource}" if a.subresource
                                    else a.resource)
        else:
            paths.add(a.path)
    rules: list[dict[str, Any]] = []
    if groups:
        rule: dict[str, Any] = {"level": level.value}
        if restrict_verbs:
            rule["verbs"] = sorted({a.verb for a in attrs if a.is_resource_request})
        rule["resources"] = [{"group": g, "resources": sorted(r)}
                             for g, r in sorted(groups.items())]
        rules.append(rule)
    if paths:
        rule = {"level": level.value}
        if restrict_verbs:
            rule["verbs"] = sorted({a.verb for a in attrs if not a.is_resource_request})
        rule["nonResourceURLs"] = sorted(paths)
        rules.append(rule)
    return rules


def _with_rules(policy: Policy, rules: list[dict[str, Any]], at: int) -> Policy | None:
    doc = policy.to_dict()
    doc["rules"] = [*doc["rules"][:at], *rules, *doc["rules"][at:]]
    try:
        return Policy.from_dict(doc, source=policy.source, strict=False,
                                target_version=policy.target_version)
    except PolicyError:
        return None


def suggest_fix(req: Requirement, ctx: CheckContext) -> Fix | None:
    """A fix for a failing requirement, verified with the engine; None if none is found."""
    if req.kind == "flag":
        return _flag_fix(req, ctx)
    attrs = _failing_attrs(req, ctx)
    if not attrs:
        return None
    level = req.want.fix_level() if req.want is not None else Level.METADATA
    rules = fix_rules(attrs, level, restrict_verbs=req.kind == "traffic")
    if not rules:
        return None
    decided = [ctx.policy.evaluate_attributes(a).rule_index for a in attrs]
    first = min((i for i in decided if i is not None), default=len(ctx.policy.rules))
    snippet = yaml.safe_dump(rules, sort_keys=False, default_flow_style=None, width=100)
    for at in dict.fromkeys((first, 0)):
        candidate = _with_rules(ctx.policy, rules, at)
        if candidate is None:
            continue
        status, _ = predict_one(req, replace(ctx, policy=candidate))
        if status == "pass":
            return Fix("rule", snippet, _where(ctx.policy, at), insert_at=at, verified=True)
    return None


def _where(policy: Policy, at: int) -> str:
    source = policy.source or "the policy"
    if at >= len(policy.rules):
        return f"append after the last rule of {source}"
    line = policy.rules[at].line
    loc = f"{source}:{line}" if line else source
    reason = ("so that no earlier rule shadows it" if at == 0
              else "the first rule that decides a failing request; no earlier rule shadows it")
    return f"insert before rules[{at}] ({loc}), {reason}"


def _flag_fix(req: Requirement, ctx: CheckContext) -> Fix | None:
    check = req.flag
    assert check is not None
    value = str(check.at_least) if check.at_least is not None else _FLAG_EXAMPLES.get(
        check.name, "VALUE")
    flags = {**ctx.flags, check.name: value}
    verified = not flag_failures(check, flags, ctx.policy, origin="fixed")
    if not verified:
        return None
    return Fix("flag", f"--{check.name}={value}",
               "add to the kube-apiserver command line (or raise the value given there)",
               verified=True)

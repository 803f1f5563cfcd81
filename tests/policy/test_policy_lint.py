"""Lints: each one positive and negative, sound shadowing, the shipped fixtures."""

from __future__ import annotations

import pytest
from policy_helpers import FIXTURES, policy

from pytest_kaudit.policy import LINTS, Policy, lint_policy

OMIT = "omitStages: [RequestReceived]\n"
CATCH_ALL = "- level: Metadata\n"


def codes(text: str, lint_id: str, version: str | None = None) -> list[str]:
    loaded = policy(text, target_version=version)
    return [p.field for p in lint_policy(loaded, select=[lint_id])]


@pytest.mark.parametrize(
    ("lint_id", "text", "fields"),
    [
        # shadowed-rule
        ("shadowed-rule", "rules:\n- level: None\n  users: [a]\n- level: Metadata\n  users: [a]\n"
         "  verbs: [get]\n", ["rules[1]"]),
        ("shadowed-rule", "rules:\n- level: None\n  users: [a]\n- level: Metadata\n"
         "  verbs: [get]\n", []),
        ("shadowed-rule", "rules:\n- level: None\n  resources: [{resources: ['pods/*']}]\n"
         "- level: Metadata\n  resources: [{resources: [pods, pods/log]}]\n", ["rules[1]"]),
        ("shadowed-rule", "rules:\n- level: None\n  resources: [{resources: [pods]}]\n"
         "- level: Metadata\n  resources: [{resources: ['pods/*']}]\n", []),
        ("shadowed-rule", "rules:\n- level: None\n  resources: [{resources: [pods], "
         "resourceNames: [a]}]\n- level: Metadata\n  resources: [{resources: [pods]}]\n", []),
        ("shadowed-rule", "rules:\n- level: None\n  resources: [{resources: [pods]}]\n"
         "- level: Metadata\n  resources: [{resources: [pods], resourceNames: [a]}]\n",
         ["rules[1]"]),
        ("shadowed-rule", "rules:\n- level: None\n  namespaces: [a]\n- level: Metadata\n"
         "  resources: [{resources: [pods]}]\n", []),
        ("shadowed-rule", "rules:\n- level: None\n  namespaces: [a, b]\n- level: Metadata\n"
         "  namespaces: [a]\n  resources: [{resources: [pods]}]\n", ["rules[1]"]),
        ("shadowed-rule", "rules:\n- level: None\n  nonResourceURLs: ['/healthz*']\n"
         "- level: Metadata\n  nonResourceURLs: ['/healthz/etcd', '/healthzfoo*']\n",
         ["rules[1]"]),
        ("shadowed-rule", "rules:\n- level: None\n  nonResourceURLs: ['/healthz']\n"
         "- level: Metadata\n  nonResourceURLs: ['/healthz*']\n", []),
        ("shadowed-rule", "rules:\n- level: None\n  resources: [{group: ''}]\n"
         "- level: Metadata\n  resources: [{resources: ['*/status']}]\n", ["rules[1]"]),
        ("shadowed-rule", "rules:\n- level: None\n  resources: [{group: ''}]\n"
         "- level: Metadata\n  resources: [{group: apps}]\n", []),
        ("shadowed-rule", "rules:\n- level: None\n  resources: [{group: ''}]\n"
         "- level: Metadata\n", []),
        ("shadowed-rule", "rules:\n- level: None\n  resources: [{group: '*'}]\n"
         "- level: Metadata\n  namespaces: [a]\n", ["rules[1]"]),
        ("shadowed-rule", "rules:\n- level: None\n  userGroups: [g1, g2]\n"
         "- level: Metadata\n  userGroups: [g2]\n  users: [x]\n", ["rules[1]"]),
        ("shadowed-rule", "rules:\n- level: None\n  nonResourceURLs: ['*']\n"
         "- level: Metadata\n  resources: [{resources: [pods]}]\n", []),
        # match-everything
        ("match-everything", "rules:\n- level: Metadata\n- level: None\n  users: [a]\n",
         ["rules[0]"]),
        ("match-everything", "rules:\n- level: None\n  users: [a]\n- level: Metadata\n", []),
        # empty-selector
        ("empty-selector", "rules:\n- level: None\n  verbs: []\n  users: [a]\n",
         ["rules[0].verbs"]),
        ("empty-selector", "rules:\n- level: None\n  resources:\n  - group: apps\n"
         "    resources:\n", ["rules[0].resources[0].resources"]),
        ("empty-selector", "rules:\n- level: None\n  verbs: [get]\n", []),
        # no-catch-all
        ("no-catch-all", "rules:\n- level: Metadata\n  verbs: [get]\n", ["rules[0]"]),
        ("no-catch-all", "rules:\n- level: None\n  verbs: [get]\n" + CATCH_ALL, []),
        # secret-bodies
        ("secret-bodies", "rules:\n- level: RequestResponse\n", ["rules[0].level"]),
        ("secret-bodies", "rules:\n- level: Request\n  resources: [{resources: [configmaps]}]\n",
         ["rules[0].level"]),
        ("secret-bodies", "rules:\n- level: Request\n  resources: [{group: authentication.k8s.io,"
         " resources: [tokenreviews]}]\n", ["rules[0].level"]),
        ("secret-bodies", "rules:\n- level: Request\n  resources: [{resources: ['serviceaccounts/"
         "token']}]\n", ["rules[0].level"]),
        ("secret-bodies", "rules:\n- level: Request\n  resources: [{resources: [serviceaccounts]}]"
         "\n", []),
        ("secret-bodies", "rules:\n- level: Metadata\n  resources: [{resources: [secrets, "
         "configmaps, serviceaccounts/token]}, {group: authentication.k8s.io, resources: "
         "[tokenreviews]}]\n- level: RequestResponse\n", []),
        ("secret-bodies", "rules:\n- level: Metadata\n  verbs: [get]\n  resources: [{resources: "
         "[secrets]}]\n- level: RequestResponse\n  resources: [{group: ''}]\n",
         ["rules[1].level"]),
        ("secret-bodies", "rules:\n- level: RequestResponse\n  resources: [{resources: [pods]}]\n",
         []),
        # request-received-not-omitted
        ("request-received-not-omitted", "rules:\n- level: Metadata\n", [""]),
        ("request-received-not-omitted", "omitStages: [Panic]\nrules:\n- level: Metadata\n",
         ["omitStages"]),
        ("request-received-not-omitted", OMIT + "rules:\n- level: Metadata\n", []),
        ("request-received-not-omitted",
         "rules:\n- level: None\n- level: Metadata\n  omitStages: [RequestReceived]\n", []),
        # literal-wildcard
        ("literal-wildcard", "rules:\n- level: None\n  verbs: ['*']\n", ["rules[0].verbs[0]"]),
        ("literal-wildcard", "rules:\n- level: None\n  users: [a, '*']\n", ["rules[0].users[1]"]),
        ("literal-wildcard", "rules:\n- level: None\n  namespaces: ['*']\n",
         ["rules[0].namespaces[0]"]),
        ("literal-wildcard", "rules:\n- level: None\n  userGroups: ['*']\n",
         ["rules[0].userGroups[0]"]),
        ("literal-wildcard", "rules:\n- level: None\n  resources: [{resources: ['*']}]\n"
         "  nonResourceURLs: []\n", []),
        # missing-group
        ("missing-group", "rules:\n- level: None\n  resources: [{resources: [deployments/scale]}]"
         "\n", ["rules[0].resources[0].resources[0]"]),
        ("missing-group", "rules:\n- level: None\n  resources: [{group: apps, resources: "
         "[deployments]}]\n", []),
        ("missing-group", "rules:\n- level: None\n  resources: [{resources: [pods, events]}]\n",
         []),
    ],
)
def test_lint_positive_and_negative(lint_id: str, text: str, fields: list[str]) -> None:
    assert codes(text, lint_id) == fields


def test_every_lint_has_a_test_and_a_fix() -> None:
    ids = {lint.id for lint in LINTS}
    assert ids == {
        "shadowed-rule", "match-everything", "empty-selector", "no-catch-all", "secret-bodies",
        "request-received-not-omitted", "literal-wildcard", "missing-group",
    }
    assert all(lint.fix and lint.severity == "warning" for lint in LINTS)


def test_shadowed_rule_golden() -> None:
    loaded = policy("rules:\n- level: None\n  users: [a]\n- level: Metadata\n  users: [a]\n"
                    "  verbs: [get]\n", source="p.yaml")
    (problem,) = lint_policy(loaded, select=["shadowed-rule"])
    assert str(problem) == (
        "p.yaml:6: rules[1]: rule 1 is unreachable: rules[0] at line 4 (level None for every "
        "verb on any request by user a) already matches every request it matches"
    )
    assert problem.fix == "delete rules[1], or move it above rules[0]"


def test_secret_bodies_golden() -> None:
    loaded = policy("rules:\n- level: RequestResponse\n", source="p.yaml")
    (problem,) = lint_policy(loaded, select=["secret-bodies"])
    assert problem.message == (
        "Secrets, ConfigMaps, TokenReviews, serviceaccounts/token (TokenRequests) logged at level "
        "RequestResponse: request/response bodies carry secret data (Secret values, tokens) into "
        "the audit log"
    )
    assert (problem.line, problem.code, problem.severity) == (4, "secret-bodies", "warning")


def test_group_star_shadowing_needs_1_36() -> None:
    text = "rules:\n- level: None\n  resources: [{group: '*'}]\n- level: Metadata\n" \
           "  resources: [{group: apps}]\n"
    assert codes(text, "shadowed-rule", version="1.36") == ["rules[1]"]


def test_fixtures_lint_results() -> None:
    brief = Policy.load(FIXTURES / "brief.yaml")
    assert [p.code for p in brief.lint()] == ["no-catch-all"]
    assert Policy.load(FIXTURES / "gke-style.yaml").lint() == []
    assert Policy.load(FIXTURES / "cis-baseline.yaml").lint() == []


def test_lint_with_flags_adds_cis_checks() -> None:
    loaded = Policy.load(FIXTURES / "cis-baseline.yaml")
    problems = loaded.lint(flags={"audit-policy-file": "/p.yaml", "audit-log-path": "/a.log",
                                  "audit-log-maxage": "7"}, target_version="1.30")
    assert [p.code for p in problems] == [
        "cis-audit-log-maxage", "cis-audit-log-maxbackup", "cis-audit-log-maxsize"
    ]

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
        # literal-wildcard: patterns in fields matched exactly
        ("literal-wildcard", "rules:\n- level: None\n  users: ['system:serviceaccount:kube-system:*']"
         "\n", ["rules[0].users[0]"]),
        ("literal-wildcard", "rules:\n- level: None\n  namespaces: [default, 'kube-*']\n",
         ["rules[0].namespaces[1]"]),
        ("literal-wildcard", "rules:\n- level: None\n  userGroups: ['system:serviceaccounts:*']\n",
         ["rules[0].userGroups[0]"]),
        ("literal-wildcard", "rules:\n- level: None\n  resources: [{resources: [secrets], "
         "resourceNames: ['*', 'db-*']}]\n", ["rules[0].resources[0].resourceNames[0]",
                                               "rules[0].resources[0].resourceNames[1]"]),
        ("literal-wildcard", "rules:\n- level: None\n  users: ['system:serviceaccount:a:b']\n"
         "  namespaces: [kube-system]\n", []),
        # unknown-verb
        ("unknown-verb", "rules:\n- level: None\n  verbs: [GET, Watch]\n",
         ["rules[0].verbs[0]", "rules[0].verbs[1]"]),
        ("unknown-verb", "rules:\n- level: None\n  verbs: [impersonate, escalate, bind, use]\n",
         ["rules[0].verbs[0]", "rules[0].verbs[1]", "rules[0].verbs[2]", "rules[0].verbs[3]"]),
        ("unknown-verb", "rules:\n- level: None\n  verbs: [post]\n  resources: [{resources: "
         "[pods]}]\n", ["rules[0].verbs[0]"]),
        ("unknown-verb", "rules:\n- level: None\n  verbs: [list]\n  nonResourceURLs: [/healthz]\n",
         ["rules[0].verbs[0]"]),
        ("unknown-verb", "rules:\n- level: None\n  verbs: [gte]\n", ["rules[0].verbs[0]"]),
        ("unknown-verb", "rules:\n- level: None\n  verbs: [get, list, watch, create, update, "
         "patch, delete, deletecollection, proxy, post, put, head, options, '*']\n", []),
        ("unknown-verb", "rules:\n- level: None\n  verbs: [get, head]\n"
         "  nonResourceURLs: [/healthz]\n", []),
        # unknown-resource
        ("unknown-resource", "rules:\n- level: None\n  resources: [{resources: [secret, Pods, "
         "pods/logs, '*/scale', 'pods/*', '*/exec']}]\n",
         ["rules[0].resources[0].resources[0]", "rules[0].resources[0].resources[1]",
          "rules[0].resources[0].resources[2]"]),
        ("unknown-resource", "rules:\n- level: None\n  resources: [{group: apps, resources: "
         "[deployments/scale, '*/scale', pods, 'deploymentz/*']}]\n",
         ["rules[0].resources[0].resources[2]", "rules[0].resources[0].resources[3]"]),
        ("unknown-resource", "rules:\n- level: None\n  resources: [{group: example.com, "
         "resources: [widgets, Gadgets/x]}, {group: metrics.k8s.io, resources: [pods]}]\n", []),
        ("unknown-resource", "rules:\n- level: None\n  resources: [{resources: [pods/exec, "
         "pods/log, pods/portforward, pods/proxy, pods/attach, pods/eviction, pods/binding, "
         "pods/status, pods/ephemeralcontainers, services/proxy, serviceaccounts/token, "
         "nodes/proxy, namespaces/finalize, bindings, componentstatuses, events]}]\n", []),
        ("unknown-resource", "rules:\n- level: None\n  resources: [{resources: ['nodes/metrics',"
         " 'pods/log/x', '*/*', 'deployments']}]\n",
         ["rules[0].resources[0].resources[0]", "rules[0].resources[0].resources[1]",
          "rules[0].resources[0].resources[2]"]),
        # invalid-namespace
        ("invalid-namespace", "rules:\n- level: None\n  namespaces: [Kube_System, '', default]\n",
         ["rules[0].namespaces[0]"]),
        # resource-url
        ("resource-url", "rules:\n- level: None\n  nonResourceURLs: [/api/v1/pods, '/apis/apps/v1/d*',"
         " /api/v1, '/api/v1/*', /apis/apps/v1, /healthz, '*']\n",
         ["rules[0].nonResourceURLs[0]", "rules[0].nonResourceURLs[1]"]),
        # ignored-document
        ("ignored-document", "rules:\n- level: None\n---\n# nothing here\n---\n"
         "rules: [{level: Metadata}]\n", [""]),
        ("ignored-document", "rules:\n- level: None\n---\n", []),
    ],
)
def test_lint_positive_and_negative(lint_id: str, text: str, fields: list[str]) -> None:
    assert codes(text, lint_id) == fields


def test_every_lint_has_a_test_and_a_fix() -> None:
    ids = {lint.id for lint in LINTS}
    assert ids == {
        "shadowed-rule", "match-everything", "empty-selector", "no-catch-all", "secret-bodies",
        "request-received-not-omitted", "literal-wildcard", "missing-group", "unknown-verb",
        "unknown-resource", "invalid-namespace", "ignored-document", "resource-url",
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


@pytest.mark.parametrize(
    ("pattern", "group", "version", "expected"),
    [
        ("podsecuritypolicies", "policy", "1.24", None),
        ("podsecuritypolicies", "policy", "1.25",
         '"podsecuritypolicies" is not served by Kubernetes 1.25 (removed in 1.25), so it never '
         "matches"),
        ("selfsubjectreviews", "authentication.k8s.io", "1.25",
         '"selfsubjectreviews" is not served by Kubernetes 1.25 (added in 1.26), so it never '
         "matches"),
        ("selfsubjectreviews", "authentication.k8s.io", "1.26", None),
        ("ingresses", "extensions", "1.21", None),
        ("pods/resize", "", "1.32",
         '"pods/resize" is not served by Kubernetes 1.32 (added in 1.33), so it never matches'),
    ],
)
def test_unknown_resource_follows_the_target_version(
    pattern: str, group: str, version: str, expected: str | None
) -> None:
    loaded = policy(f"rules:\n- level: None\n  resources: [{{group: '{group}', "
                    f"resources: ['{pattern}']}}]\n", target_version=version)
    found = [p.message for p in lint_policy(loaded, select=["unknown-resource"])]
    assert found == ([] if expected is None else [expected])


def test_unknown_resource_and_verb_golden() -> None:
    loaded = policy("rules:\n- level: None\n  verbs: [GET]\n  resources: [{resources: "
                    "[secret, pods/logs]}]\n", source="p.yaml")
    problems = lint_policy(loaded, select=["unknown-resource", "unknown-verb"])
    assert [str(p) for p in problems] == [
        'p.yaml:5: rules[0].verbs[0]: verb "GET" never matches: request verbs are lower-case and '
        'compared exactly (write "get")',
        'p.yaml:6: rules[0].resources[0].resources[0]: "secret" is not a resource of the core '
        'group ("") in Kubernetes 1.37, so it never matches (did you mean "secrets"?)',
        'p.yaml:6: rules[0].resources[0].resources[1]: pods has no subresource "logs" in '
        "Kubernetes 1.37 (it has: attach, binding, checkpoint, ephemeralcontainers, eviction, "
        'exec, log, portforward, proxy, resize, status), so it never matches (did you mean '
        '"pods/log"?)',
    ]
    assert [p.fix for p in problems][0] == 'replace "GET" with "get"'


def test_ignored_document_golden_names_its_line_and_the_secret_leak() -> None:
    loaded = policy("rules:\n- level: RequestResponse\n---\napiVersion: audit.k8s.io/v1\n"
                    "kind: Policy\nrules:\n- level: Metadata\n  resources: [{resources: "
                    "[secrets]}]\n- level: RequestResponse\n", source="p.yaml")
    (problem,) = lint_policy(loaded, select=["ignored-document"])
    assert str(problem) == (
        "p.yaml:5: document 2 (line 5) is ignored: kube-apiserver reads only the first YAML "
        "document of a policy file, and this one holds 2 rules at Metadata, RequestResponse "
        "that never apply; meanwhile the first document logs Secrets at RequestResponse "
        "(rules[0]) (a policy file holds one Policy; '---' starts a document kube-apiserver "
        "never reads)"
    )


def test_ignored_document_that_is_not_yaml_is_reported_not_fatal() -> None:
    loaded = policy("rules:\n- level: Metadata\n---\nrules: [\n  - : : [\n")
    (problem,) = lint_policy(loaded, select=["ignored-document"])
    assert problem.message.startswith("document 2 (line 5) is ignored")
    assert "is not valid YAML (line 7: did not find expected node content)" in problem.message


def test_shadowing_analysis_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_kaudit.policy import lint

    text = "rules:\n" + "".join(f"- level: None\n  users: [u{i}]\n" for i in range(30))
    monkeypatch.setattr(lint, "SHADOW_MAX_RULES", 20)
    (skipped,) = lint_policy(policy(text), select=["shadowed-rule"])
    assert skipped.message.startswith("shadowing analysis skipped: the policy has 30 rules")
    monkeypatch.setattr(lint, "SHADOW_MAX_RULES", 100)
    monkeypatch.setattr(lint, "SHADOW_MAX_COMPARISONS", 5)
    same = "rules:\n" + "".join(f"- level: None\n  verbs: [get]\n  users: [x, u{i}]\n"
                                for i in range(10))
    problems = lint_policy(policy(same), select=["shadowed-rule"])
    assert problems[-1].message.startswith("shadowing analysis stopped at rules[")

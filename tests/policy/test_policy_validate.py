"""Validation: the nine apiserver checks, their paths, exact messages, order and rendering."""

from __future__ import annotations

import pytest
from policy_helpers import HEADER, problems_of

from pytest_kaudit.policy import apiserver_error_text

STAGES = "allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"
DNS = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@pytest.mark.parametrize(
    ("body", "version", "expected"),
    [
        pytest.param(  # 1
            "omitStages: [Foo]\nrules:\n- level: None\n", None,
            [f'omitStages[0]: Invalid value: "Foo": {STAGES}'], id="1-policy-omitStages",
        ),
        pytest.param(
            "omitStages: [requestReceived]\nrules:\n- level: None\n", None,
            [f'omitStages[0]: Invalid value: "requestReceived": {STAGES}'], id="1-case-sensitive",
        ),
        pytest.param(  # 2
            "rules:\n- {}\n", None, ["rules[0].level: Required value"], id="2-level-required",
        ),
        pytest.param(
            'rules:\n- level: ""\n', None, ["rules[0].level: Required value"], id="2-level-empty",
        ),
        pytest.param(
            "rules:\n- level: null\n", None, ["rules[0].level: Required value"], id="2-level-null",
        ),
        pytest.param(  # 3
            "rules:\n- level: metadata\n", None,
            ['rules[0].level: Unsupported value: "metadata": supported values: "None", '
             '"Metadata", "Request", "RequestResponse"'],
            id="3-level-unsupported",
        ),
        pytest.param(  # 4
            "rules:\n- level: None\n  nonResourceURLs: [healthz]\n", None,
            ["rules[0].nonResourceURLs[0]: Invalid value: \"healthz\": non-resource URL rules "
             "must begin with a '/' character"],
            id="4-url-slash",
        ),
        pytest.param(
            'rules:\n- level: None\n  nonResourceURLs: [""]\n', None,
            ["rules[0].nonResourceURLs[0]: Invalid value: \"\": non-resource URL rules must "
             "begin with a '/' character"],
            id="4-url-empty-only-slash-check",
        ),
        pytest.param(
            'rules:\n- level: None\n  nonResourceURLs: ["*"]\n', None, [], id="4-star-skipped",
        ),
        pytest.param(  # 5
            'rules:\n- level: None\n  nonResourceURLs: ["/logs/*/*", "/logs/*.log", "/logs**"]\n',
            None,
            [f"rules[0].nonResourceURLs[{i}]: Invalid value: \"{u}\": non-resource URL "
             "wildcards '*' must be the final character of the rule"
             for i, u in enumerate(["/logs/*/*", "/logs/*.log", "/logs**"])],
            id="5-url-wildcard",
        ),
        pytest.param(
            'rules:\n- level: None\n  nonResourceURLs: ["x*y"]\n', None,
            ["rules[0].nonResourceURLs[0]: Invalid value: \"x*y\": non-resource URL rules "
             "must begin with a '/' character",
             "rules[0].nonResourceURLs[0]: Invalid value: \"x*y\": non-resource URL wildcards "
             "'*' must be the final character of the rule"],
            id="4-and-5",
        ),
        pytest.param(  # 6
            "rules:\n- level: None\n  resources:\n  - group: rbac.authorization.k8s.io/v1beta1\n",
            None,
            ['rules[0].resources.group: Invalid value: '
             f'"rbac.authorization.k8s.io/v1beta1": {DNS}'],
            id="6-group-with-version",
        ),
        pytest.param(
            "rules:\n- level: None\n  resources:\n  - group: Apps\n", None,
            [f'rules[0].resources.group: Invalid value: "Apps": {DNS}'], id="6-group-case",
        ),
        pytest.param(
            'rules:\n- level: None\n  resources:\n  - group: "*"\n', "1.35",
            [f'rules[0].resources.group: Invalid value: "*": {DNS}'], id="6-star-before-1.36",
        ),
        pytest.param(
            'rules:\n- level: None\n  resources:\n  - group: "*"\n', "1.36", [],
            id="6-star-from-1.36",
        ),
        pytest.param(  # 7
            "rules:\n- level: None\n  resources:\n  - resourceNames: [leader]\n", "1.33",
            ['rules[0].resources.resourceNames: Invalid value: []string{"leader"}: using '
             "resourceNames requires at least one resource"],
            id="7-go-rendering",
        ),
        pytest.param(
            "rules:\n- level: None\n  resources:\n  - resourceNames: [leader]\n", "1.34",
            ['rules[0].resources.resourceNames: Invalid value: ["leader"]: using resourceNames '
             "requires at least one resource"],
            id="7-json-rendering",
        ),
        pytest.param(  # 8
            "rules:\n- level: None\n  omitStages: [Bar]\n", None,
            [f'rules[0].omitStages[0]: Invalid value: "Bar": {STAGES}'], id="8-rule-omitStages",
        ),
        pytest.param(  # 9
            "rules:\n- level: None\n  namespaces: [a]\n  nonResourceURLs: [/logs*]\n", "1.20",
            ['rules[0].nonResourceURLs: Invalid value: []string{"/logs*"}: rules cannot apply '
             "to both regular resources and non-resource URLs"],
            id="9-mixed-go",
        ),
        pytest.param(
            "rules:\n- level: None\n  resources: [{group: ''}]\n  nonResourceURLs: [/logs*]\n",
            None,
            ['rules[0].nonResourceURLs: Invalid value: ["/logs*"]: rules cannot apply to both '
             "regular resources and non-resource URLs"],
            id="9-mixed-json",
        ),
    ],
)
def test_each_validation_check(body: str, version: str | None, expected: list[str]) -> None:
    text = HEADER + body
    if not expected:
        from pytest_kaudit.policy import Policy

        Policy.from_yaml(text, target_version=version)
        return
    problems = problems_of(text, target_version=version)
    assert [p.apiserver_text for p in problems] == expected
    assert {p.code for p in problems} == {"validation"}


VERIFIED_1_20 = (
    '[omitStages[0]: Invalid value: "Foo": allowed stages are RequestReceived,ResponseStarted,'
    'ResponseComplete,Panic, rules[0].level: Unsupported value: "Bogus": supported values: '
    '"None", "Metadata", "Request", "RequestResponse", rules[0].nonResourceURLs[0]: Invalid '
    "value: \"x\": non-resource URL rules must begin with a '/' character, "
    'rules[0].nonResourceURLs[1]: Invalid value: "/a*b": non-resource URL wildcards \'*\' must '
    'be the final character of the rule, rules[0].omitStages[0]: Invalid value: "Bar": allowed '
    "stages are RequestReceived,ResponseStarted,ResponseComplete,Panic, "
    'rules[0].nonResourceURLs: Invalid value: []string{"x", "/a*b"}: rules cannot apply to both '
    "regular resources and non-resource URLs, rules[1].level: Required value]"
)


def test_order_and_aggregate_match_verified_1_20_output() -> None:
    text = HEADER + (
        "omitStages: [Foo]\n"
        "rules:\n"
        "- level: Bogus\n"
        "  namespaces: [default]\n"
        '  nonResourceURLs: ["x", "/a*b"]\n'
        "  omitStages: [Bar]\n"
        "- {}\n"
    )
    problems = problems_of(text, target_version="1.20")
    assert apiserver_error_text(problems) == VERIFIED_1_20
    assert [p.line for p in problems] == [3, 5, 7, 7, 8, 7, 9]


def test_unindexed_group_errors_are_deduplicated_in_the_aggregate() -> None:
    text = HEADER + "rules:\n- level: None\n  resources:\n  - group: A\n  - group: A\n"
    problems = problems_of(text)
    assert len(problems) == 2  # one per entry, each with its own line
    assert [p.line for p in problems] == [6, 7]
    assert apiserver_error_text(problems) == (
        f'rules[0].resources.group: Invalid value: "A": {DNS}'
    )


def test_zero_rules_reported_after_validation_errors() -> None:
    problems = problems_of(HEADER + "omitStages: [Foo]\nrules: []\n")
    assert [p.code for p in problems] == ["validation", "no-rules"]
    assert problems[1].message == "loaded illegal policy with 0 rules"

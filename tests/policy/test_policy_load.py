"""Loading: decoding like the apiserver, GVK handling, strict vs lenient, golden problems."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from policy_helpers import FIXTURES, HEADER, policy, problems_of

from pytest_kaudit.errors import PolicyError
from pytest_kaudit.policy import Level, Policy, Stage

GV_MISSING = "unknown group version field audit.k8s.io/__internal, Kind=Policy in policy"
SCHEME = 'in scheme "k8s.io/apiserver/pkg/audit/scheme.go:32"'


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        pytest.param("", None, GV_MISSING, id="empty-file"),
        pytest.param("# just a comment\n", None, GV_MISSING, id="comment-only"),
        pytest.param("kind: Policy\nrules:\n- level: None\n", None, GV_MISSING, id="no-apiVersion"),
        pytest.param(HEADER, None, "loaded illegal policy with 0 rules", id="no-rules"),
        pytest.param(HEADER + "rules: []\n", None, "loaded illegal policy with 0 rules",
                     id="rules-empty"),
        pytest.param(HEADER + "rules:\n", None, "loaded illegal policy with 0 rules",
                     id="rules-null"),
        pytest.param(
            "apiVersion: audit.k8s.io/v1\nkind: Event\nrules:\n- level: None\n", None,
            "failed decoding: converting (v1.Event) to (audit.Policy): unknown conversion",
            id="kind-event",
        ),
        pytest.param(
            "apiVersion: audit.k8s.io/v1\nkind: Foo\n", None,
            f'failed decoding: no kind "Foo" is registered for version "audit.k8s.io/v1" {SCHEME}',
            id="kind-foo",
        ),
        pytest.param(
            "apiVersion: audit.k8s.io/v2\nkind: Policy\n", None,
            f'failed decoding: no kind "Policy" is registered for version "audit.k8s.io/v2" '
            f"{SCHEME}",
            id="version-v2",
        ),
        pytest.param(
            "apiVersion: v1\nkind: Policy\n", None,
            f'failed decoding: no kind "Policy" is registered for version "v1" {SCHEME}',
            id="version-core-v1",
        ),
        pytest.param(
            "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n", "1.24",
            f'failed decoding: no kind "Policy" is registered for version "audit.k8s.io/v1beta1" '
            f"{SCHEME}",
            id="v1beta1-removed-1.24",
        ),
        pytest.param(
            "- level: None\n", None,
            "failed decoding: couldn't get version/kind; json parse error: json: cannot "
            'unmarshal array into Go value of type struct { APIVersion string "json:\\"apiVersion,'
            'omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }',
            id="top-level-list",
        ),
        pytest.param(
            HEADER + "rules:\n- level: None\n\tverbs: [get]\n", None,
            "failed decoding: yaml: line 5: found character that cannot start any token",
            id="tab-indent",
        ),
    ],
)
def test_loader_messages(text: str, version: str | None, expected: str) -> None:
    problems = problems_of(text, target_version=version)
    assert problems[0].message == expected


@pytest.mark.parametrize(
    ("body", "field", "hint_part"),
    [
        ("rules:\n- level: 1\n", "rules[0].level", None),
        ("rules:\n- level: None\n  users: tim\n", "rules[0].users", None),
        ("rules:\n  level: None\n", "rules", None),
        ("omitStages: RequestReceived\nrules:\n- level: None\n", "omitStages", None),
        ("rules:\n- level: None\n  users: [no]\n", "rules[0].users[0]", 'quote it: "no"'),
        ("rules:\n- level: None\n  verbs: [on]\n", "rules[0].verbs[0]", 'quote it: "on"'),
        ("rules:\n- level: None\n  users: [y]\n", "rules[0].users[0]", 'quote it: "y"'),
        ("rules:\n- level: None\n  namespaces: [0x1F]\n", "rules[0].namespaces[0]", "a number"),
        ("rules:\n- level: None\n  omitManagedFields: 'true'\n", "rules[0].omitManagedFields",
         None),
    ],
)
def test_type_mismatches_are_fatal_decode_errors(
    body: str, field: str, hint_part: str | None
) -> None:
    problems = problems_of(HEADER + body)
    assert problems[0].code == "decode"
    assert problems[0].message.startswith("failed decoding: ")
    assert problems[0].field == field
    if hint_part:
        assert problems[0].hint is not None and hint_part in problems[0].hint


def test_yaml_1_1_quoted_words_stay_strings() -> None:
    loaded = policy("rules:\n- level: None\n  users: ['no', \"yes\", 'on']\n")
    assert loaded.rules[0].users == ("no", "yes", "on")


def test_gvk_detection_is_case_insensitive_and_kind_optional() -> None:
    loaded = Policy.from_yaml("ApiVersion: audit.k8s.io/v1\nKIND: Policy\nrules:\n- level: None\n")
    assert loaded.api_version == "audit.k8s.io/v1"
    assert {w.code for w in loaded.warnings} == {"key-case"}
    no_kind = Policy.from_yaml("apiVersion: audit.k8s.io/v1\nrules:\n- level: None\n")
    assert no_kind.to_dict()["kind"] == "Policy"


@pytest.mark.parametrize(
    ("version", "message_part"),
    [
        ("1.20", "audit.k8s.io/v1beta1 loads in Kubernetes 1.20"),
        ("1.22", '"audit.k8s.io/v1beta1" is deprecated and will be removed in a future release, '
                 'use "audit.k8s.io/v1" instead'),
    ],
)
def test_v1beta1_loads_before_1_24_with_a_warning(version: str, message_part: str) -> None:
    text = "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n"
    loaded = Policy.from_yaml(text, target_version=version)
    (warning,) = loaded.warnings
    assert warning.code == "deprecated-api-version"
    assert message_part in warning.message
    assert "1.24 and later reject it" in warning.message


def test_metadata_is_accepted_and_ignored() -> None:
    loaded = policy("metadata: {name: foo}\nrules:\n- level: None\n")
    assert loaded.to_dict()["metadata"] == {"name": "foo"}


def test_null_values_behave_as_absent() -> None:
    loaded = policy("omitStages:\nrules:\n- level: None\n  users: ~\n  verbs: [~]\n")
    assert loaded.rules[0].users == ()
    assert loaded.rules[0].verbs == ("",)
    assert loaded.omit_stages == frozenset()


def test_only_the_first_document_counts() -> None:
    text = HEADER + "rules:\n- level: Metadata\n---\nthis: [is, ignored\n"
    assert Policy.from_yaml("---\n" + text).rules[0].level is Level.METADATA


def test_json_input_is_accepted_with_lines() -> None:
    doc = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Request"}]}
    text = json.dumps(doc, indent=2)
    loaded = Policy.from_yaml(text)
    assert loaded.rules[0].level is Level.REQUEST
    assert loaded.rule_line(0) == 5
    with_tabs = json.dumps(doc, indent="\t")
    assert Policy.from_yaml(with_tabs).rules[0].level is Level.REQUEST


# ------------------------------------------------------------------------ unknown / duplicate
@pytest.mark.parametrize(
    ("body", "field", "hint", "consequence"),
    [
        ("rules:\n- level: None\n  verb: [get]\n  resources: [{resources: [pods]}]\n",
         "rules[0].verb", 'did you mean "verbs"?', "this rule would match every verb"),
        ("rules:\n- level: None\n  groups: [admins]\n  verbs: [get]\n",
         "rules[0].groups", 'did you mean "userGroups"?', "this rule would match every user"),
        ("rules:\n- level: None\n  resources:\n  - groups: apps\n    resources: [deployments]\n",
         "rules[0].resources[0].groups", 'did you mean "group"?',
         "this entry would match the core group (\"\") instead of 'apps'"),
        ("rules:\n- level: None\n  nonResourceUrls: [/healthz]\n",
         "rules[0].nonResourceUrls", 'keys are case-sensitive: write "nonResourceURLs"',
         "it becomes a catch-all matching every request"),
        ("rules:\n- level: None\n  resources:\n  - resources: [pods]\n    verbs: [get]\n",
         "rules[0].resources[0].verbs", "indent it to line up with resources",
         "this rule would match every verb"),
        ("rules:\n- level: None\n  Verbs: [get]\n  users: [a]\n",
         "rules[0].Verbs", 'keys are case-sensitive: write "verbs"',
         "this rule would match every verb"),
        ("rule:\n- level: None\n", "rule", 'did you mean "rules"?',
         "the policy would have no rules"),
    ],
)
def test_unknown_fields_are_errors_with_hint_and_consequence(
    body: str, field: str, hint: str, consequence: str
) -> None:
    problems = [p for p in problems_of(HEADER + body) if p.code == "unknown-field"]
    (problem,) = problems
    assert problem.severity == "error"
    assert problem.field == field
    assert problem.hint is not None and hint in problem.hint
    assert consequence in problem.message
    assert "kube-apiserver ignores it" in problem.message


def test_lenient_mode_loads_like_the_apiserver() -> None:
    loaded = policy("rules:\n- level: None\n  verb: [get]\n  users: [a]\n", strict=False)
    assert loaded.rules[0].verbs == ()
    (warning,) = loaded.warnings
    assert (warning.severity, warning.field, warning.line) == ("warning", "rules[0].verb", 5)
    assert "verb" not in json.dumps(loaded.to_dict()["rules"][0]).replace("verbs", "")


def test_wrong_case_level_is_dropped_then_required() -> None:
    problems = problems_of(HEADER + "rules:\n- Level: Metadata\n", strict=False)
    errors = [p.apiserver_text for p in problems if p.severity == "error"]
    assert errors == ["rules[0].level: Required value"]
    (warning,) = [p for p in problems if p.severity == "warning"]
    assert warning.hint == 'keys are case-sensitive: write "level"'
    assert "catch-all" not in warning.message


@pytest.mark.parametrize("strict", [True, False])
def test_duplicate_keys_last_wins(strict: bool) -> None:  # noqa: FBT001
    text = HEADER + "rules:\n- level: None\n  level: Metadata\n"
    if strict:
        (problem,) = problems_of(text)
        assert (problem.code, problem.field) == ("duplicate-field", "rules[0].level")
        assert problem.line == 5
        assert problem.hint == "remove one of them (first at line 4)"
        assert "keeps only the last value" in problem.message
    else:
        loaded = Policy.from_yaml(text, strict=False)
        assert loaded.rules[0].level is Level.METADATA
        assert [w.code for w in loaded.warnings] == ["duplicate-field"]


def test_version_wording_silent_before_1_26() -> None:
    text = HEADER + "rules:\n- level: None\n  verb: [get]\n"
    old = problems_of(text, target_version="1.25")[0]
    new = problems_of(text, target_version="1.26")[0]
    assert "ignores it silently" in old.message
    assert "1.26+ only logs a warning" in new.message


def test_omit_managed_fields_is_unknown_before_1_23() -> None:
    text = HEADER + "omitManagedFields: true\nrules:\n- level: None\n"
    (problem,) = problems_of(text, target_version="1.22")
    assert problem.code == "unknown-field" and "added in 1.23" in problem.message
    lenient = Policy.from_yaml(text, target_version="1.22", strict=False)
    assert lenient.omit_managed_fields is False
    assert Policy.from_yaml(text, target_version="1.23").omit_managed_fields is True


def test_all_problems_reported_at_once_in_order() -> None:
    text = HEADER + "omitStages: [Foo]\nrules:\n- level: Bogus\n  verb: [get]\n- {}\n"
    problems = problems_of(text)
    assert [(p.code, p.field) for p in problems] == [
        ("unknown-field", "rules[0].verb"),
        ("validation", "omitStages[0]"),
        ("validation", "rules[0].level"),
        ("validation", "rules[1].level"),
    ]


# ------------------------------------------------------------------------ golden: brief-typos
BRIEF_TYPOS_GOLDEN = """\
invalid audit policy: 2 problems
  {f}:9: rules[0].verb: unknown field "verb": kube-apiserver ignores it (1.26+ only logs a \
warning), so this rule would match every verb (did you mean "verbs"?)
  {f}:17: rules[1].resources[0].groups: unknown field "groups": kube-apiserver ignores it \
(1.26+ only logs a warning), so this entry matches the core group ("") only because that is \
the default (did you mean "group"?)"""


def test_brief_typos_golden() -> None:
    path = FIXTURES / "brief-typos.yaml"
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    assert str(info.value) == BRIEF_TYPOS_GOLDEN.format(f=path)
    verb, groups = info.value.problems
    assert (verb.field, verb.line, verb.fix) == ("rules[0].verb", 9, 'rename "verb" to "verbs"')
    assert groups.field.endswith(".groups")


def test_brief_typos_lenient_matches_every_verb() -> None:
    loaded = Policy.load(FIXTURES / "brief-typos.yaml", strict=False, target_version="1.20")
    assert len(loaded.warnings) == 2
    assert "ignores it silently" in loaded.warnings[0].message
    decision = loaded.evaluate(verb="get", resource="pods", namespace="prod-namespace",
                               name="webapp-pod")
    assert decision.level is Level.REQUEST_RESPONSE


# ------------------------------------------------------------------------ model round trips
def test_brief_shape() -> None:
    loaded = Policy.load(FIXTURES / "brief.yaml")
    assert loaded.omit_stages == {Stage.REQUEST_RECEIVED}
    first, second = loaded.rules
    assert first.level is Level.REQUEST_RESPONSE and first.verbs == ("delete",)
    assert first.namespaces == ("prod-namespace",)
    assert first.resources[0].resources == ("pods",)
    assert first.resources[0].resource_names == ("webapp-pod",)
    assert second.level is Level.METADATA and second.resources[0].resources == ("secrets",)
    assert second.resources[0].group == ""
    assert loaded.source == str(FIXTURES / "brief.yaml")
    assert loaded.text == (FIXTURES / "brief.yaml").read_text()
    assert loaded.rule_line(0) == 10 and loaded.rule_line(1) == 19


@pytest.mark.parametrize("name", ["brief.yaml", "cis-baseline.yaml", "gke-style.yaml"])
def test_fixture_round_trip_through_to_dict(name: str) -> None:
    loaded = Policy.load(FIXTURES / name)
    again = Policy.from_dict(loaded.to_dict(), source="dict")
    assert [dataclasses.replace(r, line=None) for r in again.rules] == [
        dataclasses.replace(r, line=None) for r in loaded.rules
    ]
    json.dumps(loaded.to_dict())
    assert again.text.startswith("apiVersion: audit.k8s.io/v1\n")


def test_from_dict_reports_lines_of_its_dump() -> None:
    doc = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
           "rules": [{"level": "None"}, {"level": "Metadata", "verb": ["get"]}]}
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(doc, source="<dict>")
    (problem,) = info.value.problems
    assert (problem.file, problem.field, problem.line) == ("<dict>", "rules[1].verb", 6)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.load(tmp_path / "nope.yaml")
    assert "failed to read file path" in str(info.value)
    assert "no such file or directory" in str(info.value)

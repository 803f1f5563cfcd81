"""``kaudit lint``: problems with file:line, exit codes, JSON and SARIF, apiserver flags."""

from __future__ import annotations

import json

from pytest_kaudit.cli.lint import parse_flags_file

TYPO = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
  verb: ["get"]
  resources:
  - group: ""
    resources: ["secrets"]
- level: Metadata
"""

INVALID = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Bogus
  nonResourceURLs: ["x"]
"""

SHADOWED = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
- level: None
  nonResourceURLs: ["/healthz*"]
"""


def test_clean_policy_exits_0(kaudit, data):
    r = kaudit("lint", data / "policy-old.yaml")
    assert r.code == 0
    assert r.out == f"{data / 'policy-old.yaml'}: no problems found\n"
    assert r.err == (
        "kaudit: note: no --target-version given: checking with kube-apiserver 1.37 semantics "
        "(the newest modelled); pass --target-version 1.XX for your cluster's version\n"
    )


def test_unknown_field_is_reported_with_line(kaudit, write):
    p = write("typo.yaml", TYPO)
    r = kaudit("lint", p)
    assert r.code == 1
    lines = r.out.splitlines()
    assert lines[0].startswith(f'{p}:5: rules[0].verb: unknown field "verb"')
    assert lines[0].endswith('(did you mean "verbs"?)')
    assert lines[-1] == f"{p}: 1 error, 0 warnings"


def test_validation_errors_in_apiserver_order(kaudit, write):
    p = write("invalid.yaml", INVALID)
    r = kaudit("lint", p)
    assert r.code == 1
    assert r.out.splitlines() == [
        f'{p}:4: rules[0].level: Unsupported value: "Bogus": supported values: "None", "Metadata", '
        '"Request", "RequestResponse"',
        f'{p}:5: rules[0].nonResourceURLs[0]: Invalid value: "x": non-resource URL rules must begin '
        "with a '/' character",
        f"{p}: 2 errors, 0 warnings",
    ]


def test_warnings_only_and_fail_on_error(kaudit, write):
    p = write("shadowed.yaml", SHADOWED)
    r = kaudit("lint", p)
    assert r.code == 1
    assert f"{p}:6: rules[1]: rule 1 is unreachable" in r.out
    assert r.out.splitlines()[-1].endswith(" 0 errors, 2 warnings")
    assert kaudit("lint", p, "--fail-on", "error").code == 0


def test_non_policy_yaml_is_a_finding_with_the_apiserver_message(kaudit, write):
    p = write("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\n")
    r = kaudit("lint", p)
    assert r.code == 1
    assert 'failed decoding: no kind "Deployment" is registered for version "apps/v1"' in r.out


def test_missing_policy_is_an_input_error(kaudit, tmp_path):
    r = kaudit("lint", tmp_path / "nope.yaml")
    assert r.code == 2
    assert r.out == ""
    assert r.err == f"kaudit: error: policy '{tmp_path / 'nope.yaml'}': no such file\n"


def test_json_output(kaudit, write):
    p = write("typo.yaml", TYPO)
    r = kaudit("lint", p, "--format", "json")
    doc = json.loads(r.out)
    assert r.code == 1
    assert doc["errors"] == 1 and doc["warnings"] == 0
    (problem,) = doc["problems"]
    assert problem["code"] == "unknown-field"
    assert (problem["file"], problem["line"], problem["field"]) == (str(p), 5, "rules[0].verb")


def test_sarif_points_at_policy_lines(kaudit, write, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write("invalid.yaml", INVALID)
    r = kaudit("lint", "invalid.yaml", "--format", "sarif")
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    run = doc["runs"][0]
    assert run["tool"]["driver"]["name"] == "kaudit"
    results = run["results"]
    assert [res["level"] for res in results] == ["error", "error"]
    loc = results[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "invalid.yaml", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 4}
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert all(res["ruleId"] in rule_ids for res in results)
    assert rule_ids[results[0]["ruleIndex"]] == results[0]["ruleId"]


def test_clean_sarif_has_empty_results(kaudit, data):
    doc = json.loads(kaudit("lint", data / "policy-old.yaml", "--format", "sarif").out)
    assert doc["runs"][0]["results"] == []


def test_flags_from_command_line(kaudit, data):
    r = kaudit(
        "lint",
        data / "policy-old.yaml",
        "--flag",
        "audit-log-maxage=3",
        "--flag",
        "audit-policy-file=/etc/p.yaml",
        "--flag=--audit-log-path=/var/log/a.log",
    )
    assert r.code == 1
    assert "audit-log-maxage" in r.out


def test_flag_without_value_is_a_usage_error(kaudit, data):
    r = kaudit("lint", data / "policy-old.yaml", "--flag", "audit-log-maxage")
    assert r.code == 2
    assert r.err == "kaudit: error: --flag 'audit-log-maxage': expected NAME=VALUE\n"


def test_flags_file_one_per_line(write):
    p = write(
        "flags.txt", "# apiserver\n--audit-log-maxage=30\n--audit-log-path /var/log/a.log\n--v=2\n"
    )
    source = parse_flags_file(str(p))
    assert source.form == "flags"
    assert [(a.text, a.line) for a in source.args] == [
        ("--audit-log-maxage=30", 2),
        ("--audit-log-path", 3),
        ("/var/log/a.log", 3),
        ("--v=2", 4),
    ]


def test_flags_file_static_pod_manifest(write):
    p = write(
        "kube-apiserver.yaml",
        """\
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - name: kube-apiserver
    command:
    - kube-apiserver
    - --audit-policy-file=/etc/kubernetes/audit.yaml
    - --audit-log-maxbackup=10
    args: ["--audit-log-maxsize=100"]
""",
    )
    source = parse_flags_file(str(p))
    assert source.form == "static-pod"
    assert [(a.text, a.line) for a in source.args] == [
        ("--audit-policy-file=/etc/kubernetes/audit.yaml", 9),
        ("--audit-log-maxbackup=10", 10),
        ("--audit-log-maxsize=100", 11),
    ]
    assert source.notes == ()


def test_flags_file_errors(write, kaudit, data):
    pod = write("pod.yaml", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: nginx\n")
    r = kaudit("lint", data / "policy-old.yaml", "--apiserver-flags", pod)
    assert r.code == 2
    assert r.err == (
        f"kaudit: error: apiserver flags file '{pod}': a Pod manifest without a kube-apiserver "
        "container (no container is named kube-apiserver or runs it)\n"
    )
    r = kaudit("lint", data / "policy-old.yaml", "--apiserver-flags", data / "missing.txt")
    assert r.code == 2
    assert "apiserver flags file" in r.err and "no such file" in r.err


def test_stray_word_is_the_apiserver_refusal_not_a_usage_error(kaudit, write, data):
    p = write("flags.txt", "kube-apiserver --audit-log-maxage=30 oops\n")
    r = kaudit("lint", data / "policy-old.yaml", "--apiserver-flags", p, "--target-version", "1.30")
    assert r.code == 1
    assert f'{p}:1: "kube-apiserver" does not take any arguments, got ["oops"]' in r.out

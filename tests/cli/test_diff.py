"""``kaudit diff``: readable change classes, secret-body escalations, exit codes."""

from __future__ import annotations

import json

from pytest_kaudit.cli.diff import diff_classes
from pytest_kaudit.policy import Policy


def test_golden_output(kaudit, data):
    r = kaudit("diff", data / "diff-old.yaml", data / "diff-new.yaml")
    assert r.code == 1
    assert r.err == ""
    assert (
        r.out
        == """\
create, update on any resource except configmaps, secrets in namespace prod by anyone: Request → RequestResponse (rule 2 → rule 2)
  [!] newly logs request bodies of tokenreviews, serviceaccounts/token (level RequestResponse): these carry credentials
create, update secrets in any namespace except prod by anyone: Metadata → Request (rule 1 → rule 3)
  [!] newly logs request bodies of secrets (level Request): these carry credentials
create, update secrets in namespace prod by anyone: Metadata → RequestResponse (rule 1 → rule 2)
  [!] newly logs request bodies of secrets (level RequestResponse): these carry credentials
any verb except create, get, list, update, watch on any resource except configmaps, secrets in any namespace by anyone: Metadata (omit none) → Metadata (omit RequestReceived) (rule 3 → rule 4)
any verb except create, get, list, update, watch on secrets in any namespace by anyone: Metadata (omit none) → Metadata (omit RequestReceived) (rule 1 → rule 4)
get, list, watch on any resource except configmaps, secrets in any namespace by anyone not in system:nodes: Metadata (omit none) → Metadata (omit RequestReceived) (rule 3 → rule 4)
get, list, watch secrets in any namespace by anyone not in system:nodes: Metadata (omit none) → Metadata (omit RequestReceived) (rule 1 → rule 4)
any verb except create, get, list, update, watch on any non-resource URL by anyone: Metadata (omit none) → Metadata (omit RequestReceived) (rule 3 → rule 4)
get, list, watch on any non-resource URL by anyone not in system:nodes: Metadata (omit none) → Metadata (omit RequestReceived) (rule 3 → rule 4)
9 changed request classes, 3 newly logging secret bodies
"""
    )


def test_simple_pair(kaudit, data):
    r = kaudit("diff", data / "policy-old.yaml", data / "policy-new.yaml")
    assert r.code == 1
    assert r.out.splitlines() == [
        "any verb on secrets in any namespace by anyone: Metadata → RequestResponse (rule 2 → rule 2)",
        "  [!] newly logs request bodies of secrets (level RequestResponse): these carry credentials",
        "any verb on /version by anyone: None → Metadata (rule 1 → rule 5)",
        "2 changed request classes, 1 newly logging secret bodies",
    ]


def test_identical_policies_exit_0(kaudit, data):
    p = data / "policy-old.yaml"
    r = kaudit("diff", p, p)
    assert r.code == 0
    assert r.out == f"no differences: {p} and {p} decide every request alike\n"


def test_reordering_that_changes_nothing_is_not_a_difference():
    a = Policy.from_yaml(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "- level: None\n  users: [bob]\n- level: None\n  nonResourceURLs: ['/healthz*']\n- level: Metadata\n"
    )
    b = Policy.from_yaml(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "- level: None\n  nonResourceURLs: ['/healthz*']\n- level: None\n  users: [bob]\n- level: Metadata\n"
    )
    assert diff_classes(a, b) == []


def test_json_output_exposes_classes(kaudit, data):
    r = kaudit("diff", data / "policy-old.yaml", data / "policy-new.yaml", "--format", "json")
    doc = json.loads(r.out)
    assert r.code == 1
    first = doc["changes"][0]
    assert first["old"] == {"level": "Metadata", "omit_stages": ["RequestReceived"], "rule": 2}
    assert first["new"] == {
        "level": "RequestResponse",
        "omit_stages": ["RequestReceived"],
        "rule": 2,
    }
    assert first["sensitive"] == ["secrets"]


def test_missing_and_invalid_policies_are_input_errors(kaudit, data, write):
    r = kaudit("diff", data / "policy-old.yaml", data / "nope.yaml")
    assert r.code == 2
    assert r.err == f"kaudit: error: policy '{data / 'nope.yaml'}': no such file\n"
    bad = write("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\n")
    r = kaudit("diff", bad, data / "policy-old.yaml")
    assert r.code == 2
    assert r.err.startswith(f"kaudit: error: policy '{bad}' is not a valid audit policy:\n  ")
    assert 'no kind "Deployment" is registered' in r.err

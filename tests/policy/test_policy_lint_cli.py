"""``kaudit lint`` run as a user runs it: never "no problems found" for rules that never match."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ISSUE_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  verbs: ["GET", "Watch"]
- level: None
  resources: [{group: "", resources: ["secret", "Pods"]}]
- level: None
  users: ["system:serviceaccount:kube-system:*"]
- level: None
  namespaces: ["kube-*"]
- level: RequestResponse
---
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
"""


def kaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_kaudit", *args], capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def issue_policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(ISSUE_POLICY)
    return path


def test_lint_reports_every_never_matching_value(issue_policy: Path) -> None:
    done = kaudit("lint", "--format", "json", str(issue_policy))
    assert done.returncode == 1, done.stderr
    found = [(p["code"], p["line"], p["field"]) for p in json.loads(done.stdout)["problems"]]
    for expected in [
        ("unknown-verb", 6, "rules[0].verbs[0]"),
        ("unknown-verb", 6, "rules[0].verbs[1]"),
        ("unknown-resource", 8, "rules[1].resources[0].resources[0]"),
        ("unknown-resource", 8, "rules[1].resources[0].resources[1]"),
        ("literal-wildcard", 10, "rules[2].users[0]"),
        ("literal-wildcard", 12, "rules[3].namespaces[0]"),
        ("ignored-document", 14, ""),
    ]:
        assert expected in found


def test_lint_text_output_has_hints_and_no_all_clear(issue_policy: Path) -> None:
    done = kaudit("lint", str(issue_policy))
    assert done.returncode == 1
    assert "no problems found" not in done.stdout
    assert f'{issue_policy}:8: rules[1].resources[0].resources[0]: "secret" is not a resource ' \
           'of the core group ("") in Kubernetes 1.37, so it never matches (did you mean ' \
           '"secrets"?)' in done.stdout
    assert "document 2 (line 14) is ignored" in done.stdout
    assert "meanwhile the first document logs Secrets at RequestResponse" in done.stdout


def test_lint_judges_resources_by_the_target_version(tmp_path: Path) -> None:
    path = tmp_path / "psp.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
                    "rules:\n- level: None\n  resources: [{group: policy, resources: "
                    "[podsecuritypolicies]}]\n- level: Metadata\n")
    assert kaudit("lint", "--target-version", "1.24", str(path)).returncode == 0
    newer = kaudit("lint", "--target-version", "1.25", str(path))
    assert newer.returncode == 1
    assert "(removed in 1.25)" in newer.stdout


def test_lint_refuses_an_alias_bomb_quickly(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    levels = ["a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    levels += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 10)]
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\n" + "\n".join(levels)
                    + "\nrules:\n- level: Metadata\n")
    done = kaudit("lint", str(path))
    assert done.returncode == 1
    assert "document contains excessive aliasing" in done.stdout

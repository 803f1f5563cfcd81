"""``kaudit scaffold`` output: named after the rules, formatted, stable, and careful with files."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_kaudit.policy import Policy
from pytest_kaudit.scaffold import render_module, rule_test_name
from pytest_kaudit.witness import witnesses
from tests.conftest import POLICIES

ALL = sorted(POLICIES.glob("*.yaml"))


def _load(path: Path) -> Policy:
    return Policy.load(path, strict=path.name != "brief-typos.yaml")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_one_test_per_reachable_rule_with_its_summary_and_line(path: Path) -> None:
    policy = _load(path)
    text, found = render_module(policy, policy_ref=path.name, policy_label=path.name)
    tree = ast.parse(text)
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    width = max(2, len(str(len(policy.rules) - 1)))
    for w in found:
        if w.status == "reachable":
            assert rule_test_name(w.index, w.rule, width) in names
            line = policy.rule_line(w.index)
            assert f"# rules[{w.index}] ({path.name}:{line}): level" in text
        else:
            where = f"rules[{w.index}] ({path.name}:{policy.rule_line(w.index)}) is"
            assert where in " ".join(line[2:] for line in text.splitlines())
    rule_tests = [n for n in names if n.startswith("test_rule_") and "_near_miss_" not in n]
    assert len(rule_tests) == sum(w.status == "reachable" for w in found)
    assert len(names) == len(set(names))


def test_names_say_what_the_rule_does() -> None:
    policy = Policy.from_yaml("""
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources: [{group: "", resources: ["endpoints"]}]
  - level: None
    nonResourceURLs: ["/healthz*"]
  - level: Request
    userGroups: ["system:nodes"]
    namespaces: ["kube-node-lease"]
    resources: [{group: "coordination.k8s.io", resources: ["leases"]}]
  - level: Metadata
    resources: [{group: "", resources: ["secrets"]}]
  - level: RequestResponse
""")
    assert [rule_test_name(i, r, 2) for i, r in enumerate(policy.rules)] == [
        "test_rule_00_kube_proxy_watch_endpoints_not_logged",
        "test_rule_01_healthz_not_logged",
        "test_rule_02_nodes_leases_in_kube_node_lease_with_request",
        "test_rule_03_secrets_metadata_only",
        "test_rule_04_everything_else_with_bodies",
    ]


def test_only_the_public_fixture_api_is_used() -> None:
    policy = _load(POLICIES / "gke-autopilot-style.yaml")
    text, _ = render_module(policy, policy_ref="p.yaml", policy_label="p.yaml")
    tree = ast.parse(text)
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                for a in n.names}
    imported |= {(a.name, "") for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}
    assert not any("pytest_kaudit" in (m or "") for m, _ in imported)
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "kaudit"}
    assert used == {"request", "expect"}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_output_is_stable_and_formatted(path: Path) -> None:
    policy = _load(path)
    first, _ = render_module(policy, policy_ref=path.name, policy_label=path.name)
    again, _ = render_module(_load(path), policy_ref=path.name, policy_label=path.name)
    assert first == again
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    proc = subprocess.run([ruff, "format", "--isolated", "--diff", "-"], input=first,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


def test_writes_the_module_next_to_a_relative_policy_path(kaudit_cli, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    shutil.copy(POLICIES / "brief.yaml", policy)
    out = tmp_path / "tests" / "test_audit_policy.py"
    r = kaudit_cli("scaffold", policy, "-o", out)
    assert r.code == 0, r.err
    assert r.out.startswith(f"wrote {out}: 2 rule test(s)")
    assert 'pytestmark = pytest.mark.kaudit(policy="../policy.yaml")' in out.read_text()


def test_never_overwrites_without_force(kaudit_cli, tmp_path: Path) -> None:
    out = tmp_path / "test_mine.py"
    out.write_text("# my own tests\n")
    r = kaudit_cli("scaffold", POLICIES / "brief.yaml", "-o", out)
    assert r.code == 2
    assert "exists; pass --force" in r.err
    assert out.read_text() == "# my own tests\n"
    assert kaudit_cli("scaffold", POLICIES / "brief.yaml", "-o", out, "--force").code == 0
    assert "def test_rule_00_" in out.read_text()


def test_stdout_and_unreachable_rules_are_listed(kaudit_cli) -> None:
    r = kaudit_cli("scaffold", POLICIES / "openshift-style.yaml", "-o", "-")
    assert r.code == 0
    comments = " ".join(line[2:] for line in r.out.splitlines() if line.startswith("# "))
    assert "openshift-style.yaml:59) is unreachable: every request it matches is" in comments
    compile(r.out, "generated", "exec")


def test_bad_policy_is_refused_with_its_line(kaudit_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Loud\n")
    r = kaudit_cli("scaffold", bad, "-o", tmp_path / "t.py")
    assert r.code == 2
    assert "bad.yaml:4" in r.err
    assert not (tmp_path / "t.py").exists()


def test_witnesses_of_fixture_policies_are_all_sendable() -> None:
    for path in ALL:
        for w in witnesses(_load(path)):
            assert w.status != "unsendable", (path.name, w.index, w.reason)

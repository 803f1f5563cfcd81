"""``kaudit verify`` on the real kube-apiserver (local backend).

Every rule of every policy in ``fixtures/policies`` is OK. A cluster that runs a policy other
than the one given (one rule's level changed, as on a cluster nobody redeployed) shows exactly
that rule as MISMATCH, with the events as evidence and the fixture's policy-mismatch lines.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_kaudit.backends.base import ClusterSpec
from pytest_kaudit.backends.local import LocalBackend
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.cli import main
from pytest_kaudit.cli.verify import junit, text_report
from pytest_kaudit.policy import Policy
from pytest_kaudit.witness import witnesses
from pytest_kaudit.witness.verify import verify_witnesses
from tests.conftest import POLICIES

STRICT = sorted(p for p in POLICIES.glob("*.yaml") if p.name != "brief-typos.yaml")


@pytest.mark.parametrize("path", STRICT, ids=lambda p: p.stem)
def test_every_reachable_rule_is_ok(control_plane_binaries: ControlPlaneBinaries,
                                    path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", str(path), "--format", "json"])
    out = capsys.readouterr()
    report = json.loads(out.out)
    policy = Policy.load(path)
    assert [r["rule"] for r in report["rules"]] == list(range(len(policy.rules)))
    bad = [r for r in report["rules"] if r["status"] not in ("OK", "UNREACHABLE")]
    assert bad == [], out.err
    assert code == 0
    for row in report["rules"]:
        if row["status"] == "OK":
            assert row["checks"][0]["role"] == "witness"
            assert row["checks"][0]["rule"] == row["rule"]


def test_lenient_policy_is_ok(control_plane_binaries: ControlPlaneBinaries,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", str(POLICIES / "brief-typos.yaml"), "--lenient"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[-1].startswith("2 OK, 0 MISMATCH, 0 UNREACHABLE, 0 NOT SENDABLE")


def test_a_cluster_running_another_policy_shows_the_rule_that_differs(
        control_plane_binaries: ControlPlaneBinaries) -> None:
    believed = Policy.load(POLICIES / "rke2-style.yaml")
    deployed = believed.to_dict()
    deployed["rules"][10]["level"] = "Request"  # Secrets and ConfigMaps: bodies now logged
    backend = LocalBackend()
    handle = backend.start(ClusterSpec(Policy.from_dict(deployed)))
    try:
        rows = verify_witnesses(believed, witnesses(believed), handle)
    finally:
        backend.stop(handle)
    # rule 10's witness, and the near misses of other rules that fall through to rule 10
    differing = [c for r in rows for c in r.checks if c.disagreements]
    assert {c.rule_index for c in differing} == {10}
    through = {r.index for r in rows for c in r.checks[1:] if c.rule_index == 10}
    assert {r.index for r in rows if r.status == "MISMATCH"} == {10} | through
    assert all(r.status in ("OK", "UNREACHABLE") for r in rows if r.index not in {10} | through)
    row = rows[10]
    witness = row.checks[0]
    assert witness.role == "witness"
    assert "level Request, predicted Metadata" in witness.disagreements
    assert any("ResponseComplete at Request" in e for e in witness.evidence)
    assert any("the policy predicts Metadata (rules[10])" in e for e in witness.evidence)

    text = text_report("rke2-style.yaml", "local", rows, 1.0)
    assert "rules[10] rke2-style.yaml:" in text and "MISMATCH" in text
    n = len(through) + 1
    assert text.splitlines()[-1].startswith(f"{18 - n} OK, {n} MISMATCH, 0 UNREACHABLE")
    suite = ET.fromstring(junit("rke2-style.yaml", rows, 1.0).split("\n", 1)[1])
    assert suite.get("failures") == str(n)
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert f"rules[10] {believed.rules[10].summary()}" in failed


IMPERSONATION_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
    "rules": [
        {"level": "None", "users": ["alice"], "resources": [{"resources": ["secrets"]}]},
        {"level": "RequestResponse", "userGroups": ["devs"],
         "resources": [{"resources": ["configmaps"]}]},
        {"level": "Metadata"},
    ],
}


def test_without_minted_credentials_the_report_says_impersonated(
        control_plane_binaries: ControlPlaneBinaries, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    policy = Policy.from_dict(IMPERSONATION_POLICY)
    path = tmp_path / "policy.yaml"
    path.write_text(policy.text)
    backend = LocalBackend()
    handle = backend.start(ClusterSpec(policy))
    try:  # the same cluster seen as an `existing` one: no CA key, so the admin impersonates
        code = main(["verify", str(path), "--backend", "existing",
                     "--kubeconfig", str(handle.kubeconfig),
                     "--log-path", handle.apiserver_flags["audit-log-path"]])
    finally:
        backend.stop(handle)
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    lines = out.out.splitlines()
    rows = {line.split()[0]: line for line in lines if line.startswith("rules[")}
    assert "NOT SENDABLE" in rows["rules[00]"] and "NOT SENDABLE" in rows["rules[01]"]
    assert "OK" in rows["rules[02]"]
    assert any("cannot mint credentials for 'alice'; the admin impersonates it, and the "
               "policy matches the admin, whom rules[2] decides" in line for line in lines)
    assert any("sent by the admin impersonating 'kaudit:other-user'" in line for line in lines)

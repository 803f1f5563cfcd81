"""``kaudit kind-config``: the generated kind config, printed for users to inspect or reuse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_kaudit.cli import main

POLICIES = Path(__file__).resolve().parents[2] / "fixtures" / "policies"


def test_prints_a_config_with_the_audit_wiring(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    code = main(["kind-config", str(POLICIES / "brief.yaml"), "--host-dir", str(tmp_path),
                 "--flag", "audit-log-maxage=30", "--write-policy"])
    out = capsys.readouterr().out
    assert code == 0
    config = yaml.safe_load(out)
    assert config["kind"] == "Cluster"
    mounts = config["nodes"][0]["extraMounts"]
    assert {m["hostPath"] for m in mounts} == {str(tmp_path / "policy"), str(tmp_path / "log")}
    patch = yaml.safe_load(config["nodes"][0]["kubeadmConfigPatches"][0])
    assert "apiVersion" not in patch  # the portable, unversioned spelling
    assert patch["apiServer"]["extraArgs"]["audit-log-maxage"] == "30"
    assert (tmp_path / "policy" / "policy.yaml").exists()


def test_a_bad_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kind-config", str(POLICIES / "brief.yaml"), "--flag", "nope"]) == 2
    assert "--flag 'nope' is not NAME=VALUE" in capsys.readouterr().err

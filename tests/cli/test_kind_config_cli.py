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


def test_base_config_with_a_yaml_error_names_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("kind: Cluster\nnodes:\n- role: control-plane\n  extraMounts: [\n")
    assert main(["kind-config", str(POLICIES / "brief.yaml"), "--base-config", str(base)]) == 2
    err = capsys.readouterr().err
    assert f"kind config {str(base)!r} line 5: not valid YAML" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: kind.x-k8s.io/v1alpha3\n", "base kind config has apiVersion"),
        (
            "nodes:\n- role: control-plane\n  extraMounts:\n"
            "  - {hostPath: /x, containerPath: /var/log/kubernetes/kaudit}\n",
            "which kaudit owns",
        ),
    ],
)
def test_base_config_kind_would_reject_is_an_input_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(text)
    code = main(["kind-config", str(POLICIES / "brief.yaml"), "--base-config", str(base),
                 "--host-dir", str(tmp_path / "h"), "--write-policy"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"kind config {str(base)!r}: " in err and message in err
    assert not (tmp_path / "h").exists()  # nothing written for a config that cannot work


def test_write_policy_prepares_dirs_like_the_backend(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["kind-config", str(POLICIES / "brief.yaml"), "--host-dir", str(tmp_path / "h"),
                 "--write-policy"]) == 0
    log_dir = tmp_path / "h" / "log"
    assert oct(log_dir.stat().st_mode & 0o777) == "0o755"
    assert oct((log_dir / "audit.log").stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "h" / "policy" / "policy.yaml").stat().st_mode & 0o777) == "0o644"
    (log_dir / "audit.log").write_text("kept\n")  # a second run never truncates a live log
    assert main(["kind-config", str(POLICIES / "brief.yaml"), "--host-dir", str(tmp_path / "h"),
                 "--write-policy"]) == 0
    assert (log_dir / "audit.log").read_text() == "kept\n"

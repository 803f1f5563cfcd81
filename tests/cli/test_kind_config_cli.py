"""``kaudit kind-config``: the generated kind config, printed for users to inspect or reuse."""

from __future__ import annotations

import time
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


IMAGE = "kindest/node:v1.31.12@sha256:" + "a" * 64


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str,
        base: str | None = None) -> tuple[int, str, str]:
    argv = ["kind-config", str(POLICIES / "brief.yaml"), "--host-dir", str(tmp_path / "h"),
            *extra]
    if base is not None:
        (tmp_path / "base.yaml").write_text(base)
        argv += ["--base-config", str(tmp_path / "base.yaml")]
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_node_image_is_set_on_every_node_workers_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = "nodes:\n- role: control-plane\n- role: worker\n- role: worker\n  image: other:v1\n"
    code, out, err = run(capsys, tmp_path, "--node-image", IMAGE, base=base)
    assert code == 0, err
    nodes = yaml.safe_load(out)["nodes"]
    assert [n["role"] for n in nodes] == ["control-plane", "worker", "worker"]
    assert [n.get("image") for n in nodes] == [IMAGE] * 3


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (
            "kind: Cluster\nnodez:\n- role: control-plane\n",
            "base.yaml:2: nodez: unknown field: kind has no 'nodez' in Cluster "
            "(did you mean nodes?)",
        ),
        (
            "nodes:\n- role: control-plane\n  extraMount: []\n",
            "base.yaml:3: nodes[0].extraMount: unknown field: kind has no 'extraMount' in Node "
            "(did you mean extraMounts?)",
        ),
        (
            "nodes:\n- role: controlplane\n",
            "base.yaml:2: nodes[0].role: 'controlplane' is not one of control-plane, worker "
            "(did you mean control-plane?)",
        ),
        (
            "nodes:\n- role: control-plane\n  image: kindest/Node:v1.31.12\n",
            "base.yaml:3: nodes[0].image: image 'kindest/Node:v1.31.12': repository names "
            "must be lower-case",
        ),
        (
            "nodes:\n- extraMounts:\n  - {hostPath: /a, containerPath: /b, readOnly: yes please}\n",
            "base.yaml:3: nodes[0].extraMounts[0].readOnly: must be true or false, not "
            "'yes please'",
        ),
    ],
    ids=["unknown-top-field", "unknown-node-field", "bad-role", "bad-image", "bad-bool"],
)
def test_base_config_kind_refuses_is_exit_2_with_file_line_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base: str, expected: str
) -> None:
    code, out, err = run(capsys, tmp_path, "--write-policy", base=base)
    assert code == 2 and out == ""
    assert expected in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "h").exists()


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("audit-log-maxage=-1", "--flag audit-log-maxage: --audit-log-maxage -1 can't be a "
                                "negative number"),
        ("audit-log-format=xml", "--flag audit-log-format: invalid audit log format xml"),
        ("audit-log-maxsize=ten", 'invalid argument "ten" for "--audit-log-maxsize" flag'),
        ("audit-log-maxage5=1", 'unknown flag: --audit-log-maxage5 (did you mean '
                                '"--audit-log-maxage"?)'),
    ],
)
def test_flag_values_kube_apiserver_refuses_are_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flag: str, expected: str
) -> None:
    code, out, err = run(capsys, tmp_path, "--flag", flag)
    assert code == 2 and out == ""
    assert expected in err, err


def test_fatal_flag_value_in_a_base_config_patch_names_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = (
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nkubeadmConfigPatches:\n- |\n"
        "  kind: ClusterConfiguration\n  apiServer:\n    extraArgs:\n"
        '      audit-log-maxage: "-1"\n'
    )
    code, out, err = run(capsys, tmp_path, base=base)
    assert code == 2 and out == ""
    assert ("base.yaml:4: kubeadmConfigPatches[0]: --audit-log-maxage -1 can't be a negative "
            "number") in err, err


@pytest.mark.parametrize(
    "image",
    [
        "kindest/node:v1.31.12@sha256:abc",  # digest too short
        "kindest/node:v1.31.12 ",
        "kindest/node::v1.31",
        "kindest/Node:v1.31.12",
    ],
)
def test_malformed_node_image_is_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, image: str
) -> None:
    code, out, err = run(capsys, tmp_path, "--node-image", image)
    assert code == 2 and out == ""
    assert f"--node-image: image {image!r}" in err, err


PINNED_V1BETA3 = (
    "kubeadmConfigPatches:\n- |\n  apiVersion: kubeadm.k8s.io/v1beta3\n"
    "  kind: ClusterConfiguration\n  apiServer:\n    certSANs: [my.host]\n"
)


def test_pinned_v1beta3_patch_warns_where_kind_032_would_drop_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image_136 = "kindest/node:v1.36.1@sha256:" + "b" * 64
    code, out, err = run(capsys, tmp_path, "--node-image", image_136, base=PINNED_V1BETA3)
    assert code == 0, err
    assert yaml.safe_load(out)["kubeadmConfigPatches"] == yaml.safe_load(PINNED_V1BETA3)[
        "kubeadmConfigPatches"]  # the user's patch is kept as written
    assert (
        "kaudit: warning: " in err
        and "with kind >= v0.32 and a Kubernetes >= 1.36 node image: kubeadmConfigPatches[0] "
        "declares apiVersion kubeadm.k8s.io/v1beta3 but kind generates kubeadm.k8s.io/v1beta4"
        in err
    ), err
    code, _, err = run(capsys, tmp_path, "--node-image", IMAGE, base=PINNED_V1BETA3)
    assert code == 0 and "warning" not in err  # 1.31: kind generates v1beta3, the patch applies


def test_alias_bomb_base_config_is_refused_quickly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mounts = ", ".join(["&m {hostPath: /a, containerPath: /b}"] + ["*m"] * 999)
    base = f"nodes:\n- &n {{role: worker, extraMounts: [{mounts}]}}\n" + "- *n\n" * 999
    started = time.monotonic()
    code, out, err = run(capsys, tmp_path, base=base)
    assert code == 2 and out == ""
    assert "base.yaml:2: nodes[" in err and "more than 100000 YAML nodes" in err, err
    assert time.monotonic() - started < 10  # bounded work: not a million mounts walked

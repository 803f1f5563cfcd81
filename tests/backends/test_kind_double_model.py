"""The kind TEST DOUBLE's model of kind + kubeadm, checked against docs/kind.md.

These pin the facts the double emulates (so a double that drifted from the doc is caught);
they say nothing about real kind beyond what the doc reports from kind's sources.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"
sys.path.insert(0, str(DOUBLES))
import fakekind_model as model  # noqa: E402

K131 = (1, 31, 12)
K136 = (1, 36, 1)


def docs_for(kind: tuple[int, int, int], k8s: tuple[int, int, int]) -> list[dict]:
    api = model.kubeadm_version(kind, k8s)
    return model.generate_kubeadm({}, name="c", api=api, k8s=k8s)


def args_after(patch: str, kind: tuple[int, int, int], k8s: tuple[int, int, int]) -> dict:
    docs = model.apply_patches(docs_for(kind, k8s), [patch], kind=kind)
    cluster, _ = model.kubeadm_decode(docs, k8s=k8s)
    return model.extra_args(cluster)


UNVERSIONED_MAP = 'kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    audit-log-path: "/l"\n'
V1BETA4_LIST = (
    "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n"
    "  extraArgs:\n  - name: audit-log-path\n    value: /l\n"
)
V1BETA4_MAP = "apiVersion: kubeadm.k8s.io/v1beta4\n" + UNVERSIONED_MAP
UNVERSIONED_LIST = (
    "kind: ClusterConfiguration\napiServer:\n  extraArgs:\n"
    "  - name: audit-log-path\n    value: /l\n"
)


def test_kind_double_unversioned_map_patch_applies_everywhere() -> None:
    for kind in ((0, 20, 0), (0, 31, 0), (0, 32, 0)):
        for k8s in ((1, 27, 3), K131, K136):
            assert args_after(UNVERSIONED_MAP, kind, k8s)["audit-log-path"] == "/l"


def test_kind_double_versioned_patch_for_another_kubeadm_version_is_silently_dropped() -> None:
    assert "audit-log-path" not in args_after(V1BETA4_LIST, (0, 31, 0), K136)
    assert "audit-log-path" not in args_after(V1BETA4_LIST, (0, 32, 0), K131)
    assert args_after(V1BETA4_LIST, (0, 32, 0), K136)["audit-log-path"] == "/l"


def test_kind_double_map_form_in_a_versioned_v1beta4_patch_is_ignored() -> None:
    assert "audit-log-path" not in args_after(V1BETA4_MAP, (0, 32, 0), K136)


def test_kind_double_list_form_on_v1beta3_is_a_kubeadm_decode_error() -> None:
    with pytest.raises(model.KubeadmError, match="cannot unmarshal array"):
        args_after(UNVERSIONED_LIST, (0, 31, 0), K131)


def test_kind_double_unquoted_number_is_a_kubeadm_decode_error() -> None:
    patch = "kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    audit-log-maxsize: 100\n"
    with pytest.raises(model.KubeadmError, match="cannot unmarshal number"):
        args_after(patch, (0, 31, 0), K131)


def test_kind_double_kind_defaults_survive_the_merge() -> None:
    assert "runtime-config" in args_after(UNVERSIONED_MAP, (0, 31, 0), K131)
    assert "runtime-config" in args_after(UNVERSIONED_MAP, (0, 32, 0), K136)


def test_kind_double_v1beta3_is_refused_by_kubeadm_137() -> None:
    with pytest.raises(model.KubeadmError, match='no kind "ClusterConfiguration" is registered'):
        model.kubeadm_decode(docs_for((0, 31, 0), (1, 37, 0)), k8s=(1, 37, 0))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n"
            "  extraMount: []\n",
            "line 5: field extraMount not found in type v1alpha4.Node",
        ),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- extraMounts:\n"
            "  - hostPath: /a\n    containerPath: /b\n    readonly: true\n",
            "line 7: field readonly not found in type v1alpha4.Mount",
        ),
        ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n", "unknown apiVersion"),
    ],
)
def test_kind_double_kind_config_decoding_is_strict(text: str, message: str) -> None:
    with pytest.raises(model.ConfigError, match=message):
        model.decode_kind_config(text)


# --------------------------------------------------------------- patch order and certSANs


def _audit_path_config() -> dict:
    """A cluster JSON 6902 patch and a node merge patch that both set --audit-log-path."""
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "kubeadmConfigPatchesJSON6902": [{
            "group": "kubeadm.k8s.io", "version": "v1beta3", "kind": "ClusterConfiguration",
            "patch": "- op: add\n  path: /apiServer/extraArgs/audit-log-path\n  value: /cluster\n",
        }],
        "nodes": [{"role": "control-plane", "kubeadmConfigPatches": [
            'kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    audit-log-path: "/node"\n'
        ]}],
    }


def test_kind_double_applies_cluster_json6902_before_the_nodes_merge_patches() -> None:
    """kind: cluster merge, cluster JSON 6902, node merge, node JSON 6902 (getKubeadmConfig)."""
    config = _audit_path_config()
    docs = model.patch_node_config(
        docs_for((0, 31, 0), K131), config, config["nodes"][0], kind=(0, 31, 0)
    )
    cluster, _ = model.kubeadm_decode(docs, k8s=K131)
    assert model.extra_args(cluster)["audit-log-path"] == "/node"


def test_kind_double_cli_writes_the_kubeadm_config_in_kinds_patch_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The double's ``kind create cluster`` itself (``-v 2`` prints the patched config)."""
    monkeypatch.setenv("KAUDIT_DOUBLE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("KUBEBUILDER_ASSETS", "TEST_ASSET_KUBE_APISERVER", "TEST_ASSET_ETCD"):
        monkeypatch.delenv(name, raising=False)  # stop after writing the config: no boot
    config = _audit_path_config()
    config["nodes"][0]["image"] = "kindest/node:v1.31.12"
    proc = subprocess.run(
        [str(DOUBLES / "kind"), "create", "cluster", "--name", "order", "-v", "2",
         "--config", "-"],
        input=yaml.safe_dump(config), capture_output=True, text=True, timeout=60, check=False,
    )
    printed = proc.stderr.split("Using the following kubeadm config for node order-control-plane:\n")
    assert len(printed) == 2, proc.stderr
    docs = list(yaml.safe_load_all(printed[1].split(" ✓ Writing configuration")[0]))
    cluster = next(d for d in docs if d and d.get("kind") == "ClusterConfiguration")
    assert cluster["apiServer"]["extraArgs"]["audit-log-path"] == "/node"
    subprocess.run([str(DOUBLES / "kind"), "delete", "clusters", "--all"],
                   capture_output=True, timeout=60, check=False)


SANS = "kind: ClusterConfiguration\napiServer:\n  certSANs: [my.host, localhost]\n"


@pytest.mark.parametrize(
    ("kind", "k8s", "expected"),
    [
        ((0, 31, 0), K131, ["my.host", "localhost"]),  # RFC 7386: the list is replaced
        ((0, 32, 0), K131, ["localhost", "127.0.0.1", "my.host"]),  # v1beta3 target, merged
        ((0, 32, 0), K136, ["localhost", "127.0.0.1", "my.host"]),  # v1beta4 target, merged
    ],
)
def test_kind_double_merges_cert_sans_for_every_version_from_kind_032(
    kind: tuple[int, int, int], k8s: tuple[int, int, int], expected: list[str]
) -> None:
    docs = model.apply_patches(docs_for(kind, k8s), [SANS], kind=kind)
    cluster, _ = model.kubeadm_decode(docs, k8s=k8s)
    assert cluster["apiServer"]["certSANs"] == expected


def test_kind_double_json6902_that_cannot_apply_fails_like_kind() -> None:
    patch = {"group": "kubeadm.k8s.io", "version": "v1beta3", "kind": "ClusterConfiguration",
             "patch": "- op: add\n  path: /apiServer/extraVolumes/-\n  value: {}\n"}
    with pytest.raises(model.ConfigError, match="failed to apply JSON 6902 patch"):
        model.apply_json6902(docs_for((0, 31, 0), K131), [patch], kind=(0, 31, 0))


# --------------------------------------------------------------- kind release x node image


def test_kind_double_backend_preflight_stops_kind_031_with_a_137_image_before_booting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_kaudit.backends.base import ClusterSpec
    from pytest_kaudit.backends.kind import KindBackend
    from pytest_kaudit.errors import BackendError
    from pytest_kaudit.policy import Policy

    monkeypatch.setenv("PATH", f"{DOUBLES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KAUDIT_DOUBLE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("KAUDIT_DOUBLE_KIND_VERSION", "v0.31.0")
    monkeypatch.setenv("HOME", str(tmp_path))
    policy = Policy.from_yaml("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n")
    backend = KindBackend(node_image="kindest/node:v1.37.0", state_dir=tmp_path / "kind")
    with pytest.raises(BackendError, match=r"(?s)nodes\[0\] \(kindest/node:v1.37.0\): kind "
                       r"writes kubeadm.k8s.io/v1beta3 .* the node cannot boot"):
        backend.start(ClusterSpec(policy=policy))
    listed = subprocess.run([str(DOUBLES / "kind"), "get", "clusters"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert listed.stdout == ""  # nothing was created

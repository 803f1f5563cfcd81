"""The kind TEST DOUBLE's model of kind + kubeadm, checked against docs/cluster-mechanics.md.

These pin the facts the double emulates (so a double that drifted from the doc is caught);
they say nothing about real kind beyond what the doc reports from kind's sources.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "doubles"))
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


def test_unversioned_map_patch_applies_everywhere() -> None:
    for kind in ((0, 20, 0), (0, 31, 0), (0, 32, 0)):
        for k8s in ((1, 27, 3), K131, K136):
            assert args_after(UNVERSIONED_MAP, kind, k8s)["audit-log-path"] == "/l"


def test_versioned_patch_for_another_kubeadm_version_is_silently_dropped() -> None:
    assert "audit-log-path" not in args_after(V1BETA4_LIST, (0, 31, 0), K136)
    assert "audit-log-path" not in args_after(V1BETA4_LIST, (0, 32, 0), K131)
    assert args_after(V1BETA4_LIST, (0, 32, 0), K136)["audit-log-path"] == "/l"


def test_map_form_in_a_versioned_v1beta4_patch_is_ignored() -> None:
    assert "audit-log-path" not in args_after(V1BETA4_MAP, (0, 32, 0), K136)


def test_list_form_on_v1beta3_is_a_kubeadm_decode_error() -> None:
    with pytest.raises(model.KubeadmError, match="cannot unmarshal array"):
        args_after(UNVERSIONED_LIST, (0, 31, 0), K131)


def test_unquoted_number_is_a_kubeadm_decode_error() -> None:
    patch = "kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    audit-log-maxsize: 100\n"
    with pytest.raises(model.KubeadmError, match="cannot unmarshal number"):
        args_after(patch, (0, 31, 0), K131)


def test_kind_defaults_survive_the_merge() -> None:
    assert "runtime-config" in args_after(UNVERSIONED_MAP, (0, 31, 0), K131)
    assert "runtime-config" in args_after(UNVERSIONED_MAP, (0, 32, 0), K136)


def test_v1beta3_is_refused_by_kubeadm_137() -> None:
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
def test_kind_config_decoding_is_strict(text: str, message: str) -> None:
    with pytest.raises(model.ConfigError, match=message):
        model.decode_kind_config(text)

"""Unit tests of the generated kind config (pure; no processes).

The cross-checks run the generated config through the kind/kubeadm *test double's* model
(tests/doubles/fakekind_model.py), written separately from the code under test; they show
the config is right per the facts in docs/kind.md, not per real kind.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kaudit.backends.base import BARRIER_USER, ClusterSpec
from pytest_kaudit.backends.kind import config as kc
from pytest_kaudit.backends.kind.kubeadm import apiserver_after_patches
from pytest_kaudit.policy import Policy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "doubles"))
import fakekind_model as model  # noqa: E402

POLICY = Policy.from_yaml("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
SPEC = ClusterSpec(policy=POLICY, flags={"audit-log-maxsize": "1", "audit-log-maxbackup": "2"})
DIRS = kc.host_dirs(Path("/srv/kaudit/c1"))
IMAGES = {
    "1.27": "kindest/node:v1.27.16@sha256:aaa",
    "1.31": "kindest/node:v1.31.12@sha256:bbb",
    "1.34": "kindest/node:v1.34.0@sha256:ccc",
    "1.36": "kindest/node:v1.36.1@sha256:ddd",
}
KINDS = {"v0.31.0": (0, 31, 0), "v0.32.0": (0, 32, 0)}


def build(
    image: str | None = None, base: dict[str, Any] | None = None, spec: ClusterSpec = SPEC
) -> dict[str, Any]:
    return kc.build_kind_config(
        name="kaudit-t", flags=spec.flags, dirs=DIRS, node_image=image, base_config=base
    )


def the_patch(config: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(config["nodes"][0]["kubeadmConfigPatches"][-1])


@pytest.mark.parametrize(
    ("kind", "minor", "expected"),
    [
        ((0, 20, 0), (1, 27), "kubeadm.k8s.io/v1beta3"),
        ((0, 31, 0), (1, 36), "kubeadm.k8s.io/v1beta3"),
        ((0, 31, 0), (1, 37), "kubeadm.k8s.io/v1beta3"),
        ((0, 32, 0), (1, 34), "kubeadm.k8s.io/v1beta3"),
        ((0, 32, 0), (1, 36), "kubeadm.k8s.io/v1beta4"),
        ((0, 33, 0), (1, 37), "kubeadm.k8s.io/v1beta4"),
        ((0, 32, 0), (1, 22), "kubeadm.k8s.io/v1beta2"),
    ],
)
def test_kubeadm_api_version_per_kind_release_and_image(kind, minor, expected) -> None:
    assert kc.kubeadm_api_version(kind, minor) == expected


def test_versions_are_parsed_from_kind_output_and_image_tags() -> None:
    assert kc.parse_kind_version("kind v0.31.0 go1.25.5 linux/amd64") == (0, 31, 0)
    assert kc.node_image_version(IMAGES["1.31"]) == (1, 31)
    assert kc.node_image_version("registry.local/my-node:latest") is None
    assert kc.default_node_version((0, 30, 0)) == (1, 34)


@pytest.mark.parametrize("image", list(IMAGES.values()))
def test_config_uses_the_portable_spelling(image: str) -> None:
    config = build(image)
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    node = config["nodes"][0]
    assert node["role"] == "control-plane" and node["image"] == image
    patch = the_patch(config)
    assert "apiVersion" not in patch  # unversioned: applies to every kubeadm version
    assert patch["kind"] == "ClusterConfiguration"
    args = patch["apiServer"]["extraArgs"]
    assert isinstance(args, dict) and all(isinstance(v, str) for v in args.values())
    assert args["audit-policy-file"] == "/etc/kubernetes/kaudit/policy.yaml"
    assert args["audit-log-path"] == "/var/log/kubernetes/kaudit/audit.log"
    assert args["audit-log-maxsize"] == "1"
    assert [v["mountPath"] for v in patch["apiServer"]["extraVolumes"]] == [
        kc.NODE_POLICY_DIR,
        kc.NODE_LOG_DIR,
    ]
    # directories, not files, are mounted: a policy replaced by rename stays visible
    assert node["extraMounts"] == [
        {
            "hostPath": "/srv/kaudit/c1/policy",
            "containerPath": kc.NODE_POLICY_DIR,
            "readOnly": True,
        },
        {"hostPath": "/srv/kaudit/c1/log", "containerPath": kc.NODE_LOG_DIR},
    ]


def test_values_stay_quoted_strings_in_the_yaml_text() -> None:
    text = kc.cluster_patch({"audit-log-maxsize": "100", "audit-log-compress": "true"})
    assert '"audit-log-maxsize": "100"' in text and '"audit-log-compress": "true"' in text
    assert yaml.safe_load(text)["apiServer"]["extraArgs"]["audit-log-maxsize"] == "100"


@pytest.mark.parametrize("image_key", list(IMAGES))
@pytest.mark.parametrize("kind_tag", list(KINDS))
def test_kind_double_model_puts_audit_flags_and_volumes_into_the_apiserver_pod(
    image_key: str, kind_tag: str
) -> None:
    """Each kind release x node image: the double's kind+kubeadm model yields our flags."""
    kind = KINDS[kind_tag]
    config = model.decode_kind_config(kc.dump_kind_config(build(IMAGES[image_key])))
    k8s = model.image_version(IMAGES[image_key])
    api = model.kubeadm_version(kind, k8s)
    assert api == kc.kubeadm_api_version(kind, k8s[:2])
    docs = model.generate_kubeadm(config, name="kaudit-t", api=api, k8s=k8s)
    docs = model.apply_patches(docs, config["nodes"][0]["kubeadmConfigPatches"], kind=kind)
    cluster, _ = model.kubeadm_decode(docs, k8s=k8s)
    args = model.extra_args(cluster)
    assert args["audit-policy-file"] == kc.NODE_POLICY_PATH
    assert args["audit-log-maxbackup"] == "2"
    assert "runtime-config" in args  # kind's own arg survives the merge
    if api == model.V1BETA4:
        assert isinstance(cluster["apiServer"]["extraArgs"], list)  # converted by kind >= 0.32
    manifest = model.apiserver_manifest(cluster)
    mounts = {m["mountPath"] for m in manifest["spec"]["containers"][0]["volumeMounts"]}
    assert {kc.NODE_POLICY_DIR, kc.NODE_LOG_DIR} <= mounts


def test_base_config_is_merged_not_replaced() -> None:
    base = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": "ignored",
        "featureGates": {"SomeGate": True},
        "nodes": [
            {
                "role": "control-plane",
                "extraMounts": [{"hostPath": "/data", "containerPath": "/data"}],
                "extraPortMappings": [{"containerPort": 80, "hostPort": 8080}],
                "kubeadmConfigPatches": ["kind: InitConfiguration\n"],
            },
            {"role": "worker"},
        ],
    }
    config = build(base=base)
    assert config["name"] == "kaudit-t"
    assert config["featureGates"] == {"SomeGate": True}
    node = config["nodes"][0]
    assert node["extraMounts"][0]["containerPath"] == "/data" and len(node["extraMounts"]) == 3
    assert node["extraPortMappings"] == [{"containerPort": 80, "hostPort": 8080}]
    assert node["kubeadmConfigPatches"][0] == "kind: InitConfiguration\n"
    assert config["nodes"][1] == {"role": "worker"}
    assert base["nodes"][0]["extraMounts"] == [{"hostPath": "/data", "containerPath": "/data"}]


def test_base_config_without_control_plane_gets_one_first() -> None:
    config = build(base={"nodes": [{"role": "worker"}]})
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker"]


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ({"apiVersion": "kind.x-k8s.io/v1alpha3"}, "kind.x-k8s.io/v1alpha4"),
        (
            {
                "nodes": [
                    {
                        "role": "control-plane",
                        "extraMounts": [{"hostPath": "/x", "containerPath": kc.NODE_LOG_DIR}],
                    }
                ]
            },
            "kaudit owns",
        ),
    ],
)
def test_base_config_conflicts_are_refused(base: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(base=base)


def test_kind_config_round_trips_and_passes_the_strict_decoder(tmp_path: Path) -> None:
    text = kc.dump_kind_config(kc.build_kind_config(
        name=kc.default_cluster_name(SPEC), flags=SPEC.flags, dirs=kc.host_dirs(tmp_path),
        node_image=IMAGES["1.34"], audit=True))
    config = model.decode_kind_config(text)  # kind's strict decoding accepts it
    assert config["nodes"][0]["extraMounts"][0]["hostPath"] == str(tmp_path / "policy")
    assert config["name"].startswith(kc.CLUSTER_PREFIX)
    assert "|" in text  # patches as readable block literals


def test_policy_file_carries_generation_and_barrier_rules_before_the_users() -> None:
    document = yaml.safe_load(kc.render_policy(SPEC))
    generation, barrier, *rest = document["rules"]
    assert generation == {
        "level": "Request",
        "users": [BARRIER_USER],
        "nonResourceURLs": [kc.generation_path(kc.policy_generation(SPEC))],
    }
    assert barrier == {"level": "Metadata", "users": [BARRIER_USER]}
    assert rest == [{"level": "Metadata"}]
    Policy.from_dict(document, strict=True)  # the apiserver would accept it
    other = ClusterSpec(
        policy=Policy.from_yaml(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n"
        )
    )
    assert kc.policy_generation(other) != kc.policy_generation(SPEC)


def test_spec_without_policy_leaves_audit_policy_file_out() -> None:
    spec = ClusterSpec(policy=None)
    assert "audit-policy-file" not in kc.apiserver_args(spec.flags, audit=False)
    assert kc.render_policy(spec) == ""


def test_preflight_accepts_the_generated_config() -> None:
    for kind in KINDS.values():
        for image in IMAGES.values():
            api = kc.kubeadm_api_version(kind, kc.node_image_version(image))  # type: ignore[arg-type]
            assert kc.check_kind_config(build(image), dirs=DIRS, kubeadm_version=api) == []


def _mutated(fn) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    config = build(IMAGES["1.31"])
    fn(config)
    return config


def _set_patch(config: dict[str, Any], patch: dict[str, Any]) -> None:
    config["nodes"][0]["kubeadmConfigPatches"][-1] = yaml.safe_dump(patch)


def _versioned(config: dict[str, Any]) -> None:
    patch = the_patch(config)
    patch["apiVersion"] = "kubeadm.k8s.io/v1beta4"
    _set_patch(config, patch)


def _list_form(config: dict[str, Any]) -> None:
    patch = the_patch(config)
    patch["apiServer"]["extraArgs"] = [
        {"name": k, "value": v} for k, v in patch["apiServer"]["extraArgs"].items()
    ]
    _set_patch(config, patch)


def _unquoted(config: dict[str, Any]) -> None:
    patch = the_patch(config)
    patch["apiServer"]["extraArgs"]["audit-log-maxsize"] = 1
    _set_patch(config, patch)


def _wrong_mount_path(config: dict[str, Any]) -> None:
    config["nodes"][0]["extraMounts"][0]["containerPath"] = "/etc/kubernetes/audit"


def _no_log_volume(config: dict[str, Any]) -> None:
    patch = the_patch(config)
    patch["apiServer"]["extraVolumes"].pop()
    _set_patch(config, patch)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["nodes"][0]["extraMounts"].pop(0),
            "--audit-policy-file=/etc/kubernetes/kaudit/policy.yaml does not reach the host",
        ),
        (
            _wrong_mount_path,
            "--audit-policy-file=/etc/kubernetes/kaudit/policy.yaml does not reach the host",
        ),
        (
            _no_log_volume,
            "--audit-log-path=/var/log/kubernetes/kaudit/audit.log does not reach the host",
        ),
        (
            _versioned,
            "declares apiVersion kubeadm.k8s.io/v1beta4 but kind generates kubeadm.k8s.io/v1beta3",
        ),
        (_list_form, "gives apiServer.extraArgs as a list, but kubeadm.k8s.io/v1beta3 needs a map"),
        (_unquoted, "is not a string"),
    ],
    ids=[
        "mount-deleted",
        "wrong-mountPath",
        "volume-deleted",
        "versioned-patch",
        "list-on-v1beta3",
        "unquoted",
    ],
)
def test_preflight_reports_miswired_configs(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    problems = kc.check_kind_config(
        _mutated(mutate), dirs=DIRS, kubeadm_version="kubeadm.k8s.io/v1beta3"
    )
    assert any(message in p for p in problems), problems


def test_preflight_accepts_list_form_when_versioned_for_v1beta4() -> None:
    config = build(IMAGES["1.36"])
    patch = the_patch(config)
    patch["apiVersion"] = "kubeadm.k8s.io/v1beta4"
    patch["apiServer"]["extraArgs"] = [
        {"name": k, "value": v} for k, v in patch["apiServer"]["extraArgs"].items()
    ]
    _set_patch(config, patch)
    assert kc.check_kind_config(config, dirs=DIRS, kubeadm_version="kubeadm.k8s.io/v1beta4") == []


def test_cluster_names_and_keys() -> None:
    assert kc.default_cluster_name(SPEC) == f"kaudit-{SPEC.key[:10]}"
    assert kc.default_cluster_name(SPEC, unique="abc").endswith("-abc")
    with pytest.raises(ValueError, match="must match"):
        kc.check_cluster_name("Bad_Name")
    a = kc.config_key(SPEC, node_image=None, base_config=None)
    assert a == kc.config_key(SPEC, node_image=None, base_config=None)
    assert a != kc.config_key(SPEC, node_image=IMAGES["1.27"], base_config=None)


def test_every_control_plane_node_gets_the_mounts_and_patch() -> None:
    base = {"nodes": [{"role": "control-plane"}, {"role": "worker"}, {"role": "control-plane"}]}
    config = build(IMAGES["1.31"], base=base)
    for index in (0, 2):
        node = config["nodes"][index]
        assert {m["containerPath"] for m in node["extraMounts"]} == {
            kc.NODE_POLICY_DIR,
            kc.NODE_LOG_DIR,
        }
        assert node["image"] == IMAGES["1.31"]
        assert yaml.safe_load(node["kubeadmConfigPatches"][-1])["apiServer"]["extraArgs"][
            "audit-policy-file"
        ] == kc.NODE_POLICY_PATH
    assert config["nodes"][1] == {"role": "worker", "image": IMAGES["1.31"]}  # every node
    api = "kubeadm.k8s.io/v1beta3"
    assert kc.check_kind_config(config, dirs=DIRS, kubeadm_version=api) == []


def test_preflight_checks_every_control_plane_node() -> None:
    config = build(IMAGES["1.31"], base={"nodes": [{"role": "control-plane"} for _ in "ab"]})
    config["nodes"][1]["extraMounts"] = []
    problems = kc.check_kind_config(config, dirs=DIRS, kubeadm_version="kubeadm.k8s.io/v1beta3")
    assert problems and all(p.startswith("control-plane nodes[1]: ") for p in problems), problems
    assert any("--audit-policy-file=" in p and "does not reach the host" in p for p in problems)


USER_VOLUME = {"name": "certs", "hostPath": "/etc/extra", "mountPath": "/etc/extra"}


@pytest.mark.parametrize("level", ["cluster", "node"])
def test_user_extra_volumes_are_kept_in_our_patch(level: str) -> None:
    # kind applies patches as RFC 7386 merge patches: our list would replace theirs whole
    theirs = yaml.safe_dump(
        {
            "kind": "ClusterConfiguration",
            "apiServer": {"extraArgs": {"x": "/etc/extra/x"}, "extraVolumes": [USER_VOLUME]},
        }
    )
    base: dict[str, Any] = {"nodes": [{"role": "control-plane"}]}
    if level == "cluster":
        base["kubeadmConfigPatches"] = [theirs]
    else:
        base["nodes"][0]["kubeadmConfigPatches"] = [theirs]
    config = build(IMAGES["1.31"], base=base)
    volumes = the_patch(config)["apiServer"]["extraVolumes"]
    assert [v["name"] for v in volumes] == ["certs", "kaudit-policy", "kaudit-log"]
    assert volumes[0] == USER_VOLUME
    api = "kubeadm.k8s.io/v1beta3"
    assert kc.check_kind_config(config, dirs=DIRS, kubeadm_version=api) == []


def test_only_the_last_user_patch_setting_extra_volumes_counts() -> None:
    first = yaml.safe_dump({"kind": "ClusterConfiguration", "apiServer": {"extraVolumes": [
        {"name": "old", "hostPath": "/o", "mountPath": "/o"}]}})
    second = yaml.safe_dump({"kind": "ClusterConfiguration", "apiServer": {"extraVolumes": [
        USER_VOLUME]}})
    config = build(base={"kubeadmConfigPatches": [first],
                         "nodes": [{"role": "control-plane", "kubeadmConfigPatches": [second]}]})
    names = [v["name"] for v in the_patch(config)["apiServer"]["extraVolumes"]]
    assert names == ["certs", "kaudit-policy", "kaudit-log"]


@pytest.mark.parametrize(
    ("base", "message"),
    [
        (
            {"kubeadmConfigPatches": [yaml.safe_dump({"kind": "ClusterConfiguration", "apiServer": {
                "extraVolumes": [{"name": "kaudit-log", "hostPath": "/l", "mountPath": "/l"}]}})]},
            r"base kind config kubeadmConfigPatches\[0\]: apiServer.extraVolumes entry "
            r"'kaudit-log' takes a name or mountPath kaudit owns",
        ),
        (
            {"kubeadmConfigPatches": ["kind: ClusterConfiguration\napiServer: {extraVolumes: [\n"]},
            r"base kind config kubeadmConfigPatches\[0\] is not YAML",
        ),
        (
            {"kubeadmConfigPatchesJSON6902": [{"group": "kubeadm.k8s.io", "version": "v1beta3",
              "kind": "ClusterConfiguration",
              "patch": "- op: add\n  path: /apiServer/extraVolumes/-\n  value: {}\n"}]},
            # kind's template has no extraVolumes: kind itself fails on this patch
            r"base kind config kubeadmConfigPatchesJSON6902\[0\]: operation 0 "
            r"\(add /apiServer/extraVolumes/-\) cannot apply \(member 'extraVolumes' not found\)",
        ),
    ],
    ids=["volume-name-clash", "patch-not-yaml", "json6902-volumes-missing-list"],
)
def test_user_volume_patches_kaudit_cannot_keep_are_refused(
    base: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build(base=base)


# --------------------------------------------------------------- JSON 6902 patches, kind's order


def _json6902(path: str, value: object, *, op: str = "add", version: str = "v1beta3") -> dict:
    return {
        "group": "kubeadm.k8s.io",
        "version": version,
        "kind": "ClusterConfiguration",
        "patch": yaml.safe_dump([{"op": op, "path": path, "value": value}]),
    }


def _preflight(config: dict[str, Any], **kwargs: Any) -> list[str]:
    return kc.check_kind_config(
        config, dirs=DIRS, kubeadm_version="kubeadm.k8s.io/v1beta3", flags=SPEC.flags, **kwargs
    )


def test_preflight_sees_a_node_json6902_patch_that_moves_the_audit_log() -> None:
    # node-level JSON 6902 patches run after kaudit's node merge patch: they win
    base = {"nodes": [{"role": "control-plane", "kubeadmConfigPatchesJSON6902": [
        _json6902("/apiServer/extraArgs/audit-log-path", "/tmp/elsewhere.log", op="replace")]}]}
    problems = _preflight(build(IMAGES["1.31"], base=base))
    assert any(
        "--audit-log-path: kaudit asks for '/var/log/kubernetes/kaudit/audit.log', but after "
        "kind applies every patch the apiserver gets '/tmp/elsewhere.log' "
        "(nodes[0].kubeadmConfigPatchesJSON6902[0] decides it)" in p for p in problems
    ), problems
    assert any("--audit-log-path=/tmp/elsewhere.log does not reach the host" in p
               for p in problems), problems


def test_preflight_sees_a_node_json6902_patch_that_drops_a_spec_flag() -> None:
    base = {"nodes": [{"role": "control-plane", "kubeadmConfigPatchesJSON6902": [
        _json6902("/apiServer/extraArgs/audit-log-maxbackup", None, op="remove")]}]}
    problems = _preflight(build(IMAGES["1.31"], base=base))
    assert any("--audit-log-maxbackup: kaudit asks for '2'" in p and "'<not set>'" in p
               for p in problems), problems


def test_cluster_json6902_audit_flag_loses_to_kaudits_node_patch_as_in_kind() -> None:
    """kind: cluster merge, cluster JSON 6902, node merge (ours), node JSON 6902."""
    base = {"kubeadmConfigPatchesJSON6902": [
        _json6902("/apiServer/extraArgs/audit-log-maxsize", "500")]}
    config = build(IMAGES["1.31"], base=base)
    assert _preflight(config) == []
    final = apiserver_after_patches(config, 0, kubeadm_version="kubeadm.k8s.io/v1beta3")
    assert final.args["audit-log-maxsize"] == "1"  # the spec's, from kaudit's node patch
    assert final.arg_source["audit-log-maxsize"] == "nodes[0].kubeadmConfigPatches[0]"


def test_cluster_json6902_volume_is_carried_into_kaudits_patch() -> None:
    # a cluster merge patch creates the list, a cluster JSON 6902 patch appends to it; both run
    # before kaudit's node merge patch, which would otherwise replace the list
    base = {
        "kubeadmConfigPatches": [yaml.safe_dump({"kind": "ClusterConfiguration", "apiServer": {
            "extraVolumes": [USER_VOLUME]}})],
        "kubeadmConfigPatchesJSON6902": [_json6902(
            "/apiServer/extraVolumes/-", {"name": "more", "hostPath": "/m", "mountPath": "/m"})],
    }
    config = build(IMAGES["1.31"], base=base)
    names = [v["name"] for v in the_patch(config)["apiServer"]["extraVolumes"]]
    assert names == ["certs", "more", "kaudit-policy", "kaudit-log"]
    assert _preflight(config) == []


def test_json6902_pinned_to_another_kubeadm_version_is_reported_when_it_touches_the_apiserver(
) -> None:
    base = {"nodes": [{"role": "control-plane", "kubeadmConfigPatchesJSON6902": [
        _json6902("/apiServer/extraArgs/-", {"name": "audit-log-maxage", "value": "30"},
                  version="v1beta4")]}]}
    problems = _preflight(build(IMAGES["1.31"], base=base))
    assert any("nodes[0].kubeadmConfigPatchesJSON6902[0] targets kubeadm.k8s.io/v1beta4 but "
               "kind generates kubeadm.k8s.io/v1beta3" in p for p in problems), problems


def test_kind_double_model_and_preflight_agree_on_the_final_apiserver_args() -> None:
    """Two independent replays of kind's patching (the double's and kaudit's) give one answer."""
    base = {
        "kubeadmConfigPatches": [yaml.safe_dump({"kind": "ClusterConfiguration", "apiServer": {
            "extraArgs": {"audit-log-maxage": "7", "audit-log-compress": "true"}}})],
        "kubeadmConfigPatchesJSON6902": [
            _json6902("/apiServer/extraArgs/audit-log-maxage", "9", op="replace"),
            _json6902("/apiServer/extraArgs/audit-log-maxsize", "77"),
        ],
        "nodes": [{"role": "control-plane", "kubeadmConfigPatchesJSON6902": [
            _json6902("/apiServer/extraArgs/audit-log-compress", None, op="remove")]}],
    }
    config = build(IMAGES["1.31"], base=base)
    ours = apiserver_after_patches(config, 0, kubeadm_version="kubeadm.k8s.io/v1beta3")
    kind = (0, 31, 0)
    decoded = model.decode_kind_config(kc.dump_kind_config(config))
    docs = model.generate_kubeadm(decoded, name="kaudit-t", api=model.V1BETA3, k8s=(1, 31, 12))
    docs = model.patch_node_config(docs, decoded, decoded["nodes"][0], kind=kind)
    cluster, _ = model.kubeadm_decode(docs, k8s=(1, 31, 12))
    assert model.extra_args(cluster) == ours.args
    assert ours.args["audit-log-maxage"] == "9" and ours.args["audit-log-maxsize"] == "1"
    assert "audit-log-compress" not in ours.args


# --------------------------------------------------------------- kind release x node image pairs


@pytest.mark.parametrize(
    ("kind_version", "image", "boots"),
    [
        ((0, 31, 0), "kindest/node:v1.37.0", False),
        ((0, 31, 0), "kindest/node:v1.36.4", True),  # kubeadm 1.36 still reads v1beta3
        ((0, 32, 0), "kindest/node:v1.37.0", True),
        ((0, 20, 0), "kindest/node:v1.38.2", False),
    ],
)
def test_preflight_stops_kind_releases_whose_kubeadm_config_the_image_cannot_read(
    kind_version: tuple[int, int, int], image: str, *, boots: bool
) -> None:
    config = build(image, base={"nodes": [{"role": "control-plane"}, {"role": "worker"}]})
    api = kc.kubeadm_api_version(kind_version, kc.node_image_version(image))  # type: ignore[arg-type]
    for problems in (
        kc.check_kind_config(config, dirs=DIRS, kubeadm_version=api),
        kc.check_kind_config(config, dirs=DIRS, kubeadm_version=api, kind_version=kind_version),
    ):
        cannot = [p for p in problems if "the node cannot boot" in p]
        if boots:
            assert cannot == [], problems
        else:
            assert [p.split(":")[0] for p in cannot] == ["nodes[0] (kindest/node", "nodes[1] (kindest/node"]
            assert "Use kind >= v0.32" in cannot[0]


def test_preflight_uses_each_nodes_own_image_when_kinds_version_is_known() -> None:
    base = {"nodes": [{"role": "control-plane", "image": "kindest/node:v1.31.12"},
                      {"role": "worker", "image": "kindest/node:v1.37.0"}]}
    config = build(None, base=base)
    problems = kc.check_kind_config(
        config, dirs=DIRS, kubeadm_version="kubeadm.k8s.io/v1beta3", kind_version=(0, 31, 0)
    )
    assert [p for p in problems if "cannot boot" in p][0].startswith(
        "nodes[1] (kindest/node:v1.37.0)")
    assert kc.check_kind_config(
        config, dirs=DIRS, kubeadm_version="kubeadm.k8s.io/v1beta3", kind_version=(0, 32, 0)
    ) == []


def test_kind_double_model_and_preflight_agree_on_v1beta4_name_merging() -> None:
    """kind >= v0.32, 1.36 image: map-form patches converted, list entries merged by name."""
    base = {
        "kubeadmConfigPatches": [
            yaml.safe_dump({"kind": "ClusterConfiguration", "apiServer": {
                "extraArgs": {"audit-log-maxage": "7", "audit-log-compress": "true"}}}),
            yaml.safe_dump({"apiVersion": "kubeadm.k8s.io/v1beta4",
                            "kind": "ClusterConfiguration", "apiServer": {
                                "extraArgs": [{"name": "audit-log-compress", "value": None}]}}),
        ],
        "nodes": [{"role": "control-plane", "kubeadmConfigPatchesJSON6902": [
            _json6902("/apiServer/extraArgs/-", {"name": "audit-log-mode", "value": "batch"},
                      version="v1beta4")]}],
    }
    config = build(IMAGES["1.36"], base=base)
    ours = apiserver_after_patches(config, 0, kubeadm_version="kubeadm.k8s.io/v1beta4")
    decoded = model.decode_kind_config(kc.dump_kind_config(config))
    docs = model.generate_kubeadm(decoded, name="kaudit-t", api=model.V1BETA4, k8s=(1, 36, 1))
    docs = model.patch_node_config(docs, decoded, decoded["nodes"][0], kind=(0, 32, 0))
    cluster, _ = model.kubeadm_decode(docs, k8s=(1, 36, 1))
    assert model.extra_args(cluster) == ours.args
    assert ours.args["audit-log-maxage"] == "7" and ours.args["audit-log-mode"] == "batch"
    assert "audit-log-compress" not in ours.args  # deleted by name (null value)
    assert ours.problems == []


def test_nodes_written_with_yaml_aliases_each_get_their_own_mounts_and_patch() -> None:
    text = (
        "nodes:\n- &cp {role: control-plane, extraMounts: &m [{hostPath: /d, containerPath: /d}]}\n"
        "- *cp\n- {role: worker, extraMounts: *m}\n"
    )
    config = build(IMAGES["1.31"], base=yaml.safe_load(text))
    first, second, worker = config["nodes"]
    assert first is not second
    for node in (first, second):
        assert [m["containerPath"] for m in node["extraMounts"]] == [
            "/d", kc.NODE_POLICY_DIR, kc.NODE_LOG_DIR]
        assert len(node["kubeadmConfigPatches"]) == 1
    assert worker["extraMounts"] == [{"hostPath": "/d", "containerPath": "/d"}]
    api = "kubeadm.k8s.io/v1beta3"
    assert kc.check_kind_config(config, dirs=DIRS, kubeadm_version=api) == []

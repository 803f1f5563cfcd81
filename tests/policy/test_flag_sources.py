"""Reading kube-apiserver flags from every form users keep them in, with their lines."""

from __future__ import annotations

import pytest

from pytest_kaudit.policy import validate_flags
from pytest_kaudit.policy.flag_sources import (
    MAX_FLAGS_FILE_BYTES,
    FlagSourceError,
    read_flag_source,
)


def argv(text: str) -> list[tuple[str, int | None]]:
    return [(a.text, a.line) for a in read_flag_source(text, "f").args]


def test_one_flag_per_line_with_comments_and_continuations() -> None:
    text = ("# flags\n--audit-log-maxage=30 --audit-log-maxbackup=10\n"
            "--audit-log-path \\\n  /var/log/a.log\n")
    assert argv(text) == [("--audit-log-maxage=30", 2), ("--audit-log-maxbackup=10", 2),
                          ("--audit-log-path", 3), ("/var/log/a.log", 4)]


def test_pasted_command_line_starts_after_the_program() -> None:
    assert argv("sudo -E /usr/local/bin/kube-apiserver --v=2\n") == [("--v=2", 1)]
    assert argv("--v=2 kube-apiserver\n") == [("--v=2", 1), ("kube-apiserver", 1)]


def test_static_pod_manifest_command_and_args() -> None:
    text = """\
apiVersion: v1
kind: Pod
spec:
  containers:
  - name: sidecar
    command: [sleep, "1"]
  - name: apiserver
    command:
    - /usr/local/bin/kube-apiserver
    - --audit-log-path=/a.log
    args:
    - "--audit-log-maxage=30"
"""
    source = read_flag_source(text, "pod.yaml")
    assert source.form == "static-pod"
    assert [(a.text, a.line) for a in source.args] == [("--audit-log-path=/a.log", 10),
                                                       ("--audit-log-maxage=30", 12)]


def test_shell_wrapped_command() -> None:
    text = """\
kind: Pod
spec:
  containers:
  - name: kube-apiserver
    command: ["/bin/sh", "-c", "exec kube-apiserver --audit-log-path=/a.log --v=2"]
"""
    assert argv(text) == [("--audit-log-path=/a.log", 5), ("--v=2", 5)]


def test_manifest_fragment_skips_non_flags_with_notes() -> None:
    text = """\
spec:
  containers:
  - command:
    - kube-apiserver
    - --audit-log-path=/a.log
    - -allow-privileged=true
    ......
    - '--audit-log-maxage=30'
"""
    source = read_flag_source(text, "doc.yaml")
    assert source.form == "manifest-fragment"
    assert [(a.text, a.line) for a in source.args] == [
        ("--audit-log-path=/a.log", 5), ("-allow-privileged=true", 6),
        ("--audit-log-maxage=30", 8)]
    notes = [str(n) for n in source.notes]
    assert "doc.yaml:4: not a flag, ignored: '- kube-apiserver'" in notes
    assert "doc.yaml:7: not a flag, ignored: '......'" in notes
    assert notes[-1] == ("doc.yaml: 3 lines of YAML structure (such as 'spec:') were ignored")


def test_systemd_unit_with_continuations_and_prefix() -> None:
    text = """\
[Service]
ExecStart=
ExecStart=-/usr/bin/kube-apiserver \\
  --audit-log-path=/a.log \\
# a comment inside the value
  --audit-log-maxage=30
Restart=always
"""
    source = read_flag_source(text, "u.service")
    assert source.form == "systemd"
    assert [(a.text, a.line) for a in source.args] == [("--audit-log-path=/a.log", 4),
                                                       ("--audit-log-maxage=30", 6)]
    assert source.notes == ()


def test_exec_start_without_continuations_reads_following_flags_and_says_so() -> None:
    text = "ExecStart=/usr/bin/kube-apiserver --v=2\n  --audit-log-path=/a.log\n\nX=1\n"
    source = read_flag_source(text, "u")
    assert source.argv == ["--v=2", "--audit-log-path=/a.log"]
    (note,) = source.notes
    assert note.line == 2 and note.code == "unit-continuation"


def test_exec_start_environment_variable_is_noted() -> None:
    source = read_flag_source("ExecStart=/usr/bin/kube-apiserver $KUBE_API_ARGS --v=2\n", "u")
    assert source.argv == ["--v=2"]
    assert "$KUBE_API_ARGS is expanded by systemd" in source.notes[0].message


def test_exec_start_of_another_program_is_refused() -> None:
    with pytest.raises(FlagSourceError, match="runs '/usr/bin/etcd', not kube-apiserver"):
        read_flag_source("ExecStart=/usr/bin/etcd --data-dir=/x\n")


def test_kubeadm_map_form_and_unquoted_values() -> None:
    text = """\
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
apiServer:
  extraArgs:
    audit-log-path: /a.log
    audit-log-maxage: 30
"""
    source = read_flag_source(text, "kubeadm.yaml")
    assert source.form == "kubeadm"
    assert [(a.text, a.line) for a in source.args] == [("--audit-log-path=/a.log", 5),
                                                       ("--audit-log-maxage=30", 6)]
    (problem,) = source.problems
    assert str(problem) == ('kubeadm.yaml:6: apiServer.extraArgs.audit-log-maxage: 30 is not a '
                            'string; kubeadm refuses the config (quote it: "30")')


def test_kubeadm_v1beta4_list_form_in_a_multi_document_file() -> None:
    text = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
  extraArgs:
  - name: audit-log-path
    value: /a.log
  - name: audit-log-maxage
    value: "30"
"""
    source = read_flag_source(text)
    assert [(a.text, a.line) for a in source.args] == [("--audit-log-path=/a.log", 8),
                                                       ("--audit-log-maxage=30", 10)]
    assert source.problems == ()


def test_kubeadm_form_that_does_not_fit_the_version() -> None:
    text = ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
            "apiServer:\n  extraArgs:\n    v: '2'\n")
    (problem,) = read_flag_source(text).problems
    assert problem.code == "extra-args-form" and problem.line == 5


def test_kind_config_cluster_then_control_plane_patches() -> None:
    text = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
kubeadmConfigPatches:
- |
  kind: ClusterConfiguration
  apiServer:
    extraArgs:
      audit-log-path: /a.log
      audit-log-maxage: "7"
nodes:
- role: control-plane
  kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    apiServer:
      extraArgs:
        audit-log-maxage: "30"
- role: worker
  kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    apiServer:
      extraArgs:
        audit-log-maxage: "1"
"""
    source = read_flag_source(text, "kind.yaml")
    assert source.form == "kind"
    assert [(a.text, a.line) for a in source.args] == [
        ("--audit-log-path=/a.log", 8), ("--audit-log-maxage=7", 9),
        ("--audit-log-maxage=30", 17)]
    # the control-plane node's patch is applied last, so its value is the one checked
    assert [p.code for p in validate_flags(source)] == ["cis-audit-policy-file"]


def test_limits_refuse_instead_of_working_forever() -> None:
    with pytest.raises(FlagSourceError, match="byte limit for a flags file"):
        read_flag_source("--v=2\n" * (MAX_FLAGS_FILE_BYTES // 6 + 1))
    bomb = "kind: Pod\na: &a [x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
        for i in range(20))
    with pytest.raises(FlagSourceError, match="YAML aliases"):
        read_flag_source(bomb)


@pytest.mark.parametrize(
    ("arg", "code", "message"),
    [
        ("-allow-privileged=true", "single-dash-flag",
         "unknown shorthand flag: 'a' in -allow-privileged=true"),
        ("---audit-log-path=/a", "flag-syntax", "bad flag syntax: ---audit-log-path=/a"),
        ("--audit-log-maxage", "flag-syntax", "flag needs an argument: --audit-log-maxage"),
    ],
)
def test_malformed_flags_are_findings_with_lines(arg: str, code: str, message: str) -> None:
    source = read_flag_source(f"--audit-policy-file=/p.yaml\n{arg}\n", "flags.txt")
    (problem,) = [p for p in validate_flags(source) if p.severity == "error"]
    assert (problem.code, problem.message, problem.line) == (code, message, 2)
    assert problem.hint is not None and "refuses to start" in problem.hint


def test_value_taken_from_the_next_flag_is_a_warning() -> None:
    problems = validate_flags(["--audit-log-path", "--audit-log-maxage=30"])
    assert [p.code for p in problems if p.code == "flag-takes-next"] == ["flag-takes-next"]


def test_other_flags_take_their_value_from_the_next_word() -> None:
    problems = validate_flags(["--advertise-address", "10.0.0.1", "--allow-privileged",
                               "--audit-policy-file=/p", "--audit-log-path=-"])
    assert problems == []


@pytest.mark.parametrize("path", ["/var/;pg/k8s-audit.log", "/var/log/a b.log", "/x/$HOME/a"])
def test_odd_characters_in_paths(path: str) -> None:
    problems = validate_flags({"audit-policy-file": "/p", "audit-log-path": path,
                               "audit-log-maxage": "30", "audit-log-maxbackup": "10",
                               "audit-log-maxsize": "100"})
    (problem,) = problems
    assert (problem.code, problem.field, problem.severity) == ("odd-flag-path",
                                                               "--audit-log-path", "warning")
    assert repr(path) in problem.message


def test_ordinary_paths_are_not_odd() -> None:
    problems = validate_flags({"audit-policy-file": "/etc/kubernetes/audit-policy.yaml",
                               "tls-cert-file": "/etc/pki/apiserver+1.crt",
                               "audit-log-path": "-"})
    assert [p.code for p in problems] == []


def test_mapping_form_follows_the_same_rules() -> None:
    """The plugin validates ``{name: value}`` flags; dashes written in a name are kept."""
    problems = validate_flags({"-allow-privileged": True, "---audit-log-maxage": "3",
                               "audit-policy-file": "/etc/k8s/audit;.yaml",
                               "audit-log-path": "-"})
    assert [(p.severity, p.code, p.field) for p in problems] == [
        ("error", "single-dash-flag", "-allow-privileged"),
        ("error", "flag-syntax", ""),
        ("warning", "odd-flag-path", "--audit-policy-file"),
    ]
    assert problems[1].message == "bad flag syntax: ---audit-log-maxage=3"


def test_deep_nesting_and_bad_characters_are_refused_or_read() -> None:
    with pytest.raises(FlagSourceError, match="nested more than 100 levels"):
        read_flag_source("kind: Pod\nspec: " + "[" * 100_000)
    with pytest.raises(FlagSourceError, match="kind ConfigMap with no kube-apiserver"):
        read_flag_source("apiVersion: v1\nkind: ConfigMap\n")
    assert read_flag_source("--v=2 \x00\n").form == "flags"  # not YAML: read as words
    assert read_flag_source("[" * 100_000).form == "flags"  # names no kind: never parsed as YAML
    # a "kind" that is not a short name is no known form: the text is read as words
    assert read_flag_source("kind: a\n  b\n- --v=2\n").form in ("flags", "manifest-fragment")


SEEDS = [
    "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command:\n"
    "    - kube-apiserver\n    - --audit-log-path=/a\n    - -allow-privileged=true\n",
    "[Service]\nExecStart=/usr/bin/kube-apiserver \\\n  --audit-log-path=/a \\\n  --v=2\n",
    "kind: ClusterConfiguration\napiVersion: kubeadm.k8s.io/v1beta4\napiServer:\n  extraArgs:\n"
    "  - name: audit-log-maxage\n    value: '3'\n",
    "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nkubeadmConfigPatches:\n- |\n"
    "  kind: ClusterConfiguration\n  apiServer:\n    extraArgs:\n      v: '2'\n",
    "--audit-log-path /a --audit-log-maxage\n# c\n......\n",
]


def test_mutated_inputs_never_raise_anything_but_a_clear_refusal() -> None:
    """Random edits of every form: reading either refuses with FlagSourceError or yields argv
    that validate_flags judges without raising."""
    import random

    rng = random.Random(20261130)
    alphabet = "-=:\\'\"[]{}#;$&|*. \n\tabc/0"
    for _ in range(400):
        text = list(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(text) + 1)
            if rng.random() < 0.5 and text:
                del text[min(at, len(text) - 1)]
            else:
                text.insert(at, rng.choice(alphabet))
        try:
            source = read_flag_source("".join(text), "fuzz")
        except FlagSourceError:
            continue
        for problem in validate_flags(source):
            assert problem.message

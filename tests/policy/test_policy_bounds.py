"""Bounded work on hostile input: alias bombs, deep nesting, huge files, many documents."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from policy_helpers import HEADER, policy, problems_of

from pytest_kaudit.errors import PolicyError
from pytest_kaudit.policy import Policy
from pytest_kaudit.policy.load import (
    ALIAS_RATIO_RANGE_HIGH,
    ALIAS_RATIO_RANGE_LOW,
    MAX_DEPTH,
    MAX_POLICY_BYTES,
    allowed_alias_ratio,
)


def alias_bomb(levels: int = 9, fan_out: int = 10) -> str:
    """The billion-laughs shape: each level lists the previous one ``fan_out`` times."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * fan_out) + "]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * fan_out) + "]"
              for n in range(1, levels + 1)]
    return HEADER + "\n".join(lines) + "\nrules:\n- level: Metadata\n"


def test_alias_bomb_is_refused_at_once_with_the_limit_named() -> None:
    started = time.monotonic()
    (problem,) = problems_of(alias_bomb())
    assert time.monotonic() - started < 2
    assert problem.message == (
        "failed decoding: yaml: document contains excessive aliasing"
    )
    assert problem.line == 6
    assert problem.hint is not None and "99%" in problem.hint and "400,000" in problem.hint


def test_alias_ratio_thresholds_follow_go_yaml() -> None:
    assert allowed_alias_ratio(1_000) == 0.99
    assert allowed_alias_ratio(ALIAS_RATIO_RANGE_LOW) == 0.99
    assert allowed_alias_ratio(ALIAS_RATIO_RANGE_HIGH) == pytest.approx(0.10)
    assert allowed_alias_ratio(2_200_000) == pytest.approx(0.545)


def test_ordinary_anchors_and_merge_keys_still_load() -> None:
    loaded = policy("""\
        x-read: &read [get, list, watch]
        x-base: &base
          level: Metadata
          omitStages: [RequestReceived]
        rules:
        - <<: *base
          verbs: *read
        - <<: *base
          level: None
          users: [a]
        - level: Metadata
        """, strict=False)
    first, second, _ = loaded.rules
    assert first.verbs == ("get", "list", "watch")
    assert first.level.value == "Metadata"
    assert second.level.value == "None"  # the key after the merge wins, as in go-yaml v2


def test_a_small_document_may_alias_a_lot() -> None:
    # 99% aliasing is allowed below 400,000 decode operations: 2 levels of 10 (89%) pass.
    loaded = policy(alias_bomb(levels=2).removeprefix(HEADER), strict=False)
    assert len(loaded.rules) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [*a]\nrules:\n- level: None\n", "anchor 'a' value contains itself"),
        ("rules:\n- level: None\n  verbs: *nope\n", "unknown anchor 'nope' referenced"),
        ("x: 1\nrules:\n- <<: [1]\n  level: None\n",
         "map merge requires map or sequence of maps as the value"),
        ("rules:\n- level: None\n  omitStages: [!!int RequestReceived]\n",
         "cannot decode !!str `RequestReceived` as a !!int"),
    ],
)
def test_alias_errors_are_decode_errors(text: str, message: str) -> None:
    (problem,) = problems_of(HEADER + text)
    assert problem.code == "decode"
    assert problem.message.endswith(message)


@pytest.mark.parametrize(("value", "refused"), [("!!int ''", True), ("!!float x", True),
                                                ("!!timestamp nope", False)])
def test_odd_explicit_tags_are_problems_not_tracebacks(value: str, *, refused: bool) -> None:
    text = HEADER + f"rules:\n- level: None\n  users: [{value}]\n"
    if refused:
        with pytest.raises(PolicyError, match="cannot decode !!str"):
            Policy.from_yaml(text)
    else:
        assert Policy.from_yaml(text).rules[0].users == ("nope",)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    # A million nested flow sequences used to crash the interpreter (C stack overflow).
    code = textwrap.dedent("""\
        from pytest_kaudit.errors import PolicyError
        from pytest_kaudit.policy import Policy
        text = "apiVersion: audit.k8s.io/v1\\nkind: Policy\\nrules:\\n- level: None\\n  x: "
        try:
            Policy.from_yaml(text + "[" * 1_000_000 + "]" * 1_000_000 + "\\n")
        except PolicyError as exc:
            print(exc.problems[0].message)
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == (
        f"failed decoding: yaml: exceeded max depth of {MAX_DEPTH}"
    )


def test_text_over_the_size_limit_is_refused_unparsed() -> None:
    text = HEADER + "rules:\n" + "- level: None\n  users: [abcdefghijklmnop]\n" * 60_000
    assert len(text) > MAX_POLICY_BYTES
    started = time.monotonic()
    (problem,) = problems_of(text)
    assert time.monotonic() - started < 1
    assert problem.code == "too-large"
    assert problem.message == (
        f"policy is {len(text):,} bytes; pytest-kaudit reads policies of up to "
        f"{MAX_POLICY_BYTES:,} bytes (2 MiB)"
    )


def test_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:  # sparse: reading it would take 3 GB of zeros
        handle.truncate(3 * 1024 ** 3)
    with pytest.raises(PolicyError) as info:
        Policy.load(big)
    (problem,) = info.value.problems
    assert (problem.code, problem.file) == ("too-large", str(big))


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.load(tmp_path)
    (problem,) = info.value.problems
    assert problem.message == f'failed to read file path "{tmp_path}": is a directory'
    assert "not found" not in str(info.value)


def test_v1beta1_follows_the_target_version(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n")
    assert Policy.load(path, target_version="1.20").api_version == "audit.k8s.io/v1beta1"
    with pytest.raises(PolicyError) as info:
        Policy.load(path, target_version="1.24")
    assert info.value.problems[0].hint == (
        "audit.k8s.io/v1beta1 was removed in Kubernetes 1.24; use audit.k8s.io/v1"
    )


def test_documents_after_the_first_are_summarised_and_bounded() -> None:
    rest = "".join("---\nkind: Policy\nrules: [{level: None}, {level: Metadata}]\n"
                   for _ in range(150))
    loaded = policy("rules:\n- level: None\n" + rest)
    docs = loaded.ignored_documents
    assert len(docs) == 100
    assert (docs[0].index, docs[0].line, docs[0].kind, docs[0].rules, docs[0].levels) == (
        2, 5, "Policy", 2, ("None", "Metadata"))


def generated_policy(path: Path, size: int) -> None:
    """A policy of about ``size`` bytes, rule after rule, like the one in the bug report."""
    rule = '- level: Metadata\n  users: ["user-{0}"]\n  verbs: [get]\n'
    with path.open("w") as handle:
        handle.write(HEADER + "rules:\n")
        written, i = 0, 0
        while written < size:
            written += handle.write("".join(rule.format(n) for n in range(i, i + 10_000)))
            i += 10_000


@pytest.mark.slow
def test_a_50_mb_policy_is_refused_fast_and_small(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    generated_policy(path, 50 * 1024 * 1024)
    code = textwrap.dedent(f"""\
        import json, resource, sys, time
        from pytest_kaudit.cli import main
        started = time.monotonic()
        code = main(["lint", {str(path)!r}])
        print(json.dumps({{"code": code, "seconds": time.monotonic() - started,
               "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}),
              file=sys.stderr)
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    figures = json.loads(done.stderr.strip().splitlines()[-1])
    assert figures["code"] in (1, 2)
    assert figures["seconds"] < 10
    assert figures["rss_mb"] < 1024
    assert "reads policies of up to" in done.stdout + done.stderr

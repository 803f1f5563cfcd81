"""Model values: level ordering, summaries, problem rendering, versions, public API."""

from __future__ import annotations

import pytest
from policy_helpers import FIXTURES, policy

import pytest_kaudit.policy as api
from pytest_kaudit.policy import (
    Decision,
    Level,
    Policy,
    Problem,
    Stage,
    parse_level,
    parse_stage,
    parse_version,
)


def test_level_order_and_str() -> None:
    assert Level.NONE < Level.METADATA < Level.REQUEST < Level.REQUEST_RESPONSE
    assert Level("Metadata") is Level.METADATA and Level.METADATA.value == "Metadata"
    assert str(Level.REQUEST) == "Request" and f"{Level.REQUEST}" == "Request"
    assert Level.METADATA > "Bogus"  # unknown strings rank like None
    assert Level.NONE >= "Bogus" and Level.rank_of("Bogus") == 0
    assert max([Level.REQUEST, Level.METADATA]) is Level.REQUEST
    assert Stage("RequestReceived") is Stage.REQUEST_RECEIVED and str(Stage.PANIC) == "Panic"


def test_decision_is_slotted() -> None:
    decision = Decision(Level.NONE)
    assert not hasattr(decision, "__dict__")
    assert decision.omit_stages == frozenset() and decision.rule_index is None


@pytest.mark.parametrize(
    ("index", "summary"),
    [
        (0, "level RequestResponse for delete pods named webapp-pod in namespace prod-namespace "
            "by anyone"),
        (1, "level Metadata for every verb on secrets in any namespace by anyone"),
    ],
)
def test_summary_of_brief(index: int, summary: str) -> None:
    assert Policy.load(FIXTURES / "brief.yaml").rules[index].summary() == summary


def test_summary_variants() -> None:
    p = policy(
        "rules:\n"
        "- level: None\n  users: [a]\n  userGroups: [g]\n  nonResourceURLs: ['/healthz*']\n"
        "- level: Request\n  verbs: [get, list]\n  namespaces: ['']\n"
        "  resources: [{group: apps}]\n"
        "- level: Metadata\n"
    )
    assert [r.summary() for r in p.rules] == [
        "level None for every verb on non-resource URLs /healthz* by users a in groups g",
        "level Request for get,list group apps (cluster-scoped only) by anyone",
        "level Metadata for every verb on any request by anyone",
    ]


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (Problem("error", "x", "msg", "f.yaml", 3, "rules[0].verb", hint="h"),
         "f.yaml:3: rules[0].verb: msg (h)"),
        (Problem("error", "x", "msg", None, 3, ""), "line 3: msg"),
        (Problem("warning", "x", "msg", "f.yaml", None, "omitStages"), "f.yaml: omitStages: msg"),
        (Problem("warning", "x", "msg"), "msg"),
    ],
)
def test_problem_str(problem: Problem, text: str) -> None:
    assert str(problem) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("v1.20.2", (1, 20)), ("1.20", (1, 20)), ((1, 36), (1, 36)), ("1.37.0-alpha.3", (1, 37)),
     (None, (1, 37))],
)
def test_parse_version(value: object, expected: tuple[int, int]) -> None:
    assert parse_version(value) == expected  # type: ignore[arg-type]


def test_parse_version_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="invalid Kubernetes version"):
        parse_version("latest")


def test_public_api_is_exported() -> None:
    for name in ("Policy", "PolicyRule", "GroupResources", "Decision", "Level", "Stage",
                 "RequestAttributes", "Problem", "lint_policy", "validate_flags", "parse_version"):
        assert name in api.__all__ and hasattr(api, name)


def test_policy_layer_imports_no_pytest() -> None:
    import subprocess
    import sys

    code = ("import sys, pytest_kaudit.policy; "
            "bad = [m for m in ('pytest', 'kubernetes', 'subprocess') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("RequestComplete", "did you mean 'ResponseComplete'?)"),
        ("RequestStarted", "did you mean 'RequestReceived'?)"),
        ("responsecomplete", "did you mean 'ResponseComplete'?)"),
        ("Bogus", "(choose from RequestReceived, ResponseStarted, ResponseComplete, Panic)"),
    ],
)
def test_parse_stage_lists_the_stages_and_the_likely_one(value: str, expected: str) -> None:
    with pytest.raises(ValueError, match="^stage: invalid choice: ") as info:
        parse_stage(value)
    assert str(info.value).endswith(expected)
    assert "RequestReceived, ResponseStarted, ResponseComplete, Panic" in str(info.value)


def test_parse_level_is_exact_and_helpful() -> None:
    assert parse_level("Metadata") is Level.METADATA
    assert parse_level(Level.NONE) is Level.NONE
    assert parse_stage(Stage.PANIC) is Stage.PANIC
    with pytest.raises(ValueError) as info:
        parse_level("Everything", "logged(level=...)")
    assert str(info.value) == ("logged(level=...): invalid choice: 'Everything' (choose from "
                               "None, Metadata, Request, RequestResponse)")
    with pytest.raises(ValueError, match="did you mean 'Metadata'"):
        parse_level("metadata")
    with pytest.raises(ValueError, match="invalid choice: 5 "):
        parse_level(5)

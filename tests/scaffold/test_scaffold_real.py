"""Scaffolded modules against the real kube-apiserver (local backend), unchanged.

Every policy of ``fixtures/policies`` gets its module; each passes as generated and covers
100% of the reachable rules. Then one rule's level is edited in a copy of a policy, and
exactly that rule's generated test fails, with the plugin's explanation.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.policy import Policy
from pytest_kaudit.scaffold import render_module, rule_test_name
from tests.conftest import POLICIES

STRICT = sorted(p for p in POLICIES.glob("*.yaml") if p.name != "brief-typos.yaml")


def _scaffold(pytester: pytest.Pytester, policy: Path, *, lenient: bool = False) -> Path:
    copy = pytester.path / "policies" / policy.name
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(policy, copy)
    loaded = Policy.load(copy, strict=not lenient)
    module = pytester.path / f"test_{policy.stem.replace('-', '_')}.py"
    text, _ = render_module(loaded, policy_ref=f"policies/{policy.name}",
                            policy_label=f"policies/{policy.name}", lenient=lenient)
    module.write_text(text)
    return module


def _coverage(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text())
    return data


def test_every_fixture_policy_passes_as_generated_with_full_coverage(
        control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester) -> None:
    modules = [_scaffold(pytester, p) for p in STRICT]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q",
                                           "--kaudit-coverage=coverage.json",
                                           *(m.name for m in modules), timeout=900)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    coverage = _coverage(pytester.path / "coverage.json")
    assert coverage["percent"] == 100.0
    assert len(coverage["policies"]) == len(STRICT)  # type: ignore[arg-type]


def test_a_lenient_policy_passes_too(control_plane_binaries: ControlPlaneBinaries,
                                      pytester: pytest.Pytester) -> None:
    module = _scaffold(pytester, POLICIES / "brief-typos.yaml", lenient=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kaudit-lenient",
                                           "--kaudit-coverage=coverage.json", module.name,
                                           timeout=300)
    result.assert_outcomes(passed=5)
    assert _coverage(pytester.path / "coverage.json")["percent"] == 100.0


def test_tightening_one_rule_fails_exactly_its_test(control_plane_binaries: ControlPlaneBinaries,
                                                    pytester: pytest.Pytester) -> None:
    source = POLICIES / "rke2-style.yaml"
    module = _scaffold(pytester, source)
    policy = Policy.load(source)
    # rule 11 (shells and tunnels at Metadata): no near miss falls through to it
    index = 11
    _, found = render_module(policy, policy_ref="x", policy_label="x")
    assert all(m.request.decision.rule_index != index for w in found for m in w.near_misses)
    copy = pytester.path / "policies" / source.name
    text = copy.read_text().splitlines()
    line = policy.rule_line(index)
    assert line is not None and text[line - 1].strip() == "- level: Metadata"
    text[line - 1] = text[line - 1].replace("Metadata", "RequestResponse")
    copy.write_text("\n".join(text) + "\n")

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rf", module.name,
                                           timeout=300)
    name = rule_test_name(index, policy.rules[index], 2)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, result.stdout.str()
    failed = re.findall(r"^FAILED \S+::(\w+)", result.stdout.str(), re.M)
    assert failed == [name]
    result.stdout.fnmatch_lines([
        "E*AssertionError: 1 matching request logged, but * check* failed",
        "E*NOTE: the policy itself gives RequestResponse, not Metadata: either the policy or "
        "the test is wrong",
        f"E*policy prediction: rules[[]{index}[]] (*rke2-style.yaml:{line}) applies to *",
        "E*logged at RequestResponse, expected Metadata",
    ])

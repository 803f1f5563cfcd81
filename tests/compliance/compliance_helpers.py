"""Helpers shared by the ``kaudit check`` tests: run a check, list what failed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from pytest_kaudit.backends.local import LocalBackend
from pytest_kaudit.compliance.results import CheckResult, Fix, Report
from pytest_kaudit.compliance.run import CheckOptions, run_check, select_requirements
from pytest_kaudit.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
POLICIES = ROOT / "fixtures" / "policies"
#: Rotation flags that meet CIS.
CIS_FLAGS = {"audit-log-maxage": "30", "audit-log-maxbackup": "10", "audit-log-maxsize": "100"}

Checker = Callable[..., Report]


def check(path: Path | str, *, packs: tuple[str, ...] = ("cis", "secrets"),
          flags: dict[str, str] | None = None, real: bool = False) -> Report:
    """Run ``kaudit check`` through the library (offline unless ``real``)."""
    policy = Policy.load(path, strict=False)
    opts = CheckOptions(policy_path=str(path), packs=packs,
                        flags=dict(CIS_FLAGS if flags is None else flags), offline=not real)
    backend = (lambda: LocalBackend()) if real else None
    return run_check(policy, select_requirements(packs, ()), opts, backend=backend)


def ids_failing(report: Report) -> list[str]:
    """Ids of the requirements that did not pass."""
    return [r.requirement.id for r in report.failed]


def apply_rule_fix(policy_path: Path, fix: Fix, out_dir: Path) -> Path:
    """A copy of the policy with the fix's rules inserted where the fix says."""
    doc = yaml.safe_load(policy_path.read_text())
    assert fix.kind == "rule" and fix.insert_at is not None
    doc["rules"][fix.insert_at:fix.insert_at] = yaml.safe_load(fix.text)
    out = out_dir / f"fixed-{policy_path.name}"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def result_of(report: Report, rid: str) -> CheckResult:
    """The result of one requirement."""
    return next(r for r in report.results if r.requirement.id == rid)

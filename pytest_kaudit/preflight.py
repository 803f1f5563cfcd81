"""Checks made before the target apiserver's version is known (start-up and collection).

At that point only what every supported kube-apiserver version agrees on may be refused: a
policy is loaded if any version would accept it (an ``audit.k8s.io/v1beta1`` policy is fine for
1.20-1.23), and a flag is refused only when every version refuses it. The backend checks again
against its apiserver's own version before booting (``backends.base.validate_spec``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pytest_kaudit.errors import PolicyError
from pytest_kaudit.policy import Policy, Problem, validate_flags
from pytest_kaudit.policy.versions import (
    NEWEST,
    OLDEST,
    Version,
    accepted_api_versions,
    has_group_wildcard,
    knows_omit_managed_fields,
)

#: What the owned backends wire in themselves; stands in for it so that checks which only run
#: with a log backend configured (format, rotation) run as they will at boot.
_WIRED_FLAGS = {"audit-policy-file": "/kaudit/audit-policy.yaml",
                "audit-log-path": "/kaudit/audit.log"}


def supported_versions() -> list[Version]:
    """Every modelled minor version, newest first."""
    return [(NEWEST[0], minor) for minor in range(NEWEST[1], OLDEST[1] - 1, -1)]


def _acceptance(version: Version) -> tuple[object, ...]:
    """What decides, per version, whether the loader accepts a policy (not its warnings)."""
    return (accepted_api_versions(version), knows_omit_managed_fields(version),
            has_group_wildcard(version))


def acceptance_versions() -> list[Version]:
    """The newest version of each stretch of versions that accept the same policies."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for version in supported_versions():
        if _acceptance(version) not in seen:
            seen.add(_acceptance(version))
            out.append(version)
    return out


def load_policy_any_version(load: Callable[[Version], Policy]) -> Policy:
    """``load(version)`` for the newest version that accepts the policy.

    Raises:
        PolicyError: no supported version accepts it. The problems are those of the version
            that read furthest into the document (a v1beta1 policy with a bad rule is shown
            its rule, as 1.23 reports it, not only "v1beta1 was removed in 1.24").
    """
    failures: list[PolicyError] = []
    for version in acceptance_versions():
        try:
            return load(version)
        except PolicyError as exc:
            failures.append(exc)
            if all(p.code == "unreadable" for p in exc.problems if p.severity == "error"):
                break  # no version reads a file we cannot
    raise max(failures, key=_depth)  # max keeps the first (newest) of equals


def _depth(exc: PolicyError) -> int:
    """How many errors concern the document's content rather than its header."""
    return sum(1 for p in exc.problems
               if p.severity == "error" and p.field not in ("", "apiVersion", "kind"))


def flag_errors(flags: Mapping[str, Any], *, source: str) -> list[Problem]:
    """The errors every supported kube-apiserver version reports for these user flags."""
    wired = {**_WIRED_FLAGS, **flags}
    common: dict[tuple[str, str], Problem] | None = None
    for version in (OLDEST, NEWEST):
        found = {(p.code, p.field): p
                 for p in validate_flags(wired, target_version=version, source=source)
                 if p.severity == "error"}
        # keep the oldest version's words: they list every value some version accepts
        common = found if common is None else {k: v for k, v in common.items() if k in found}
    return list((common or {}).values())

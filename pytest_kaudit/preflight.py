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
from pytest_kaudit.policy.versions import NEWEST, OLDEST, Version

#: What the owned backends wire in themselves; stands in for it so that checks which only run
#: with a log backend configured (format, rotation) run as they will at boot.
_WIRED_FLAGS = {"audit-policy-file": "/kaudit/audit-policy.yaml",
                "audit-log-path": "/kaudit/audit.log"}


def supported_versions() -> list[Version]:
    """Every modelled minor version, newest first."""
    return [(NEWEST[0], minor) for minor in range(NEWEST[1], OLDEST[1] - 1, -1)]


def load_policy_any_version(load: Callable[[Version], Policy]) -> Policy:
    """``load(version)`` for the newest version that accepts the policy.

    Raises:
        PolicyError: no supported version accepts it; the newest version's problems.
    """
    first: PolicyError | None = None
    for version in supported_versions():
        try:
            return load(version)
        except PolicyError as exc:
            if first is None:
                first = exc
            if not _version_dependent(exc):
                break  # e.g. YAML syntax: every version says the same
    assert first is not None
    raise first


def _version_dependent(exc: PolicyError) -> bool:
    """Whether another version could judge these problems differently (not plain syntax)."""
    return any(p.code not in ("decode", "unreadable") for p in exc.problems
               if p.severity == "error")


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

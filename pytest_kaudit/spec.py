"""Which cluster configuration each test asks for: its ``kaudit`` markers over the session.

Every test's configuration is resolved at collection, before anything boots; a broken policy
or marker is kept for that test's fixture to report, so the other tests still run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_kaudit.backends.base import ClusterSpec
from pytest_kaudit.config import parse_flag_assignments
from pytest_kaudit.errors import KauditError, PolicyError
from pytest_kaudit.options import KauditConfig
from pytest_kaudit.policy_cache import PolicyCache
from pytest_kaudit.preflight import flag_errors

#: The configuration resolved for a test at collection.
SPEC_KEY = pytest.StashKey[ClusterSpec]()
#: Why a test's configuration could not be resolved (its fixture fails with it).
SPEC_ERROR_KEY = pytest.StashKey[str]()


def resolve_spec(item: pytest.Item, cfg: KauditConfig, policies: PolicyCache) -> ClusterSpec:
    """The configuration a test asks for: its ``kaudit`` markers over the session's settings.

    Each argument comes from the closest marker that sets it (test over class over module),
    so a test can add flags while its module gives the policy; flags merge outward-in.

    Raises:
        PolicyError / KauditError: an invalid policy or flags (before anything boots).
    """
    markers = list(item.iter_markers("kaudit"))  # closest first
    policy_value: Any = None
    has_policy = False
    flags = cfg.apiserver_flags
    marker_flags_where = f"@pytest.mark.kaudit(flags=...) on {item.nodeid}"
    for marker in reversed(markers):  # outermost first, so inner markers win
        kwargs = dict(marker.kwargs)
        if marker.args:
            kwargs.setdefault("policy", marker.args[0])
        unknown = set(kwargs) - {"policy", "flags"}
        if unknown:
            raise KauditError(f"@pytest.mark.kaudit got unknown argument(s) {sorted(unknown)}; "
                              "it takes policy=... and flags={...}")
        if "policy" in kwargs:
            policy_value, has_policy = kwargs["policy"], True
        flags.update(_marker_flags(kwargs.get("flags") or {}, marker_flags_where))
    if flags != cfg.apiserver_flags:  # the session's own were checked at start-up
        errors = flag_errors(flags, source=marker_flags_where)
        if errors:
            raise PolicyError(errors, headline=f"{marker_flags_where}: kube-apiserver would "
                                               "refuse to start with these flags")
    base_dir = Path(str(item.path)).parent
    value = policy_value if has_policy else cfg.policy
    if value is None and "audit-policy-file" in flags:
        value = flags.pop("audit-policy-file")
    policy = (policies.load(value, base_dir, cfg.rootdir, nodeid=item.nodeid) if value is not None
              else None)
    if policy is None and cfg.backend != "existing":
        raise KauditError(
            "no audit policy for this test: pass --kaudit-policy=PATH (ini kaudit_policy) or "
            "mark it with @pytest.mark.kaudit(policy=...)"
        )
    return ClusterSpec(policy=policy, flags=flags, timeout=cfg.boot_timeout)


def _marker_flags(value: Any, where: str) -> dict[str, str]:
    """A marker's ``flags``: ``{name: value}``, ``["NAME=VALUE", ...]`` or one "NAME=VALUE"."""
    if isinstance(value, Mapping):
        return {str(k).removeprefix("--"): _flag_text(v) for k, v in value.items()}
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        got = type(value).__name__ if not isinstance(value, (list, tuple)) else \
            f"a {type(value).__name__} holding " + ", ".join(
                sorted({type(v).__name__ for v in value if not isinstance(v, str)}))
        raise KauditError(f"{where}: expected {{name: value}} or a list of 'NAME=VALUE' "
                          f"strings, got {got}")
    try:
        return parse_flag_assignments(list(value), where)
    except ValueError as exc:
        raise KauditError(str(exc)) from None


def _flag_text(value: Any) -> str:
    """A flag value as kube-apiserver reads it (Python's True is Go's ``true``)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def presolve_specs(items: list[pytest.Item], cfg: KauditConfig, policies: PolicyCache) -> None:
    """Resolve every kaudit test's configuration at collection, before any cluster boots.

    A broken policy or marker is stored and reported by that test's fixture; the others run.
    """
    for item in items:
        if "kaudit" not in getattr(item, "fixturenames", ()):
            continue
        try:
            item.stash[SPEC_KEY] = resolve_spec(item, cfg, policies)
        except KauditError as exc:  # PolicyError too
            item.stash[SPEC_ERROR_KEY] = str(exc)


"""Kubernetes version parsing and the behaviour switches that depend on it."""

from __future__ import annotations

import re
from typing import TypeAlias

Version: TypeAlias = tuple[int, int]
VersionLike: TypeAlias = "str | Version | None"

#: The newest behaviour we model: k8s.io/apiserver master during 1.37 development.
NEWEST: Version = (1, 37)
#: The oldest behaviour we model.
OLDEST: Version = (1, 20)

_VERSION_RE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?\s*$")


def parse_version(value: VersionLike) -> Version:
    """Turn ``"v1.20.2"``, ``"1.20"`` or ``(1, 20)`` into ``(1, 20)``; ``None`` means newest.

    Raises:
        ValueError: the value is not a Kubernetes ``major.minor[.patch]`` version.
    """
    if value is None:
        return NEWEST
    if isinstance(value, tuple):
        if len(value) < 2 or not all(isinstance(v, int) for v in value[:2]):
            raise ValueError(f"invalid Kubernetes version {value!r}: expected (major, minor)")
        return (value[0], value[1])
    match = _VERSION_RE.match(str(value))
    if not match:
        raise ValueError(
            f"invalid Kubernetes version {value!r}: expected something like '1.20' or 'v1.20.2'"
        )
    return (int(match.group(1)), int(match.group(2)))


def accepted_api_versions(version: Version) -> tuple[str, ...]:
    """Policy ``apiVersion`` values the loader accepts (v1beta1/v1alpha1 were removed in 1.24)."""
    if version >= (1, 24):
        return ("audit.k8s.io/v1",)
    return ("audit.k8s.io/v1alpha1", "audit.k8s.io/v1beta1", "audit.k8s.io/v1")


def warns_deprecated_api_version(version: Version) -> bool:
    """1.21-1.23 log a deprecation warning for a non-v1 policy or event version."""
    return (1, 21) <= version < (1, 24)


def knows_omit_managed_fields(version: Version) -> bool:
    """``omitManagedFields`` exists from 1.23; earlier it is an unknown, dropped key."""
    return version >= (1, 23)


def warns_unknown_fields(version: Version) -> bool:
    """1.26+ logs unknown/duplicate fields (strict-then-lenient); earlier they are silent."""
    return version >= (1, 26)


def has_group_wildcard(version: Version) -> bool:
    """``group: "*"`` is valid and matches any group from 1.36."""
    return version >= (1, 36)


def renders_lists_as_json(version: Version) -> bool:
    """Validation messages render list values as JSON from 1.34 (Go syntax before)."""
    return version >= (1, 34)


def rotation_defaults(version: Version) -> dict[str, int]:
    """Defaults of ``--audit-log-maxsize/maxbackup/maxage`` (changed in 1.36)."""
    if version >= (1, 36):
        return {"audit-log-maxsize": 100, "audit-log-maxbackup": 100, "audit-log-maxage": 366}
    return {"audit-log-maxsize": 0, "audit-log-maxbackup": 0, "audit-log-maxage": 0}


def format_version(version: Version) -> str:
    """``(1, 20)`` -> ``"1.20"``."""
    return f"{version[0]}.{version[1]}"

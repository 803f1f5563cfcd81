"""What an expectation asks of an audit event, and how one event differs from it.

One routine both matches and explains: :meth:`Criteria.difference` lists the fields that
differ, and an event matches when that list is empty. Failure messages rank near misses by
the same list.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pytest_kaudit.events.model import AuditEvent

#: The filter names users may pass to ``events()`` / ``expect()``, in display order.
FIELDS: tuple[str, ...] = (
    "verb", "resource", "subresource", "namespace", "name", "api_group", "user",
    "impersonated_user", "stage", "level", "code", "decision", "audit_id",
)


@dataclass(frozen=True)
class Mismatch:
    """One field on which an event differs from the expectation."""

    field: str
    actual: Any
    expected: Any

    def __str__(self) -> str:
        return f"{self.field}: {_show(self.actual)} (expected {_show_expected(self.expected)})"


def _show(value: Any) -> str:
    if value is None or value == "":
        return '""' if value == "" else "none"
    return str(value.value if isinstance(value, Enum) else value)


def _show_expected(value: Any) -> str:
    if isinstance(value, (set, frozenset, list, tuple)):
        return " or ".join(sorted(_show(v) for v in value))
    return _show(value)


def _normalise(value: Any) -> Any:
    """Enums compare by their apiserver spelling; collections mean "any of"."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(_normalise(v) for v in value)
    return value.value if isinstance(value, Enum) else value


@dataclass(frozen=True)
class Criteria:
    """The filters of one expectation; only the given fields are checked.

    A value may be a single value or a collection meaning "any of these".
    """

    values: Mapping[str, Any]

    @classmethod
    def from_filters(cls, filters: Mapping[str, Any]) -> Criteria:
        """Build criteria from keyword filters, rejecting names that are not filters."""
        unknown = sorted(set(filters) - set(FIELDS))
        if unknown:
            raise TypeError(
                f"unknown audit event filter(s) {', '.join(unknown)}; "
                f"filters are: {', '.join(FIELDS)}"
            )
        return cls({k: _normalise(v) for k, v in filters.items() if v is not None})

    def difference(self, event: object, fields: tuple[str, ...] = FIELDS) -> list[Mismatch]:
        """The fields on which ``event`` differs from these criteria (empty = match).

        ``fields`` limits the comparison, so objects that carry only some of them (a sent
        request's attributes) are judged by the same rules.
        """
        out = []
        for name in fields:
            if name not in self.values:
                continue
            expected = self.values[name]
            actual = _normalise(getattr(event, name))
            ok = actual in expected if isinstance(expected, frozenset) else actual == expected
            if not ok:
                out.append(Mismatch(name, actual, expected))
        return out

    def match(self, event: AuditEvent) -> bool:
        """True when ``event`` satisfies every given field."""
        return not self.difference(event)

    def get(self, name: str, default: Any = None) -> Any:
        """The expected value of one field (single values only)."""
        value = self.values.get(name, default)
        return default if isinstance(value, Collection) and not isinstance(value, str) else value

    def __repr__(self) -> str:
        parts = [f"{k}={_show_expected(self.values[k])}" for k in FIELDS if k in self.values]
        return ", ".join(parts) if parts else "(any event)"

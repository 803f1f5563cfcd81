"""What an expectation asks of an audit event, and how one event differs from it.

One routine both matches and explains: :meth:`Criteria.difference` lists the fields that
differ, and an event matches when that list is empty. Failure messages rank near misses by
the same list.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pytest_kaudit._suggest import closest, did_you_mean
from pytest_kaudit.events.model import AuditEvent
from pytest_kaudit.policy.model import Level, Stage, parse_level, parse_stage

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


def _user_value(parse: Callable[[object, str], Any], value: object, where: str) -> Any:
    """``parse(value, where)`` with its ValueError raised from here, a frame pytest hides, so
    the user's traceback ends in their own call."""
    __tracebackhide__ = True
    try:
        return parse(value, where)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def parse_user_level(value: Level | str, where: str) -> Level:
    """A level given by a user; a one-line ValueError listing the levels otherwise."""
    __tracebackhide__ = True
    level: Level = _user_value(parse_level, value, where)
    return level


def parse_user_stages(values: Any, where: str) -> frozenset[Stage]:
    """Stages given by a user: a collection of names or members (one name alone is fine)."""
    __tracebackhide__ = True
    if isinstance(values, (str, Stage)):
        values = [values]
    stages = set()
    for value in values:  # a loop, not a generator: no extra frame in the user's traceback
        stages.add(_user_value(parse_stage, value, where))
    return frozenset(stages)


#: Filters whose values must be one of an enum's members.
_ENUM_FILTERS: dict[str, Callable[[object, str], Any]] = {"level": parse_level,
                                                        "stage": parse_stage}


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
        """Build criteria from keyword filters, rejecting names that are not filters.

        Raises:
            TypeError: an unknown filter name (with a hint for near misses).
            ValueError: a level or stage that does not exist.
        """
        __tracebackhide__ = True
        unknown = sorted(set(filters) - set(FIELDS))
        if unknown:
            guesses = {n: closest(n, FIELDS) for n in unknown}
            hints = (did_you_mean(unknown[0], FIELDS) if len(unknown) == 1 else
                     "".join(f"; {n!r}: did you mean {g!r}?" for n, g in guesses.items() if g))
            raise TypeError(
                f"unknown audit event filter(s) {', '.join(unknown)}; "
                f"filters are: {', '.join(FIELDS)}{hints}"
            )
        for name, parse in _ENUM_FILTERS.items():
            value = filters.get(name)
            if value is None:
                continue
            values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
            for v in values:
                _user_value(parse, v, f"the {name} filter")
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

""""Did you mean ...?" hints for enum-like user input (options, filters, levels, stages)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The choice ``value`` most likely meant (case-insensitive), or None when none is close."""
    options = list(choices)
    by_lower = {c.lower(): c for c in options}
    if value.lower() in by_lower:
        return by_lower[value.lower()]
    match = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """``"; did you mean 'kind'?"`` or ``""``, for appending to an error message."""
    guess = closest(str(value), choices)
    return f"; did you mean {guess!r}?" if guess is not None and guess != value else ""


def invalid_choice(origin: str, value: object, choices: Iterable[str]) -> str:
    """``"<origin>: invalid choice: 'x' (choose from a, b; did you mean 'a'?)"``."""
    options = list(choices)
    return (f"{origin}: invalid choice: {value!r} (choose from {', '.join(options)}"
            f"{did_you_mean(value, options)})")

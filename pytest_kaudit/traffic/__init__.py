"""The one way to send an attributed request and judge what the audit log made of it.

Describe a request (:class:`RequestSpec`, :class:`Identity`), send it through the fixture's
attributed clients (:class:`TrafficSession`), and compare the events it left with the policy
engine's prediction (:class:`Logged`, :func:`predict`, :func:`observe`). ``kaudit check``
and ``kaudit verify`` both build on this module.

The session (and with it the ``kubernetes`` client) is imported on first use of its names, so
what only describes requests (``kaudit scaffold``, the witness search) starts without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pytest_kaudit.traffic.bodies import default_object, with_default_body
from pytest_kaudit.traffic.judge import Logged, disagreements, evidence, observe, predict
from pytest_kaudit.traffic.request import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    Identity,
    RequestSpec,
)

if TYPE_CHECKING:
    from pytest_kaudit.traffic.session import Sent, TrafficSession, Verdict

#: Names served by :mod:`pytest_kaudit.traffic.session`, loaded when first asked for.
_SESSION_NAMES = frozenset({"Sent", "TrafficSession", "Verdict"})


def __getattr__(name: str) -> object:
    if name in _SESSION_NAMES:
        return getattr(importlib.import_module("pytest_kaudit.traffic.session"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "APPLY_PATCH", "JSON_PATCH", "MERGE_PATCH", "STRATEGIC_PATCH", "Identity", "Logged",
    "RequestSpec", "Sent", "TrafficSession", "Verdict", "default_object", "disagreements",
    "evidence", "observe", "predict", "with_default_body",
]

"""The one way to send an attributed request and judge what the audit log made of it.

Describe a request (:class:`RequestSpec`, :class:`Identity`), send it through the fixture's
attributed clients (:class:`TrafficSession`), and compare the events it left with the policy
engine's prediction (:class:`Logged`, :func:`predict`, :func:`observe`). ``kaudit check``
and ``kaudit verify`` both build on this module.
"""

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
from pytest_kaudit.traffic.session import Sent, TrafficSession, Verdict

__all__ = [
    "APPLY_PATCH", "JSON_PATCH", "MERGE_PATCH", "STRATEGIC_PATCH", "Identity", "Logged",
    "RequestSpec", "Sent", "TrafficSession", "Verdict", "default_object", "disagreements",
    "evidence", "observe", "predict", "with_default_body",
]

"""Expectations over audit events and the messages that explain their failures."""

from pytest_kaudit.expect.criteria import FIELDS, Criteria, Mismatch
from pytest_kaudit.expect.expectation import EventWindow, Expectation, predicted_stages
from pytest_kaudit.expect.report import Prediction, describe_event

__all__ = [
    "FIELDS", "Criteria", "EventWindow", "Expectation", "Mismatch", "Prediction",
    "describe_event", "predicted_stages",
]

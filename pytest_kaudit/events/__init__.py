"""Audit events and reading them from the log the apiserver writes."""

from pytest_kaudit.events.log import (
    AuditLog,
    Chunk,
    FileLogSource,
    LogFollower,
    LogProblem,
    LogSource,
)
from pytest_kaudit.events.model import AuditEvent, event_from_dict

__all__ = [
    "AuditEvent",
    "AuditLog",
    "Chunk",
    "FileLogSource",
    "LogFollower",
    "LogProblem",
    "LogSource",
    "event_from_dict",
]

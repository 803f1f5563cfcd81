"""Replay: what a candidate audit policy would do to the traffic in existing audit logs.

``inputs`` finds and opens logs (rotated siblings, gzip, stdin) and reads bounded lines;
``records`` decodes a line into a typed record of the fields replay needs; ``engine`` keeps
the per-class statistics; ``reader`` drives the engine, splitting large files across
processes; ``render`` prints the report. ``kaudit replay`` is a thin command over these.
"""

from pytest_kaudit.replay.engine import (
    MAX_WARNINGS_SHOWN,
    InputWarning,
    Replayer,
    ReplayReport,
)
from pytest_kaudit.replay.inputs import MAX_LINE_BYTES, InputError, check_inputs, expand_rotated
from pytest_kaudit.replay.reader import replay_paths
from pytest_kaudit.replay.render import render_text, report_json

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_WARNINGS_SHOWN",
    "InputError",
    "InputWarning",
    "ReplayReport",
    "Replayer",
    "check_inputs",
    "expand_rotated",
    "render_text",
    "replay_paths",
    "report_json",
]

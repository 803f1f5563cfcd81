"""Fixtures of the ``kaudit check`` tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from compliance_helpers import Checker, check

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.compliance.results import Report


@pytest.fixture
def real_check(control_plane_binaries: ControlPlaneBinaries) -> Checker:
    """``check(..., real=True)`` once the real binaries are known to exist."""

    def run(path: Path | str, **kwargs: object) -> Report:
        return check(path, real=True, **kwargs)  # type: ignore[arg-type]

    return run

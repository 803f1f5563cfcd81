"""Run ``kaudit scaffold`` in-process, capturing both streams."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from pytest_kaudit.cli import main


@dataclass
class Result:
    """Exit code and captured output of one ``kaudit`` run."""

    code: int
    out: str
    err: str


@pytest.fixture
def kaudit_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``kaudit_cli("scaffold", policy, "-o", path)``."""
    def run(*argv: object) -> Result:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run

"""Shared helpers for the ``kaudit`` CLI tests: run ``main`` and capture both streams."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_kaudit.cli import main

DATA = Path(__file__).parent / "data"


@dataclass
class Result:
    """Exit code and captured output of one ``kaudit`` run."""

    code: int
    out: str
    err: str


@pytest.fixture
def kaudit(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``kaudit`` in-process: ``kaudit("lint", path)``."""

    def run(*argv: str) -> Result:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def data() -> Path:
    """The directory of committed sample policies and audit logs."""
    return DATA


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return _write

"""The coverage report file is written even when its directory went away during the run."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_kaudit.coverage_session import write_report


def test_a_removed_directory_is_created_again(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "cov.json"
    assert write_report(target, {"percent": 50.0}) is None
    assert json.loads(target.read_text()) == {"percent": 50.0}


def test_an_unwritable_path_is_explained(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a directory should be")
    error = write_report(tmp_path / "blocker" / "cov.json", {})
    assert error is not None
    assert error.startswith(f"kaudit: cannot write the coverage report {tmp_path}/blocker/cov.json")

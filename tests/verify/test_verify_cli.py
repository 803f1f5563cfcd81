"""``kaudit verify`` input handling: refused before anything boots, exit 2, file and line named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kaudit.cli import main
from tests.conftest import POLICIES


def test_bad_flag_is_refused_before_boot(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", str(POLICIES / "brief.yaml"), "--flag", "audit-log-maxage=-3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "audit-log-maxage" in err


def test_flag_without_value_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(POLICIES / "brief.yaml"), "--flag", "audit-log-maxage"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_bad_policy_names_file_and_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Loud\n")
    assert main(["verify", str(bad)]) == 2
    assert "p.yaml:4" in capsys.readouterr().err


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(POLICIES / "brief.yaml"), "--format", "html"]) == 2
    assert "--format" in capsys.readouterr().err

"""The unchanged example suite with --kaudit-backend=kind, against the kind/docker DOUBLES.

The doubles boot the real local kube-apiserver 1.20; this is not evidence about real kind.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import EXAMPLES


def test_kind_double_runs_the_example_suite_unchanged(double_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES), "-p", "no:cacheprovider", "-q",
         "--kaudit-backend=kind"],
        env=double_env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "6 passed" in proc.stdout

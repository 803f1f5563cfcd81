"""Shared fixtures of pytest-kaudit's own test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries, find_binaries
from pytest_kaudit.errors import BinaryNotFound

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "fixtures" / "policies"
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def control_plane_binaries() -> ControlPlaneBinaries:
    """The real etcd + kube-apiserver. CI (KAUDIT_REQUIRE_BINARIES=1) fails without them.

    Their paths are exported as TEST_ASSET_* so pytester runs (which get a fresh HOME, hence
    no provision cache) find the same binaries.
    """
    try:
        binaries = find_binaries()
        os.environ["TEST_ASSET_KUBE_APISERVER"] = str(binaries.apiserver)
        os.environ["TEST_ASSET_ETCD"] = str(binaries.etcd)
        return binaries
    except BinaryNotFound as exc:
        if os.environ.get("KAUDIT_REQUIRE_BINARIES"):
            pytest.fail(f"real control-plane binaries are required here:\n{exc}", pytrace=False)
        pytest.skip(f"no control-plane binaries (run clusters/local/provision):\n{exc}")

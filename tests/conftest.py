"""Shared fixtures of pytest-kaudit's own test suite."""

from __future__ import annotations

import os
from pathlib import Path

import kubernetes.client.api.core_v1_api  # noqa: F401 - see below
import kubernetes.client.api.rbac_authorization_v1_api  # noqa: F401
import pytest

import pytest_kaudit.fixture  # noqa: F401
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries, find_binaries
from pytest_kaudit.errors import BinaryNotFound

# The plugin imports the kubernetes client only once a test uses a cluster. pytester's
# in-process runs unload every module first imported inside them; a client whose models were
# unloaded that way while its package kept them then refuses its own objects (a V1Pod's
# metadata "should be an instance of V1ObjectMeta"). So this suite loads the fixture's object
# and the API classes it calls, with the models they use, before any pytester run.

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "fixtures" / "policies"
EXAMPLES = ROOT / "examples"


def ctrl_c_interrupts() -> None:
    """``preexec_fn`` for a child a test sends SIGINT: a shell's background job (``cmd &``)
    starts with SIGINT ignored, and Python then never raises KeyboardInterrupt; the child
    gets the default action back, as in a terminal."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


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

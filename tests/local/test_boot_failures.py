"""How a failed local boot is reported: at once, once, with the words of the process itself.

The etcd and kube-apiserver here are stand-ins (shell scripts): what is under test is how the
backend reacts to a child that exits at once, which no real binary does on demand.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pytest_kaudit.backends.base import ClusterSpec
from pytest_kaudit.backends.local import LocalBackend
from pytest_kaudit.errors import BootError
from pytest_kaudit.policy import Policy
from tests.conftest import POLICIES

STAND_IN_APISERVER = """#!/bin/sh
case "$1" in
  --version) echo "Kubernetes v1.20.2" ;;
  --help) printf '      --audit-log-path string   stand-in\\n' ;;
  *) echo "stand-in kube-apiserver ran" >&2; sleep 300 ;;
esac
"""


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize("code", [0, 3])
def test_an_etcd_that_exits_at_once_is_reported_at_once(tmp_path: Path, code: int) -> None:
    bins = tmp_path / "bin"
    bins.mkdir()
    etcd = _script(bins / "etcd", f"#!/bin/sh\necho 'stand-in etcd: cannot start' >&2\n"
                                  f"exit {code}\n")
    apiserver = _script(bins / "kube-apiserver", STAND_IN_APISERVER)
    work = tmp_path / "work"
    work.mkdir()
    backend = LocalBackend(apiserver_bin=apiserver, etcd_bin=etcd, base_dir=work)
    # a long boot timeout: a report that waited for it would say "not ready within 3600s"
    with pytest.raises(BootError) as failed:
        backend.start(ClusterSpec(Policy.load(POLICIES / "brief.yaml"), timeout=3600))
    text = str(failed.value)
    assert text.startswith(f"etcd failed to start: exited with code {code}")
    assert text.count("stand-in etcd: cannot start") == 1  # the tail, inline
    assert str(work) not in text  # no path into the directory that is already gone
    assert list(work.iterdir()) == []

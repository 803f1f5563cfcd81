"""Process and temp-dir hygiene of the local backend, against the real binaries.

Nothing may be left behind: on a normal stop, a boot failure, Ctrl-C, SIGTERM, or a killed
apiserver. Liveness is read from /proc (a zombie counts as dead).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_kaudit.backends.base import ClusterSpec
from pytest_kaudit.backends.local import LocalBackend
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.errors import BootError, KauditError
from pytest_kaudit.policy import Policy
from tests.conftest import POLICIES, ctrl_c_interrupts

BRIEF = POLICIES / "brief.yaml"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def test_stop_leaves_no_process_and_no_directory(control_plane_binaries: ControlPlaneBinaries,
                                                 tmp_path: Path) -> None:
    backend = LocalBackend(base_dir=tmp_path)
    handle = backend.start(ClusterSpec(Policy.load(BRIEF)))
    pids = [int(handle.details["apiserver pid"]), int(handle.details["etcd pid"])]
    workdir = handle.workdir
    assert workdir is not None and all(_alive(p) for p in pids)
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    for key in [handle.admin.key_file, workdir / "pki" / "ca.key", workdir / "pki" / "sa.key"]:
        assert key is not None and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert handle.version >= (1, 20)
    backend.stop(handle)
    assert not workdir.exists()
    assert not any(_alive(p) for p in pids)
    backend.stop(handle)  # twice is harmless


def test_boot_failure_shows_the_apiservers_own_words(control_plane_binaries: ControlPlaneBinaries,
                                                     tmp_path: Path) -> None:
    backend = LocalBackend(base_dir=tmp_path)
    with pytest.raises(BootError) as failed:
        backend.start(ClusterSpec(Policy.load(BRIEF), flags={"authorization-mode": "Nope"},
                                  timeout=60))
    text = str(failed.value)
    assert "kube-apiserver failed to start: exited with code" in text
    assert 'authorization-mode "Nope" is not a valid mode' in text  # its stderr, verbatim
    assert list(tmp_path.iterdir()) == []  # etcd stopped, directory removed


WAITER = """
import json, os, time, pytest

@pytest.mark.kaudit(policy={policy!r})
def test_hold(kaudit):
    kaudit.create_configmap("c")
    info = {{"workdir": str(kaudit.handle.workdir),
             "pids": [int(kaudit.handle.details["apiserver pid"]), int(kaudit.handle.details["etcd pid"])]}}
    with open({state!r} + ".tmp", "w") as fh:
        json.dump(info, fh)
    os.rename({state!r} + ".tmp", {state!r})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # held until the parent interrupts us
        time.sleep(0.05)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_leaves_nothing(control_plane_binaries: ControlPlaneBinaries,
                                        tmp_path: Path, sig: signal.Signals) -> None:
    state = tmp_path / "state.json"
    (tmp_path / "test_hold.py").write_text(WAITER.format(policy=str(BRIEF), state=str(state)))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "test_hold.py"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=ctrl_c_interrupts)
    try:
        _wait_until(state.exists, 120, "the test to hold its cluster")
        info = json.loads(state.read_text())
        assert all(_alive(p) for p in info["pids"])
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in out or "Interrupted" in out, out
    _wait_until(lambda: not any(_alive(p) for p in info["pids"]), 15, "processes to go")
    assert not Path(info["workdir"]).exists()


def test_a_killed_apiserver_is_reported_then_replaced(control_plane_binaries: ControlPlaneBinaries,
                                                      pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import json, os, signal, time, pytest
        pytestmark = pytest.mark.kaudit(policy={str(BRIEF)!r})
        PIDS = []

        def test_kill(kaudit):
            pid = int(kaudit.handle.details["apiserver pid"])
            PIDS.append(pid)
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10  # until the kernel has made it a zombie
            while open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
                assert time.monotonic() < deadline
                time.sleep(0.01)

        def test_next_is_told(kaudit):
            pass

        def test_then_fresh(kaudit):
            kaudit.create_secret("s")
            kaudit.expect(verb="create", resource="secrets").logged(level="Metadata")
            with open("dirs.json", "w") as fh:
                json.dump({{"workdir": str(kaudit.handle.workdir)}}, fh)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*the control plane kaudit-local-* died during the session*",
                                 "*--- last lines of the kube-apiserver log ---*"])
    workdir = json.loads((pytester.path / "dirs.json").read_text())["workdir"]
    assert not Path(workdir).exists()


def test_a_sigkilled_run_is_cleaned_by_the_next(control_plane_binaries: ControlPlaneBinaries,
                                                tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    (tmp_path / "test_hold.py").write_text(WAITER.format(policy=str(BRIEF), state=str(state)))
    base = tmp_path / "clusters"
    base.mkdir()
    env = {**os.environ, "TMPDIR": str(base)}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "test_hold.py"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until(state.exists, 120, "the test to hold its cluster")
        info = json.loads(state.read_text())
        proc.kill()  # no cleanup code runs in the owner
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the kernel's parent-death signal stops the children...
    _wait_until(lambda: not any(_alive(p) for p in info["pids"]), 60, "orphans to stop")
    assert Path(info["workdir"]).exists()
    # ...and the next cluster start removes the directory the dead run left
    backend = LocalBackend(base_dir=base)
    handle = backend.start(ClusterSpec(Policy.load(BRIEF)))
    backend.stop(handle)
    assert not Path(info["workdir"]).exists()


@pytest.mark.parametrize("flags", [{"not-a-flag": "1"}, {"v": "loud"}])
def test_flags_the_binary_cannot_parse_are_refused_before_booting(
        control_plane_binaries: ControlPlaneBinaries, tmp_path: Path,
        flags: dict[str, str]) -> None:
    backend = LocalBackend(base_dir=tmp_path)
    with pytest.raises(KauditError) as refused:
        backend.start(ClusterSpec(Policy.load(BRIEF), flags=flags, timeout=60))
    text = str(refused.value)
    assert "refuses these flags (checked before booting; nothing was started)" in text
    name = next(iter(flags))
    assert f"--{name}" in text
    assert list(tmp_path.iterdir()) == []  # no directory, so no etcd either


def test_deprecated_flags_hidden_from_help_still_pass_the_check(
        control_plane_binaries: ControlPlaneBinaries) -> None:
    from pytest_kaudit.backends.local.backend import refuse_unparsable_flags

    if control_plane_binaries.supports("insecure-port") or control_plane_binaries.version >= (1, 24):
        pytest.skip("needs an apiserver where --insecure-port is deprecated, not gone")
    refuse_unparsable_flags(control_plane_binaries, {"insecure-port": "0"})


def test_flags_the_backend_owns_are_refused_before_booting(tmp_path: Path) -> None:
    from pytest_kaudit.errors import KauditError

    backend = LocalBackend(base_dir=tmp_path, apiserver_bin="/nonexistent")
    with pytest.raises(KauditError, match="the local backend sets --etcd-servers itself"):
        backend.start(ClusterSpec(Policy.load(BRIEF), flags={"etcd-servers": "http://x"}))

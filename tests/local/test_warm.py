"""The warm local control plane (``--kaudit-reuse``, ``kaudit up/down/status``), real processes.

Every test uses a private cache (``KAUDIT_CACHE_DIR``) and stops the plane it made; the
fixture checks that no process, port or directory is left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_kaudit.backends._http import request as http_request
from pytest_kaudit.backends._http import ssl_context
from pytest_kaudit.backends.base import ClusterSpec
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.backends.local.warm import WarmPlane, cmdline
from pytest_kaudit.cli import main as kaudit_main
from pytest_kaudit.policy import Policy
from tests.conftest import POLICIES, ctrl_c_interrupts

BRIEF = POLICIES / "brief.yaml"

#: A test module recording what the run used; its test proves its requests are audited.
RECORDER = """
import json, os, pytest

@pytest.mark.kaudit(policy={policy!r})
def test_record(kaudit):
    kaudit.create_secret("s")
    kaudit.expect(verb="create", resource="secrets").logged(level="Metadata")
    state = json.load(open(os.path.join(os.environ["KAUDIT_CACHE_DIR"], "warm", "state.json")))
    with open({out!r}, "w") as fh:
        json.dump({{"apiserver": int(kaudit.handle.details["apiserver pid"]),
                    "etcd": int(kaudit.handle.details["etcd pid"]),
                    "server": kaudit.handle.server, "port": state["port"],
                    "name": kaudit.handle.name}}, fh)
"""

#: A policy other than brief.yaml: configmaps at Request, so a switch is visible in the log.
OTHER_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Request
  resources: [{group: "", resources: [configmaps]}]
- level: Metadata
"""


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


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _plane_pids(directory: Path) -> list[int]:
    """Every process whose command line names the plane's directory (etcd, apiserver, watchdog)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and any(str(directory) in a for a in cmdline(int(entry.name))):
            if _alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def warm_cache(control_plane_binaries: ControlPlaneBinaries, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cache for the plane; afterwards nothing of it may run or remain."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("KAUDIT_CACHE_DIR", str(cache))
    directory = cache / "warm"
    try:
        yield directory
    finally:
        WarmPlane(directory=directory).down()
        _wait_until(lambda: not _plane_pids(directory), 15, "the plane's processes to go")
        assert not directory.exists()


def _run(pytester: pytest.Pytester, name: str, policy: str | Path = BRIEF,
         *args: str) -> tuple[pytest.RunResult, dict[str, int | str]]:
    out = pytester.path / f"{name}.json"
    pytester.makepyfile(**{name: RECORDER.format(policy=str(policy), out=str(out))})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kaudit-reuse",
                                           f"{name}.py", *args)
    result.assert_outcomes(passed=1)
    return result, json.loads(out.read_text())


def test_second_run_attaches_then_down_leaves_nothing(warm_cache: Path,
                                                      pytester: pytest.Pytester) -> None:
    first, used = _run(pytester, "test_first")
    first.stdout.fnmatch_lines(["kaudit: started a warm plane (no warm plane ran here)*"])
    assert used["name"] == "kaudit-warm"
    pids = [int(used["apiserver"]), int(used["etcd"])]
    assert all(_alive(p) for p in pids)  # the run is over; the pair still runs
    assert oct(warm_cache.stat().st_mode & 0o777) == "0o700"
    for secret in (warm_cache / "kubeconfig", warm_cache / "pki" / "ca.key",
                   warm_cache / "pki" / "sa.key", warm_cache / "state.json"):
        assert oct(secret.stat().st_mode & 0o777) == "0o600", secret

    second, again = _run(pytester, "test_second")
    second.stdout.fnmatch_lines(["kaudit: attached to the warm plane in *"])
    assert again == used  # the same processes on the same port

    assert kaudit_main(["down"]) == 0
    assert not any(_alive(p) for p in pids)
    assert kaudit_main(["down"]) == 0  # nothing left to stop is not an error
    assert not warm_cache.exists()
    # the kernel releases a killed listener's port a moment after the process is gone
    _wait_until(lambda: _port_free(int(used["port"])), 10, "the apiserver's port to be free")


def test_policy_switch_restarts_only_the_apiserver(warm_cache: Path, tmp_path: Path,
                                                  pytester: pytest.Pytester) -> None:
    _, before = _run(pytester, "test_first")
    other = tmp_path / "other.yaml"
    other.write_text(OTHER_POLICY)
    result, after = _run(pytester, "test_switched", other)
    result.stdout.fnmatch_lines(["kaudit: switched its kube-apiserver to this run's policy and "
                                 "flags (etcd kept)*"])
    assert after["etcd"] == before["etcd"]
    assert after["apiserver"] != before["apiserver"] and not _alive(int(before["apiserver"]))
    state = json.loads((warm_cache / "state.json").read_text())
    assert state["policy_source"] == str(other)

    flagged, with_flag = _run(pytester, "test_flagged", other,
                              "--kaudit-apiserver-flag=audit-log-maxbackup=3")
    flagged.stdout.fnmatch_lines(["kaudit: switched its kube-apiserver*"])
    assert with_flag["etcd"] == before["etcd"]
    assert "--audit-log-maxbackup=3" in cmdline(int(with_flag["apiserver"]))


def test_a_policy_switch_skips_only_the_wait_for_bootstrap_objects_that_exist(
        warm_cache: Path, control_plane_binaries: ControlPlaneBinaries) -> None:
    """A policy-only switch does not wait for the RBAC and PriorityClass bootstrap hooks: an
    apiserver of the same binaries and flags made those objects in the kept etcd, so they are
    there the moment it returns. A flag change waits for full readiness."""
    plane = WarmPlane(control_plane_binaries, directory=warm_cache)
    try:
        plane.attach(ClusterSpec(Policy.load(BRIEF)), timeout=120)
        plane.release()
        attached = plane.attach(ClusterSpec(Policy.from_yaml(OTHER_POLICY)), timeout=120)
        assert attached is not None
        handle, note = attached
        assert note.startswith("switched its kube-apiserver")
        ctx = ssl_context(handle.ca_file, handle.admin)
        for path in ("/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin",
                     "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cluster-admin",
                     "/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical"):
            assert http_request(handle.server, path, ctx, creds=handle.admin)[0] == 200, path
        plane.release()

        flagged = ClusterSpec(Policy.from_yaml(OTHER_POLICY), {"audit-log-maxbackup": "3"})
        attached = plane.attach(flagged, timeout=120)
        assert attached is not None
        handle, _ = attached
        status, body = http_request(handle.server, "/readyz?verbose", ctx, creds=handle.admin)
        assert status == 200, body.decode()
        plane.release()
    finally:
        plane.down()


def _kill_apiserver(directory: Path, used: dict[str, int | str]) -> None:
    os.kill(int(used["apiserver"]), signal.SIGKILL)
    _wait_until(lambda: not _alive(int(used["apiserver"])), 15, "the apiserver to die")


def _kill_etcd(directory: Path, used: dict[str, int | str]) -> None:
    os.kill(int(used["etcd"]), signal.SIGKILL)
    _wait_until(lambda: not _alive(int(used["etcd"])), 15, "etcd to die")


def _delete_state(directory: Path, used: dict[str, int | str]) -> None:
    import shutil

    shutil.rmtree(directory)


@pytest.mark.parametrize(("damage", "note"), [
    (_kill_apiserver, "kaudit: restarted its kube-apiserver, etcd kept (its kube-apiserver "
                      "(pid *) is gone)*"),
    (_kill_etcd, "kaudit: started a warm plane (its etcd (pid *) is gone)*"),
    (_delete_state, "kaudit: started a warm plane (no warm plane ran here)*"),
], ids=["apiserver-sigkilled", "etcd-sigkilled", "state-deleted"])
def test_a_damaged_plane_is_replaced_with_a_note(warm_cache: Path, pytester: pytest.Pytester,
                                                 damage, note) -> None:  # type: ignore[no-untyped-def]
    _, used = _run(pytester, "test_first")
    damage(warm_cache, used)
    result, now = _run(pytester, "test_after")
    result.stdout.fnmatch_lines([note])
    assert now["apiserver"] != used["apiserver"]
    # whatever of the old plane still ran is stopped (the state's watchdog sees it deleted)
    _wait_until(lambda: not _alive(int(used["apiserver"])) and not _alive(int(used["etcd"]))
                or now["etcd"] == used["etcd"], 30, "the old plane's processes to go")


def test_a_taken_port_and_a_foreign_pid_are_never_trusted(warm_cache: Path,
                                                          pytester: pytest.Pytester) -> None:
    _, used = _run(pytester, "test_first")
    _kill_apiserver(warm_cache, used)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def squat() -> bool:  # the kernel frees the killed listener's port a moment later
        try:
            squatter.bind(("127.0.0.1", int(used["port"])))
        except OSError:
            return False
        return True

    _wait_until(squat, 10, "the old apiserver port to be free for the squatter")
    squatter.listen()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        state_file = warm_cache / "state.json"
        state = json.loads(state_file.read_text())
        state["apiserver_pid"] = stranger.pid  # as if the pid had been reused
        state_file.write_text(json.dumps(state))
        result, now = _run(pytester, "test_after")
        result.stdout.fnmatch_lines([f"kaudit: restarted its kube-apiserver, etcd kept (its "
                                     f"kube-apiserver (pid {stranger.pid}) is gone)*"])
        assert now["port"] != used["port"]
        assert stranger.poll() is None  # not ours: never signalled
    finally:
        squatter.close()
        stranger.kill()
        stranger.wait()


def test_two_concurrent_runs_share_one_plane(warm_cache: Path, pytester: pytest.Pytester) -> None:
    _run(pytester, "test_first")  # the plane is up
    outs = [pytester.path / f"run{i}.json" for i in range(2)]
    for i, out in enumerate(outs):
        pytester.makepyfile(**{f"test_run{i}": RECORDER.format(policy=str(BRIEF),
                                                               out=str(out))})
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                               "--kaudit-reuse", f"test_run{i}.py"], cwd=pytester.path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for proc, text in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, text
        assert "attached to the warm plane" in text
    used = [json.loads(out.read_text()) for out in outs]
    assert used[0]["apiserver"] == used[1]["apiserver"]


def test_kaudit_up_status_then_pytest_attaches(warm_cache: Path, pytester: pytest.Pytester,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert kaudit_main(["status"]) == 1  # nothing runs yet
    assert kaudit_main(["up", "--policy", str(BRIEF)]) == 0
    out = capsys.readouterr().out
    assert f"export KUBECONFIG={warm_cache / 'kubeconfig'}" in out
    assert f"# audit log: {warm_cache / 'audit' / 'audit.log'}" in out
    kubectl = subprocess.run(["kubectl", "get", "ns", "default", "-o", "name"],
                             env={**os.environ, "KUBECONFIG": str(warm_cache / "kubeconfig")},
                             capture_output=True, text=True, timeout=60, check=False)
    assert kubectl.stdout.strip() == "namespace/default", kubectl.stderr

    result, used = _run(pytester, "test_after_up")
    result.stdout.fnmatch_lines(["kaudit: attached to the warm plane in *"])

    assert kaudit_main(["status"]) == 0
    status = capsys.readouterr().out
    assert "kube-apiserver v" in status and f"pid {used['apiserver']}" in status
    assert f"policy {BRIEF}" in status and "audit log" in status and "bytes)" in status


def test_an_idle_plane_stops_itself(warm_cache: Path, pytester: pytest.Pytester) -> None:
    _, used = _run(pytester, "test_idle", BRIEF, "--kaudit-warm-idle=0.02")  # 1.2 s
    _wait_until(lambda: not warm_cache.exists(), 60, "the idle plane to stop")
    _wait_until(lambda: not _alive(int(used["apiserver"])) and not _alive(int(used["etcd"])),
                15, "its processes to go")


def test_ctrl_c_during_a_policy_switch_leaves_the_plane_usable(
        warm_cache: Path, tmp_path: Path, pytester: pytest.Pytester) -> None:
    _, before = _run(pytester, "test_first")
    other = tmp_path / "other.yaml"
    other.write_text(OTHER_POLICY)
    out = pytester.path / "interrupted.json"
    pytester.makepyfile(test_interrupted=RECORDER.format(policy=str(other), out=str(out)))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--kaudit-reuse", "test_interrupted.py"], cwd=pytester.path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=ctrl_c_interrupts)

    def switching() -> bool:  # the old apiserver is gone: the switch is under way
        return not _alive(int(before["apiserver"])) or proc.poll() is not None

    try:
        _wait_until(switching, 120, "the switch to begin")
        proc.send_signal(signal.SIGINT)
        text = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in text or "Interrupted" in text or "passed" in text, text
    result, after = _run(pytester, "test_after")  # the plane serves the next run
    # an apiserver the interrupted run started but never recorded is not left running
    apiservers = [pid for pid in _plane_pids(warm_cache)
                  if Path(cmdline(pid)[0]).name == "kube-apiserver"]
    assert apiservers == [after["apiserver"]]
    result.stdout.fnmatch_lines(["kaudit: * in */cache/warm (*s)"])  # attached or switched
    assert after["etcd"] == before["etcd"]

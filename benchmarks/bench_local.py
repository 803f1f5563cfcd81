"""Benchmarks of the local backend and the fixture (issues 3 and 12).

Measures, on this machine, medians over repeated runs, each pair side by side (alternating):
  * cold boot: LocalBackend.start() to /readyz, and `pytest` of one example test end to end,
    as a ratio (target <= 1.3);
  * warm plane (--kaudit-reuse): a second identical run's wall time vs the cold run, and its
    overhead over the tests' own time (target <= 1.5 s); a policy switch on the warm plane vs
    a cold boot (target <= 0.7); `kaudit up` from nothing vs a cold boot;
  * per-call overhead of expect().logged() and expect().not_logged() after one request;
  * log reading: MB/s over a generated log of --log-mb megabytes (full decode, and with the
    Audit-ID prefix filter), and the time of one poll after a request appended to that log.

Third-party pytest plugins installed on the machine (hypothesis, benchmark, xdist) are turned
off in the timed runs (-p no:...): their import time is not the plugin's.

Usage: python benchmarks/bench_local.py [--boots 5] [--calls 30] [--log-mb 1024] [--only dev]
Needs the control-plane binaries (clusters/local/provision).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_kaudit.backends.base import ClusterSpec  # noqa: E402
from pytest_kaudit.backends.local import LocalBackend  # noqa: E402
from pytest_kaudit.backends.local.binaries import find_binaries  # noqa: E402
from pytest_kaudit.backends.local.warm import WarmPlane  # noqa: E402
from pytest_kaudit.events.log import AuditLog, FileLogSource  # noqa: E402
from pytest_kaudit.fixture import KAudit  # noqa: E402
from pytest_kaudit.policy import Policy  # noqa: E402

BRIEF = ROOT / "fixtures" / "policies" / "brief.yaml"
OTHER_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Request
  resources: [{group: "", resources: [configmaps]}]
- level: Metadata
"""
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
          "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:xdist"]
ONE_TEST = [str(ROOT / "examples"), "-k", "secret_reads"]


def machine() -> str:
    return f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def _timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def _bare_boot(policy: Policy) -> float:
    backend = LocalBackend()
    t0 = time.perf_counter()
    handle = backend.start(ClusterSpec(policy))
    seconds = time.perf_counter() - t0
    backend.stop(handle)
    return seconds


def _tests_own_time(junit: Path) -> float:
    root = ElementTree.parse(junit).getroot()
    return sum(float(case.get("time", "0")) for case in root.iter("testcase"))


def bench_boot(n: int) -> dict[str, float]:
    """Bare boot vs a cold one-test `pytest`, alternating so both see the same machine."""
    policy = Policy.load(BRIEF)
    _bare_boot(policy)  # first use caches the binaries' --help/--version answers
    boots, e2e = [], []
    for _ in range(n):
        boots.append(_bare_boot(policy))
        e2e.append(_timed([*PYTEST, *ONE_TEST]))
    boot, cold = statistics.median(boots), statistics.median(e2e)
    return {"boot_to_readyz_s": boot, "pytest_cold_to_first_pass_s": cold,
            "cold_pytest_over_boot_ratio": cold / boot}


def bench_dev_loop(n: int) -> dict[str, float]:
    """The warm plane: second runs, policy switches and `kaudit up`, each beside a cold boot."""
    policy, other = Policy.load(BRIEF), Policy.from_yaml(OTHER_POLICY, source="<bench other>")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "KAUDIT_CACHE_DIR": tmp}
        junit = Path(tmp) / "junit.xml"
        warm_cmd = [*PYTEST, "--kaudit-reuse", f"--junitxml={junit}", *ONE_TEST]
        binaries = find_binaries()
        plane = WarmPlane(binaries, directory=Path(tmp) / "warm")
        try:
            _timed(warm_cmd, env)  # starts the plane
            boots, cold, warm, overhead, switch, up = [], [], [], [], [], []
            for i in range(n):
                boots.append(_bare_boot(policy))
                cold.append(_timed([*PYTEST, *ONE_TEST]))
                warm.append(_timed(warm_cmd, env))
                overhead.append(warm[-1] - _tests_own_time(junit))
                spec = ClusterSpec(other if i % 2 == 0 else policy)
                t0 = time.perf_counter()
                attached = plane.attach(spec, timeout=120)
                switch.append(time.perf_counter() - t0)
                assert attached is not None
                plane.release()
                plane.down()
                up.append(_timed([sys.executable, "-m", "pytest_kaudit", "up",
                                  "--policy", str(BRIEF)], env))
        finally:
            plane.down()
        boot = statistics.median(boots)
        out.update({
            "dev_boot_to_readyz_s": boot,
            "dev_pytest_cold_s": statistics.median(cold),
            "warm_second_run_s": statistics.median(warm),
            "warm_over_cold_ratio": statistics.median(warm) / statistics.median(cold),
            "warm_run_minus_tests_own_time_s": statistics.median(overhead),
            "policy_switch_s": statistics.median(switch),
            "policy_switch_over_boot_ratio": statistics.median(switch) / boot,
            "kaudit_up_s": statistics.median(up),
            "kaudit_up_over_boot_ratio": statistics.median(up) / boot,
        })
    return out


def bench_expectations(n: int) -> dict[str, float]:
    policy = Policy.load(BRIEF)
    backend = LocalBackend()
    handle = backend.start(ClusterSpec(policy))
    try:
        logged, absent = [], []
        for i in range(n):
            k = KAudit(handle, policy=policy, test_name=f"bench-{i}", timeout=10)
            k.create_secret(f"s{i}")
            t0 = time.perf_counter()
            k.expect(verb="create", resource="secrets").logged(level="Metadata")
            logged.append(time.perf_counter() - t0)
            k.create_configmap(f"c{i}")
            t0 = time.perf_counter()
            k.expect(resource="configmaps").not_logged()
            absent.append(time.perf_counter() - t0)
            k.close()
    finally:
        backend.stop(handle)
    return {"logged_median_ms": 1000 * statistics.median(logged),
            "not_logged_median_ms": 1000 * statistics.median(absent)}


def _line(i: int) -> bytes:
    return json.dumps({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": f"0f8e2b1c-{i:08d}", "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/ns-{i % 50}/configmaps/cm-{i}", "verb": "get",
        "user": {"username": "system:serviceaccount:kube-system:controller",
                 "groups": ["system:serviceaccounts", "system:authenticated"]},
        "sourceIPs": ["10.0.0.1"], "userAgent": "kube-controller-manager/v1.31.0",
        "objectRef": {"resource": "configmaps", "namespace": f"ns-{i % 50}", "name": f"cm-{i}",
                      "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-11-26T20:54:05.562442Z",
        "stageTimestamp": "2026-11-26T20:54:05.563548Z",
        "annotations": {"authorization.k8s.io/decision": "allow",
                        "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding"},
    }, separators=(",", ":")).encode() + b"\n"


def bench_log(mb: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.log"
        block = b"".join(_line(i) for i in range(10_000))
        with path.open("wb") as fh:
            for _ in range(max(1, (mb << 20) // len(block))):
                fh.write(block)
        size_mb = path.stat().st_size / (1 << 20)
        out: dict[str, float] = {"log_mb": size_mb}
        for label, kwargs in (("filtered", {"id_prefix": "kaudit-x"}), ("full_decode", {})):
            log = AuditLog(FileLogSource(path).follow(from_start=True), **kwargs)  # type: ignore[arg-type]
            t0 = time.perf_counter()
            count = sum(1 for _ in log.iter_new())  # streamed: events are not retained
            out[f"read_{label}_mb_per_s"] = size_mb / (time.perf_counter() - t0)
            out[f"read_{label}_events"] = count
        polls = []
        for i in range(20):
            log = AuditLog.tail(FileLogSource(path))
            with path.open("ab") as fh:
                fh.write(_line(10**7 + i))
            t0 = time.perf_counter()
            assert len(log.poll()) == 1
            polls.append(time.perf_counter() - t0)
            log.close()
        out["poll_after_append_on_large_log_ms"] = 1000 * statistics.median(polls)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=5)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--log-mb", type=int, default=1024)
    parser.add_argument("--only", choices=("cold", "dev", "calls", "log"), action="append",
                        help="Run only these parts (repeatable; default: all)")
    args = parser.parse_args()
    parts = set(args.only or ("cold", "dev", "calls", "log"))
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}")
    results: dict[str, float] = {}
    if "cold" in parts:
        results.update(bench_boot(args.boots))
    if "dev" in parts:
        results.update(bench_dev_loop(args.boots))
    if "calls" in parts:
        results.update(bench_expectations(args.calls))
    if "log" in parts:
        results.update(bench_log(args.log_mb))
    for key, value in results.items():
        print(f"{key}: {value:.2f}")


if __name__ == "__main__":
    main()

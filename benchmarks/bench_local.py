"""Benchmarks of the local backend and the fixture (issue 3).

Measures, on this machine, medians over repeated runs:
  * cold boot: LocalBackend.start() to /readyz, and `pytest` of one example test end to end;
  * per-call overhead of expect().logged() and expect().not_logged() after one request;
  * log reading: MB/s over a generated log of --log-mb megabytes (full decode, and with the
    Audit-ID prefix filter), and the time of one poll after a request appended to that log.

Usage: python benchmarks/bench_local.py [--boots 3] [--calls 30] [--log-mb 1024]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_kaudit.backends.base import ClusterSpec  # noqa: E402
from pytest_kaudit.backends.local import LocalBackend  # noqa: E402
from pytest_kaudit.events.log import AuditLog, FileLogSource  # noqa: E402
from pytest_kaudit.kaudit import KAudit  # noqa: E402
from pytest_kaudit.policy import Policy  # noqa: E402

BRIEF = ROOT / "fixtures" / "policies" / "brief.yaml"


def machine() -> str:
    return f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def bench_boot(n: int) -> dict[str, float]:
    policy = Policy.load(BRIEF)
    boots, e2e = [], []
    for _ in range(n):
        backend = LocalBackend()
        t0 = time.perf_counter()
        handle = backend.start(ClusterSpec(policy))
        boots.append(time.perf_counter() - t0)
        backend.stop(handle)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(ROOT / "examples"), "-k", "secret_reads"], check=True,
                       capture_output=True)
        e2e.append(time.perf_counter() - t0)
    return {"boot_to_readyz_s": statistics.median(boots),
            "pytest_cold_to_first_pass_s": statistics.median(e2e)}


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
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--log-mb", type=int, default=1024)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    results: dict[str, float] = {}
    results.update(bench_boot(args.boots))
    results.update(bench_expectations(args.calls))
    results.update(bench_log(args.log_mb))
    for key, value in results.items():
        print(f"{key}: {value:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark of ``kaudit verify``: the whole run as a ratio to one bare cluster boot.

Side by side, alternating so machine load hits both alike, for a policy of about 20 rules:
  * bare boot: LocalBackend.start() with the policy until the apiserver is ready, then stop;
  * verify: witnesses computed, the same boot, every witness and near miss sent and judged,
    then stop (what ``kaudit verify POLICY`` does, minus printing).
Target: verify / bare boot <= 2.

Usage: python benchmarks/bench_verify.py [--runs 3] [--policy fixtures/policies/gke-style.yaml]
Needs the control-plane binaries (clusters/local/provision).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_kaudit.backends.base import ClusterSpec  # noqa: E402
from pytest_kaudit.backends.local import LocalBackend  # noqa: E402
from pytest_kaudit.policy import Policy  # noqa: E402
from pytest_kaudit.witness import witnesses  # noqa: E402
from pytest_kaudit.witness.verify import verify_witnesses  # noqa: E402


def machine() -> str:
    return f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def bare_boot(policy: Policy) -> float:
    backend = LocalBackend()
    t0 = time.perf_counter()
    handle = backend.start(ClusterSpec(policy))
    backend.stop(handle)
    return time.perf_counter() - t0


def verify(policy: Policy) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    found = witnesses(policy)
    t_witness = time.perf_counter() - t0
    backend = LocalBackend()
    handle = backend.start(ClusterSpec(policy))
    t_boot = time.perf_counter() - t0 - t_witness
    try:
        rows = verify_witnesses(policy, found, handle)
    finally:
        backend.stop(handle)
    total = time.perf_counter() - t0
    bad = [r for r in rows if r.status == "MISMATCH"]
    if bad:
        raise SystemExit(f"verify found mismatches: {[r.index for r in bad]}")
    return total, {"witnesses_s": t_witness, "boot_s": t_boot,
                   "send_and_judge_s": total - t_witness - t_boot}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--policy", default=str(ROOT / "fixtures/policies/gke-style.yaml"))
    args = parser.parse_args()
    policy = Policy.load(args.policy)
    boots, runs, parts = [], [], []
    for _ in range(args.runs):
        boots.append(bare_boot(policy))
        total, detail = verify(policy)
        runs.append(total)
        parts.append(detail)
    result = {
        "machine": machine(),
        "policy": os.path.relpath(args.policy, ROOT),
        "rules": len(policy.rules),
        "requests": sum(1 + len(w.near_misses) for w in witnesses(policy) if w.witness),
        "bare_boot_s": round(statistics.median(boots), 2),
        "verify_s": round(statistics.median(runs), 2),
        "ratio": round(statistics.median(runs) / statistics.median(boots), 2),
        "verify_parts_s": {k: round(statistics.median(p[k] for p in parts), 2) for k in parts[0]},
        "runs": args.runs,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark of ``kaudit check --pack cis,secrets,forensics`` on the local backend.

Runs, alternately so both see the same machine load: one bare cluster boot (start to ready,
then stop), and one whole check run (boot, every requirement's traffic, judging, fixes, stop).
Reports medians and the ratio the issue asks for: what the requirement traffic and judging
add, as a multiple of one bare boot (target: at most 1x). The check's own clock starts once
its cluster is ready, so ``check_after_boot_x_boot`` does not depend on boot-time noise.

Usage: python benchmarks/bench_check.py [--rounds 3] [--policy PATH]
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
from pytest_kaudit.compliance.run import (  # noqa: E402
    CheckOptions,
    run_check,
    select_requirements,
)
from pytest_kaudit.policy import Policy  # noqa: E402

PACKS = ("cis", "secrets", "forensics")
FLAGS = {"audit-log-maxage": "30", "audit-log-maxbackup": "10", "audit-log-maxsize": "100"}


def machine() -> str:
    return f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def bare_boot(policy: Policy) -> float:
    backend = LocalBackend()
    t0 = time.perf_counter()
    handle = backend.start(ClusterSpec(policy=policy, flags=FLAGS))
    backend.stop(handle)
    return time.perf_counter() - t0


def whole_check(policy: Policy, path: Path) -> tuple[float, float, int]:
    """(seconds for the whole run, seconds after the boot, requests sent)."""
    requirements = select_requirements(PACKS, ())
    opts = CheckOptions(policy_path=str(path), packs=PACKS, flags=FLAGS)
    t0 = time.perf_counter()
    report = run_check(policy, requirements, opts, backend=LocalBackend)
    total = time.perf_counter() - t0
    if report.engine_bugs:
        raise SystemExit(f"engine bugs: {report.engine_bugs}")
    return total, report.seconds, sum(r.requests for r in report.results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--policy", type=Path,
                        default=ROOT / "fixtures" / "policies" / "cis-secrets-compliant.yaml")
    args = parser.parse_args()
    policy = Policy.load(args.policy, strict=False)
    boots, totals, afters = [], [], []
    requests = 0
    for _ in range(args.rounds):
        boots.append(bare_boot(policy))
        total, after, requests = whole_check(policy, args.policy)
        totals.append(total)
        afters.append(after)
    boot = statistics.median(boots)
    total = statistics.median(totals)
    added = total - boot
    print(json.dumps({
        "machine": machine(),
        "policy": str(args.policy.relative_to(ROOT) if args.policy.is_relative_to(ROOT)
                      else args.policy),
        "packs": list(PACKS),
        "rounds": args.rounds,
        "requests_per_run": requests,
        "bare_boot_s": round(boot, 2),
        "check_total_s": round(total, 2),
        "check_after_boot_s (traffic, judging, fixes)": round(statistics.median(afters), 2),
        # the target: what the requirement traffic and judging add, as a multiple of a boot
        "check_after_boot_x_boot": round(statistics.median(afters) / boot, 2),
        # the same from whole-run medians (noisier: two boots' variance)
        "whole_minus_boot_x_boot": round(added / boot, 2),
        "total_x_boot": round(total / boot, 2),
    }, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: wall time of ``kaudit`` commands that need no cluster, from process start to exit.

Each command runs in a fresh interpreter, interleaved round by round with two baselines run
side by side: a bare interpreter (``python -c pass``, the floor) and an interpreter that only
imports the kubernetes client (what a command would pay extra if it loaded the client at
start-up). Reported: medians, and each command's ratio to the bare interpreter.
Run: ``python benchmarks/bench_cli_startup.py [--runs 10]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = str(ROOT / "fixtures" / "policies" / "brief.yaml")


def commands(out_dir: Path) -> dict[str, list[str]]:
    kaudit = [sys.executable, "-m", "pytest_kaudit"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import kubernetes.client": [sys.executable, "-c", "import kubernetes.client"],
        "kaudit --help": [*kaudit, "--help"],
        "kaudit lint brief.yaml": [*kaudit, "lint", POLICY],
        "kaudit explain brief.yaml": [*kaudit, "explain", POLICY, "get secrets -n kube-system"],
        "kaudit scaffold brief.yaml": [*kaudit, "scaffold", POLICY, "--force",
                                       "-o", str(out_dir / "test_scaffolded.py")],
        "kaudit check --offline brief.yaml": [*kaudit, "check", "--offline", POLICY],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = commands(Path(tmp))
        times: dict[str, list[float]] = {name: [] for name in table}
        for argv in table.values():  # warm the bytecode and file caches
            subprocess.run(argv, capture_output=True, check=False, cwd=tmp)
        for _ in range(args.runs):
            for name, argv in table.items():
                started = time.perf_counter()
                subprocess.run(argv, capture_output=True, check=False, cwd=tmp)
                times[name].append(time.perf_counter() - started)
    floor = statistics.median(times["python -c pass"])
    print(f"Python {platform.python_version()}, {platform.machine()}, medians of {args.runs}, "
          "interleaved")
    print(f"{'command':34} {'seconds':>8} {'x bare python':>14}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:34} {median:8.3f} {median / floor:14.1f}")


if __name__ == "__main__":
    main()

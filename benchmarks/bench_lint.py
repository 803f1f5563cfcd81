"""Benchmark: ``kaudit lint`` work on generated policies of growing size.

For each size it reports the CPU time to load, to run all lints, and to run the shadowing
lint next to a baseline run side by side: the plain pairwise comparison of every rule with every
earlier rule (what the lint did before it indexed rules). The growth column is the time ratio to
the previous size, whose rule count is half: about 2 means linear, about 4 quadratic.
Run: ``python benchmarks/bench_lint.py [--sizes 1000,2000,4000,8000,10000] [--baseline-max 8000]``.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from collections.abc import Callable

from pytest_kaudit.policy import Policy, lint_policy
from pytest_kaudit.policy.lint import rule_covers
from pytest_kaudit.policy.versions import has_group_wildcard

RESOURCES = [("", "pods"), ("", "pods/log"), ("", "pods/exec"), ("", "secrets"),
             ("", "configmaps"), ("", "nodes"), ("", "services"), ("", "events"),
             ("apps", "deployments"), ("apps", "deployments/scale"), ("batch", "jobs"),
             ("coordination.k8s.io", "leases"), ("rbac.authorization.k8s.io", "roles"),
             ("example.com", "widgets")]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
URLS = ["/healthz*", "/readyz", "/livez", "/version", "/metrics", "/openapi*"]
LEVELS = ["None", "Metadata", "Request", "RequestResponse"]


def generate(rules: int, seed: int) -> str:
    """A policy of ``rules`` varied rules (users, groups, verbs, namespaces, resources, URLs)
    and a final catch-all, written as YAML."""
    rng = random.Random(seed)
    out = ["apiVersion: audit.k8s.io/v1", "kind: Policy", "omitStages: [RequestReceived]",
           "rules:"]
    for i in range(rules):
        out.append(f"- level: {rng.choice(LEVELS)}")
        who = rng.random()
        if who < 0.5:
            out.append(f'  users: ["user-{i}"]')
        elif who < 0.7:
            out.append(f'  users: ["system:serviceaccount:ns-{rng.randrange(20)}:app"]')
        elif who < 0.85:
            out.append(f'  userGroups: ["group-{rng.randrange(rules // 4 + 1)}"]')
        if rng.random() < 0.7:
            out.append(f"  verbs: [{', '.join(rng.sample(VERBS, rng.randint(1, 3)))}]")
        if rng.random() < 0.8:
            if rng.random() < 0.4:
                out.append(f'  namespaces: ["ns-{rng.randrange(50)}"]')
            group, resource = rng.choice(RESOURCES)
            names = f', resourceNames: ["obj-{i}"]' if rng.random() < 0.2 else ""
            out.append(f'  resources: [{{group: "{group}", resources: ["{resource}"]{names}}}]')
        else:
            out.append(f'  nonResourceURLs: ["{rng.choice(URLS)}"]')
    out.append("- level: Metadata")
    return "\n".join(out) + "\n"


def pairwise_shadowing(policy: Policy) -> int:
    """Baseline: each rule against every earlier rule, as before indexing."""
    gw = has_group_wildcard(policy.target_version)
    found = 0
    for j, later in enumerate(policy.rules):
        for i in range(j):
            if rule_covers(policy.rules[i], later, group_wildcard=gw):
                found += 1
                break
    return found


def timed(work: Callable[[], object], runs: int) -> float:
    """Best of ``runs`` CPU times of this process, in seconds (steadier than wall-clock time
    on a shared machine)."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    """Print one row per size: load, all lints, shadowing indexed vs pairwise, growth."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000,4000,8000,10000",
                        help="Comma-separated rule counts")
    parser.add_argument("--baseline-max", type=int, default=8000,
                        help="Largest size for the pairwise baseline (it grows quadratically)")
    parser.add_argument("--runs", type=int, default=3, help="Timed runs (best reported)")
    parser.add_argument("--seed", type=int, default=1, help="Random seed")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {sys.platform}")
    print(f"{'rules':>7} {'KiB':>6} {'load s':>7} {'lints s':>8} {'shadow s':>9} "
          f"{'pairwise s':>11} {'speed-up':>9} {'growth':>7} {'unreachable':>12}")
    previous: float | None = None
    for size in sizes:
        text = generate(size, args.seed)
        load = timed(lambda t=text: Policy.from_yaml(t), 1)
        policy = Policy.from_yaml(text)
        lints = timed(lambda p=policy: lint_policy(p), args.runs)
        shadow = timed(lambda p=policy: lint_policy(p, select=["shadowed-rule"]), args.runs)
        unreachable = len(lint_policy(policy, select=["shadowed-rule"]))
        pairwise = speed_up = "-"
        if size <= args.baseline_max:
            base = timed(lambda p=policy: pairwise_shadowing(p), 1)
            pairwise, speed_up = f"{base:.3f}", f"{base / shadow:.0f}x"
        growth = f"{shadow / previous:.1f}" if previous else "-"
        previous = shadow
        print(f"{size:>7} {len(text) // 1024:>6} {load:>7.2f} {lints:>8.3f} {shadow:>9.3f} "
              f"{pairwise:>11} {speed_up:>9} {growth:>7} {unreachable:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

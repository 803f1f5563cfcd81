"""Benchmark: policy decisions per second against fixtures/policies/gke-style.yaml.

Request attribute objects are built before timing; the timed loop only calls
``Policy.evaluate_attributes``.
Run: ``python benchmarks/bench_policy.py [--requests N] [--runs R]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

from pytest_kaudit.policy import Policy, RequestAttributes

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POLICY = ROOT / "fixtures" / "policies" / "gke-style.yaml"

USERS = ["alice", "bob", "system:kube-proxy", "kubelet", "system:apiserver",
         "system:kube-controller-manager", "system:serviceaccount:kube-system:namespace-controller",
         "system:node:node-1", "cluster-autoscaler"]
GROUPS = [(), ("system:authenticated",), ("system:nodes", "system:authenticated"),
          ("system:masters", "system:authenticated")]
RESOURCES = [("", "pods", ""), ("", "pods", "log"), ("", "pods", "status"), ("", "secrets", ""),
             ("", "configmaps", ""), ("", "nodes", ""), ("", "nodes", "status"),
             ("", "endpoints", ""), ("", "services", ""), ("", "events", ""),
             ("", "namespaces", ""), ("apps", "deployments", ""), ("apps", "deployments", "scale"),
             ("coordination.k8s.io", "leases", ""), ("rbac.authorization.k8s.io", "roles", ""),
             ("authentication.k8s.io", "tokenreviews", ""), ("batch", "jobs", ""),
             ("example.com", "widgets", ""), ("metrics.k8s.io", "pods", "")]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
PATHS = ["/healthz", "/readyz", "/livez", "/version", "/metrics", "/openapi/v2", "/api",
         "/apis/apps/v1", "/logs/kube-apiserver.log"]


def make_requests(count: int, seed: int) -> list[RequestAttributes]:
    """A realistic mix: 85 % resource requests, 15 % non-resource, a few unauthenticated."""
    rng = random.Random(seed)
    pool = []
    for _ in range(min(count, 50_000)):
        user = rng.choice(USERS) if rng.random() > 0.02 else None
        groups = rng.choice(GROUPS) if user else ()
        if rng.random() < 0.85:
            group, resource, sub = rng.choice(RESOURCES)
            pool.append(RequestAttributes(
                user=user, groups=groups, verb=rng.choice(VERBS),
                namespace=rng.choice(["", "default", "kube-system", "kube-node-lease", "prod"]),
                resource=resource, subresource=sub, name=rng.choice(["", "a", "webapp-pod"]),
                api_group=group, api_version="v1", is_resource_request=True,
            ))
        else:
            pool.append(RequestAttributes(user=user, groups=groups, verb="get",
                                          path=rng.choice(PATHS)))
    return [pool[i % len(pool)] for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the median rate over the runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help="Policy file")
    parser.add_argument("--requests", type=int, default=1_000_000, help="Decisions per run")
    parser.add_argument("--runs", type=int, default=5, help="Timed runs (median reported)")
    parser.add_argument("--seed", type=int, default=1, help="Random seed for the request mix")
    args = parser.parse_args(argv)

    policy = Policy.load(args.policy)
    requests = make_requests(args.requests, args.seed)
    decide = policy.evaluate_attributes
    for attrs in requests[:10_000]:  # warm the per-shape candidate caches
        decide(attrs)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    rates = []
    for _ in range(args.runs):
        start = time.perf_counter()
        for attrs in requests:
            decide(attrs)
        elapsed = time.perf_counter() - start
        rates.append(len(requests) / elapsed)
    median = statistics.median(rates)
    print(f"python {platform.python_version()} ({platform.python_implementation()}) on "
          f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"processor={platform.processor() or 'unknown'}")
    print(f"policy {args.policy.name}: {len(policy.rules)} rules; "
          f"{len(requests):,} requests x {args.runs} runs")
    print(f"runs (decisions/s): {', '.join(f'{r:,.0f}' for r in rates)}")
    print(f"median: {median:,.0f} decisions/s ({1e6 / median:.2f} us/decision)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

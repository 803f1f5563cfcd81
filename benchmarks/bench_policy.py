"""Benchmark: policy decisions per second against fixtures/policies/gke-style.yaml.

Three figures, run side by side on the same requests and reported as ratios:

* **public** - ``Policy.evaluate(**kwargs)``, the call users write, on a freshly built list of
  distinct keyword dicts (no request is repeated within a run; each run draws a new list);
* **core** - ``Policy.evaluate_attributes`` on prepared ``RequestAttributes`` (the compiled
  matcher alone);
* **reference** - the baseline: a plain, rule-by-rule transcription of kube-apiserver's
  checker (``tests/policy/policy_reference.py``, the oracle the test suite checks the engine
  against), given prepared attributes.

After timing, every request of every run is checked: the three agree on the decision.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_kaudit.policy import Decision, Policy, RequestAttributes

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POLICY = ROOT / "fixtures" / "policies" / "gke-style.yaml"
sys.path.insert(0, str(ROOT / "tests" / "policy"))
from policy_reference import reference_evaluate  # noqa: E402

USERS = ["system:kube-proxy", "kubelet", "system:apiserver", "system:kube-controller-manager",
         "system:serviceaccount:kube-system:namespace-controller", "system:node:node-1",
         "cluster-autoscaler"]
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
NAMED_VERBS = frozenset(("get", "update", "patch", "delete"))
PATHS = ["/healthz", "/readyz", "/livez", "/version", "/metrics", "/openapi/v2", "/api",
         "/apis/apps/v1", "/logs/kube-apiserver.log"]

Request = tuple[dict[str, Any], RequestAttributes]


def _draw(rng: random.Random) -> dict[str, Any]:
    """One request as ``Policy.evaluate`` keywords: 85 % resource requests, 15 % non-resource,
    2 % unauthenticated; half the callers are one of many human users, objects have many names."""
    if rng.random() < 0.02:
        kwargs: dict[str, Any] = {"authenticated": False}
    elif rng.random() < 0.5:
        kwargs = {"user": f"user-{rng.randrange(100_000)}", "groups": rng.choice(GROUPS)}
    else:
        kwargs = {"user": rng.choice(USERS), "groups": rng.choice(GROUPS)}
    if rng.random() < 0.85:
        group, resource, sub = rng.choice(RESOURCES)
        verb = rng.choice(VERBS)
        name = f"{resource}-{rng.randrange(100_000)}" if verb in NAMED_VERBS else ""
        kwargs.update(verb=verb, resource=resource, subresource=sub, name=name, api_group=group,
                      namespace=rng.choice(["", "default", "kube-system", "kube-node-lease",
                                            "prod"]))
    else:
        kwargs.update(verb="get", path=rng.choice(PATHS))
    return kwargs


def _attributes(kwargs: dict[str, Any]) -> RequestAttributes:
    """The attributes ``Policy.evaluate`` documents for these keywords (for core and reference)."""
    authenticated = kwargs.get("authenticated", True)
    resource = "path" not in kwargs
    return RequestAttributes(
        user=kwargs.get("user", "") if authenticated else None,
        groups=tuple(kwargs.get("groups", ())) if authenticated else (),
        verb=kwargs["verb"], namespace=kwargs.get("namespace", ""),
        resource=kwargs.get("resource", ""), subresource=kwargs.get("subresource", ""),
        name=kwargs.get("name", ""), api_group=kwargs.get("api_group", ""),
        path=kwargs.get("path", ""), is_resource_request=resource,
    )


def make_requests(count: int, seed: int) -> list[Request]:
    """``count`` distinct requests (no two equal), each as keywords and as attributes."""
    rng = random.Random(seed)
    seen: set[tuple[tuple[str, Any], ...]] = set()
    out: list[Request] = []
    while len(out) < count:
        kwargs = _draw(rng)
        key = tuple(sorted(kwargs.items()))
        if key in seen:
            continue
        seen.add(key)
        out.append((kwargs, _attributes(kwargs)))
    return out


def _time_public(policy: Policy, requests: Sequence[Request]) -> float:
    calls = [kwargs for kwargs, _ in requests]
    evaluate = policy.evaluate
    start = time.perf_counter()
    for kwargs in calls:
        evaluate(**kwargs)
    return time.perf_counter() - start


def _time_attributes(decide: Callable[[RequestAttributes], Decision],
                     requests: Sequence[Request]) -> float:
    prepared = [attrs for _, attrs in requests]
    start = time.perf_counter()
    for attrs in prepared:
        decide(attrs)
    return time.perf_counter() - start


def _check(policy: Policy, requests: Sequence[Request]) -> None:
    for kwargs, attrs in requests:
        public = policy.evaluate(**kwargs)
        core = policy.evaluate_attributes(attrs)
        reference = reference_evaluate(policy, attrs)
        if not public == core == reference:
            raise SystemExit(f"disagreement on {kwargs}: public {public}, core {core}, "
                             f"reference {reference}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the medians over the runs, with ratios to the reference."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help="Policy file")
    parser.add_argument("--requests", type=int, default=200_000, help="Requests per run")
    parser.add_argument("--runs", type=int, default=5, help="Timed runs (median reported)")
    parser.add_argument("--seed", type=int, default=1, help="Random seed for the request mix")
    args = parser.parse_args(argv)

    policy = Policy.load(args.policy)
    for kwargs, _ in make_requests(10_000, -args.seed):  # fills the per-shape candidate caches
        policy.evaluate(**kwargs)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    def reference(attrs: RequestAttributes) -> Decision:
        decision: Decision = reference_evaluate(policy, attrs)
        return decision

    rates: dict[str, list[float]] = {"public": [], "core": [], "reference": []}
    for run in range(args.runs):
        requests = make_requests(args.requests, args.seed + run)  # fresh for every run
        n = len(requests)
        rates["public"].append(n / _time_public(policy, requests))
        rates["core"].append(n / _time_attributes(policy.evaluate_attributes, requests))
        rates["reference"].append(n / _time_attributes(reference, requests))
        _check(policy, requests)
    medians = {what: statistics.median(r) for what, r in rates.items()}
    print(f"python {platform.python_version()} ({platform.python_implementation()}) on "
          f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"processor={platform.processor() or 'unknown'}")
    print(f"policy {args.policy.name}: {len(policy.rules)} rules; {args.requests:,} distinct "
          f"requests per run (a new list each run) x {args.runs} runs; all three agree on each")
    base = medians["reference"]
    for what, label in (("public", "Policy.evaluate(**kwargs)"),
                        ("core", "evaluate_attributes (core)"),
                        ("reference", "reference (baseline)")):
        runs = ", ".join(f"{r:,.0f}" for r in rates[what])
        print(f"{label:<28} median {medians[what]:>11,.0f}/s ({1e6 / medians[what]:5.2f} us) "
              f"= {medians[what] / base:5.2f}x reference   runs: {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

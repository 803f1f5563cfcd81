"""Benchmark ``kaudit replay``: throughput (MB/s) and peak memory on a generated audit log.

Generates a realistic log (JSON lines in the apiserver's key order, a mix of Metadata events,
watches, 401s, non-resource requests and Request/RequestResponse events with bodies, many
distinct object names and users) of ``--size-mb`` megabytes in a temporary directory, replays
it in a fresh child process under a candidate policy, prints MB/s and the child's peak RSS,
and deletes the log. Run at two sizes to see that memory does not grow with the log::

    python benchmarks/bench_replay.py                 # 1 GB
    python benchmarks/bench_replay.py --size-mb 100
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:kube-proxy"]
  verbs: ["watch"]
  resources:
  - group: ""
    resources: ["endpoints", "services", "services/status"]
- level: None
  userGroups: ["system:nodes"]
  verbs: ["get"]
  resources:
  - group: ""
    resources: ["nodes", "nodes/status"]
- level: None
  nonResourceURLs: ["/healthz*", "/version", "/readyz*", "/livez*"]
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets", "configmaps"]
  - group: authentication.k8s.io
    resources: ["tokenreviews"]
- level: Request
  verbs: ["get", "list", "watch"]
  resources:
  - group: ""
  - group: apps
- level: RequestResponse
  resources:
  - group: ""
  - group: apps
- level: Metadata
  omitStages: [RequestReceived]
"""

RESOURCES = [
    ("", "pods", ""),
    ("", "pods", "status"),
    ("", "pods", "log"),
    ("", "configmaps", ""),
    ("", "secrets", ""),
    ("", "endpoints", ""),
    ("", "services", ""),
    ("", "nodes", "status"),
    ("apps", "deployments", ""),
    ("apps", "replicasets", ""),
    ("coordination.k8s.io", "leases", ""),
    ("batch", "jobs", ""),
    ("authentication.k8s.io", "tokenreviews", ""),
]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
NON_RESOURCE = ["/healthz", "/readyz", "/version", "/metrics", "/openapi/v2", "/apis"]


def _body(rng: random.Random, kind: str, name: str) -> dict[str, object]:
    return {
        "kind": kind,
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"{rng.getrandbits(128):032x}",
            "labels": {"app": name[:8], "tier": "web"},
            "resourceVersion": str(rng.randint(1, 10**7)),
        },
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "registry.example.com/app:1.2.3",
                    "args": [f"--flag={i}" for i in range(rng.randint(1, 40))],
                }
            ]
        },
    }


def generate(path: Path, size_mb: int, seed: int = 1) -> int:
    """Write a log of about ``size_mb`` MB; returns the number of lines."""
    rng = random.Random(seed)
    limit = size_mb * 1_000_000
    users = [f"system:serviceaccount:ns{i}:sa{i}" for i in range(40)] + [
        "alice",
        "bob",
        "system:kube-proxy",
    ]
    written = lines = 0
    t0 = 1_764_000_000.0
    with open(path, "w", buffering=1 << 20) as f:
        n = 0
        while written < limit:
            n += 1
            g, res, sub = rng.choice(RESOURCES)
            verb = rng.choice(VERBS)
            user = rng.choice(users)
            groups = ["system:authenticated"] + (["system:nodes"] if rng.random() < 0.1 else [])
            ns = f"ns{rng.randint(0, 30)}"
            name = (
                f"{res[:-1]}-{rng.randint(0, 200_000)}"
                if verb not in ("list", "watch", "create")
                else ""
            )
            ts = (
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + n * 0.05))
                + f".{n % 1_000_000:06d}Z"
            )
            audit_id = (
                f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-"
                f"4{rng.getrandbits(12):03x}-8{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}"
            )
            nonres = rng.random() < 0.08
            unauth = rng.random() < 0.01
            level = rng.choice(["Metadata", "Metadata", "Metadata", "Request", "RequestResponse"])
            event: dict[str, object] = {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": level,
                "auditID": audit_id,
                "stage": "RequestReceived",
                "requestURI": "",
                "verb": verb,
                "user": {} if unauth else {"username": user, "groups": groups},
                "sourceIPs": [f"10.0.0.{rng.randint(1, 254)}"],
                "userAgent": "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/39683505",
            }
            if nonres:
                path_ = rng.choice(NON_RESOURCE)
                event["verb"] = "get"
                event["requestURI"] = path_
            else:
                base = f"/apis/{g}/v1" if g else "/api/v1"
                event["requestURI"] = (
                    f"{base}/namespaces/{ns}/{res}"
                    + (f"/{name}" if name else "")
                    + (f"/{sub}" if sub and name else "")
                    + ("?watch=true" if verb == "watch" else "")
                )
                ref: dict[str, str] = {"resource": res, "namespace": ns}
                if name:
                    ref["name"] = name
                if g:
                    ref["apiGroup"] = g
                ref["apiVersion"] = "v1"
                if sub:
                    ref["subresource"] = sub
                event["objectRef"] = ref
            stages = (
                ["ResponseStarted"]
                if unauth
                else (
                    ["RequestReceived", "ResponseStarted", "ResponseComplete"]
                    if verb == "watch"
                    else ["RequestReceived", "ResponseComplete"]
                )
            )
            for stage in stages:
                e = dict(event)
                e["stage"] = stage
                if stage != "RequestReceived":
                    e["responseStatus"] = {"metadata": {}, "code": 401 if unauth else 200}
                if stage == "ResponseComplete" and not nonres:
                    if level in ("Request", "RequestResponse") and verb in (
                        "create",
                        "update",
                        "patch",
                    ):
                        e["requestObject"] = _body(rng, "Pod", name or "x")
                    if level == "RequestResponse" and verb != "watch":
                        e["responseObject"] = _body(rng, "Pod", name or "x")
                e["requestReceivedTimestamp"] = ts
                e["stageTimestamp"] = ts
                if stage != "RequestReceived" and not unauth:
                    e["annotations"] = {
                        "authorization.k8s.io/decision": "allow",
                        "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding",
                    }
                line = json.dumps(e, separators=(",", ":")) + "\n"
                f.write(line)
                written += len(line)
                lines += 1
    return lines


def child(log: str, policy_path: str) -> None:
    """Replay in this (fresh) process and print a JSON result line."""
    from pytest_kaudit.cli.base import load_policy
    from pytest_kaudit.cli.replay import replay_paths

    policy = load_policy(policy_path)
    start = time.perf_counter()
    report = replay_paths(policy, [log])
    elapsed = time.perf_counter() - start
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "bytes": report.bytes_before,
                "events": report.events,
                "requests": report.requests,
                "peak_rss_mb": rss_kb / 1024,
                "warnings": report.warning_count,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Generate, replay in a child process, report, clean up."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mb", type=int, default=1000, help="Log size to generate in MB (default: 1000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="Random seed for the generated log")
    parser.add_argument(
        "--keep", action="store_true", help="Keep the generated log (prints its path)"
    )
    parser.add_argument("--child", nargs=2, metavar=("LOG", "POLICY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    tmp = tempfile.mkdtemp(prefix="kaudit-bench-")
    log = Path(tmp) / "audit.log"
    policy = Path(tmp) / "policy.yaml"
    try:
        policy.write_text(POLICY)
        t0 = time.perf_counter()
        lines = generate(log, args.size_mb, args.seed)
        gen = time.perf_counter() - t0
        size = log.stat().st_size
        print(f"generated {size / 1e6:.0f} MB, {lines:,} lines in {gen:.1f}s ({log})", flush=True)
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(log), str(policy)],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        mbps = result["bytes"] / 1e6 / result["seconds"]
        print(
            f"replay: {result['bytes'] / 1e6:.0f} MB, {result['events']:,} events, "
            f"{result['requests']:,} requests in {result['seconds']:.1f}s = {mbps:.0f} MB/s "
            f"({result['events'] / result['seconds']:,.0f} events/s); "
            f"peak RSS {result['peak_rss_mb']:.0f} MB "
            f"(cpus: {os.cpu_count()})"
        )
    finally:
        if args.keep:
            print(f"kept {log}")
        else:
            for p in (log, policy):
                p.unlink(missing_ok=True)
            os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())

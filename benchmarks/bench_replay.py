"""Benchmark ``kaudit replay`` against a plain ``json.loads`` line loop, side by side.

Generates a realistic audit log (JSON lines in the apiserver's key order: Metadata events,
watches, 401s, non-resource requests, Request/RequestResponse events with bodies, many
distinct object names and users) of ``--size-mb`` megabytes in a temporary directory. Then,
for ``--rounds`` rounds, runs each reader below in a fresh child process, in turn, on the same
file, and prints the medians of wall time and CPU time (user + system, workers included),
MB/s, the ratio to the ``json.loads`` loop, and peak RSS:

- ``json.loads``: ``for line in file: json.loads(line)`` (the baseline; decides nothing);
- ``orjson.loads`` and ``msgspec`` (untyped): the same loop with the two fast JSON libraries;
- ``msgspec record``: the loop with replay's typed record decoder (only the fields it needs);
- ``replay, 1 process`` and ``replay, N processes``: the whole replay, policy decisions and
  statistics included, serial and split across one process per CPU (at least 2, at most 4).

Finally replay runs once more on the first tenth of the log, to show that peak memory does
not grow with the log. The log is deleted at the end (``--keep`` keeps it)::

    python benchmarks/bench_replay.py                 # 300 MB, 3 rounds
    python benchmarks/bench_replay.py --size-mb 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
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


#: Reader name -> child mode, in the order they run within a round.
READERS = {
    "json.loads": "json",
    "orjson.loads": "orjson",
    "msgspec (untyped)": "msgspec",
    "msgspec record": "record",
    "replay, 1 process": "replay1",
    f"replay, {max(2, min(os.cpu_count() or 1, 4))} processes": "replayN",
}


def child(mode: str, log: str, policy_path: str) -> None:
    """Read ``log`` the way ``mode`` says, in this fresh process; print one JSON result line."""
    import functools

    events = 0
    start = time.perf_counter()
    cpu0 = os.times()
    if mode in ("json", "orjson", "msgspec"):
        if mode == "json":
            loads = json.loads
        elif mode == "orjson":
            import orjson

            loads = orjson.loads
        else:
            import msgspec

            loads = msgspec.json.Decoder().decode
        start, cpu0 = time.perf_counter(), os.times()
        with open(log, "rb") as fh:
            for line in fh:
                loads(line)
                events += 1
    elif mode == "record":
        from pytest_kaudit.replay.records import decode_record

        start, cpu0 = time.perf_counter(), os.times()
        with open(log, "rb", buffering=1 << 20) as fh:
            for line in iter(functools.partial(fh.readline, 1 << 27), b""):
                decode_record(line)
                events += 1
    else:
        from pytest_kaudit.cli.base import load_policy
        from pytest_kaudit.replay import replay_paths

        policy = load_policy(policy_path)
        start, cpu0 = time.perf_counter(), os.times()
        jobs = 1 if mode == "replay1" else max(2, min(os.cpu_count() or 1, 4))
        report = replay_paths(policy, [log], jobs=jobs)
        events = report.events
    elapsed = time.perf_counter() - start
    cpu1 = os.times()
    cpu = sum(cpu1[:4]) - sum(cpu0[:4])  # user + system, of this process and its workers
    rss_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                 resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "events": events, "rss_mb": rss_kb / 1024}))


def _run_child(mode: str, log: Path, policy: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(log), str(policy)],
        check=True, capture_output=True, text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _prefix(log: Path, dest: Path, fraction: float) -> None:
    """Copy the first ``fraction`` of ``log`` (whole lines) to ``dest``."""
    limit = int(log.stat().st_size * fraction)
    with log.open("rb") as src, dest.open("wb") as out:
        copied = 0
        for line in src:
            if copied >= limit:
                break
            out.write(line)
            copied += len(line)


def _available(mode: str) -> bool:
    module = {"orjson": "orjson", "msgspec": "msgspec"}.get(mode)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Generate, read it every way in child processes, report medians, clean up."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mb", type=int, default=300, help="Log size to generate in MB (default: 300)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="Rounds to take medians over")
    parser.add_argument("--seed", type=int, default=1, help="Random seed for the generated log")
    parser.add_argument(
        "--keep", action="store_true", help="Keep the generated log (prints its path)"
    )
    parser.add_argument("--child", nargs=3, metavar=("MODE", "LOG", "POLICY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="kaudit-bench-"))
    log, small, policy = tmp / "audit.log", tmp / "small.log", tmp / "policy.yaml"
    try:
        policy.write_text(POLICY)
        t0 = time.perf_counter()
        lines = generate(log, args.size_mb, args.seed)
        size = log.stat().st_size
        print(f"generated {size / 1e6:.0f} MB, {lines:,} lines in "
              f"{time.perf_counter() - t0:.1f}s ({log})", flush=True)
        print(f"cpus: {os.cpu_count()}, load average before: "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        readers = {name: mode for name, mode in READERS.items() if _available(mode)}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in readers}
        for round_no in range(1, args.rounds + 1):
            for name, mode in readers.items():
                results[name].append(_run_child(mode, log, policy))
            print(f"round {round_no}/{args.rounds} done", flush=True)
        base_wall = statistics.median(r["seconds"] for r in results["json.loads"])
        base_cpu = statistics.median(r["cpu"] for r in results["json.loads"])
        print(f"\nmedians of {args.rounds} rounds on {size / 1e6:.0f} MB "
              f"({results['json.loads'][0]['events']:,.0f} lines):")
        print(f"{'reader':<22}{'wall s':>8}{'MB/s':>8}{'× json':>8}{'cpu s':>8}"
              f"{'× json':>8}{'peak RSS':>10}")
        for name, runs in results.items():
            wall = statistics.median(r["seconds"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            rss = statistics.median(r["rss_mb"] for r in runs)
            print(f"{name:<22}{wall:>8.2f}{size / 1e6 / wall:>8.0f}{base_wall / wall:>8.2f}"
                  f"{cpu:>8.2f}{base_cpu / cpu:>8.2f}{rss:>8.0f} MB")
        _prefix(log, small, 0.1)
        tenth = _run_child("replay1", small, policy)
        full = statistics.median(r["rss_mb"] for r in results["replay, 1 process"])
        print(f"\npeak RSS of replay (1 process): {tenth['rss_mb']:.0f} MB on "
              f"{small.stat().st_size / 1e6:.0f} MB, {full:.0f} MB on {size / 1e6:.0f} MB")
        print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        if args.keep:
            print(f"kept {log}")
            small.unlink(missing_ok=True)
            policy.unlink(missing_ok=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

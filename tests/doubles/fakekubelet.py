#!/usr/bin/env python3
"""TEST DOUBLE: the kubelet of a fake kind node, running the *real* kube-apiserver.

Started detached by ``tests/doubles/kind`` (``fakekubelet.py <cluster>``). It does for the
apiserver static pod what the kubelet + containerd do in a kind node:

- reads ``/etc/kubernetes/manifests/kube-apiserver.yaml`` from the node filesystem;
- checks each hostPath volume's ``type`` (``DirectoryOrCreate`` creates, ``Directory``/
  ``File`` must exist, else the pod never starts);
- translates every absolute path in the flags through the pod's volumeMounts (pod → node)
  and the node's extraMounts (node → host); a path no volume covers lands in the
  container's private filesystem, just as a missing ``extraVolumes`` entry would;
- starts the apiserver (the real binary, found like the local backend does) with the
  translated flags plus loopback wiring (etcd URL, port), and restarts it with back-off
  when it exits (CrashLoopBackOff; the kubelet waits 10 s doubling to 5 min, the double
  2.5 s doubling to 10 s, long enough that, as with the kubelet, the crashed attempt's log
  stays the newest while a failed boot is being diagnosed);
- restarts it when the manifest's content changes, and serves ``crictl stopp``/``rmp``
  requests from the fake docker (``requests/*.json``).

State is reported in ``runtime.json``; container output goes to
``/var/log/pods/kube-system_kube-apiserver-<node>_<uid>/kube-apiserver/<restart>.log``.
It also stands in for the one controller-manager loop tests depend on, the
service-account controller: about once a second it creates the ``default`` ServiceAccount in
every namespace that lacks one (referencing a token Secret, as the token controller would), so readiness checks that wait for it behave as on real kind
(where the account appears seconds after ``/readyz``).

Deviations: logs are raw (no CRI timestamp prefix); ``--disable-admission-plugins=
ServiceAccount`` is added because no token controller creates the tokens that admission
plugin would mount.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402
from fakenode import cluster_dir, load_cluster, resolve_node_path  # noqa: E402

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
_LOOPBACK_OWNED = {
    "etcd-servers",
    "secure-port",
    "bind-address",
    "advertise-address",
    "etcd-cafile",
    "etcd-certfile",
    "etcd-keyfile",
}


def _backoff(restarts: int) -> float:
    """Seconds before the next start after the ``restarts``-th attempt exited."""
    return min(2.5 * 2 ** max(restarts, 0), 10.0)


class Kubelet:
    """One node's kubelet, for the apiserver static pod only."""

    def __init__(self, name: str) -> None:
        self.name = name
        record = load_cluster(name)
        assert record is not None, f"no cluster {name}"
        self.record = record
        self.node = next(n for n in record["nodes"] if n["role"] == "control-plane")
        self.dir = cluster_dir(name)
        self.proc: subprocess.Popen[bytes] | None = None
        self.pod_id = ""
        self.container_id = ""
        self.restarts = -1
        self.hash = ""
        self.state = "Pending"
        self.message = ""
        self.not_before = 0.0
        self.stopped = False  # sandbox stopped by crictl stopp: no restarts until rmp
        self.running = True
        self.next_sa_sync = 0.0

    # -------------------------------------------------------------- reporting

    def report(self) -> None:
        data = {
            "pod_id": self.pod_id,
            "container_id": self.container_id,
            "pid": self.proc.pid if self.proc and self.proc.poll() is None else None,
            "restart_count": max(self.restarts, 0),
            "state": self.state,
            "message": self.message,
            "port": self.record.get("apiserver_port"),
            "log": self.log_node_path() if self.pod_id else "",
            "manifest_hash": self.hash,
        }
        tmp = self.dir / "runtime.json.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(self.dir / "runtime.json")

    def log_node_path(self) -> str:
        return (
            f"/var/log/pods/kube-system_kube-apiserver-{self.node['name']}_{self.pod_id}"
            f"/kube-apiserver/{max(self.restarts, 0)}.log"
        )

    def node_path(self, path: str) -> tuple[Path, bool]:
        return resolve_node_path(self.record, self.node, path)

    # -------------------------------------------------------------- manifest -> process

    def manifest(self) -> tuple[dict[str, Any] | None, str]:
        host, _ = self.node_path(MANIFEST)
        try:
            raw = host.read_bytes()
        except OSError:
            return None, ""
        return yaml.safe_load(raw), hashlib.sha256(raw).hexdigest()

    def start_container(self, manifest: dict[str, Any]) -> None:
        self.restarts += 1
        self.container_id = uuid.uuid4().hex
        self.message = ""
        log_host, _ = self.node_path(self.log_node_path())
        log_host.parent.mkdir(parents=True, exist_ok=True)
        spec = manifest["spec"]
        container = spec["containers"][0]
        volumes = {v["name"]: v["hostPath"] for v in spec.get("volumes") or []}
        mounts = []
        for m in container.get("volumeMounts") or []:
            source = volumes.get(m["name"])
            if source is None:
                return self.fail_create(f'volume "{m["name"]}" not found in pod spec')
            host, node_ro = self.node_path(source["path"])
            kind = source.get("type", "")
            if kind in ("DirectoryOrCreate", ""):
                host.mkdir(parents=True, exist_ok=True)
            elif kind == "FileOrCreate":
                host.parent.mkdir(parents=True, exist_ok=True)
                host.touch()
            elif kind == "Directory" and not host.is_dir():
                return self.fail_create(
                    f'MountVolume.SetUp failed for volume "{m["name"]}" : '
                    f"hostPath type check failed: {source['path']} is not a directory"
                )
            elif kind == "File" and not host.is_file():
                return self.fail_create(
                    f'MountVolume.SetUp failed for volume "{m["name"]}" : '
                    f"hostPath type check failed: {source['path']} is not a file"
                )
            mounts.append(
                (
                    m["mountPath"].rstrip("/"),
                    source["path"].rstrip("/"),
                    bool(m.get("readOnly")) or node_ro,
                )
            )
        rootfs = self.dir / "containers" / self.container_id / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)

        def in_pod(path: str) -> tuple[Path, bool]:
            best = None
            for mount_path, node_path, ro in mounts:
                if path == mount_path or path.startswith(mount_path + "/"):
                    if best is None or len(mount_path) > len(best[0]):
                        best = (mount_path, node_path, ro)
            if best is None:
                return rootfs / path.lstrip("/"), False
            host, node_ro = self.node_path(best[1] + path[len(best[0]) :])
            return host, best[2] or node_ro

        flags: dict[str, str] = {}
        for arg in container["command"][1:]:
            name, _, value = arg[2:].partition("=")
            flags[name] = value
        runtime = self.base_flags()
        for name, value in flags.items():
            if name in _LOOPBACK_OWNED:
                continue
            if value.startswith("/"):
                host, ro = in_pod(value)
                if name == "audit-log-path" and ro:
                    return self.crash(
                        log_host,
                        f"Error: failed to open log file {value}: open: read-only file system",
                    )
                value = str(host)
            runtime[name] = value
        self.message = ""
        out = log_host.open("ab")
        self.proc = subprocess.Popen(
            [str(self.binaries().apiserver), *(f"--{k}={v}" for k, v in runtime.items())],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        out.close()
        self.state = "Running"
        self.report()

    def base_flags(self) -> dict[str, str]:
        from pytest_kaudit.backends.local.backend import has_default_route

        flags = {
            "etcd-servers": f"http://127.0.0.1:{self.record['etcd_port']}",
            "secure-port": str(self.record["apiserver_port"]),
            "bind-address": "127.0.0.1",
            # No controller-manager creates the `default` ServiceAccount in the double.
            "disable-admission-plugins": "ServiceAccount",
        }
        if self.binaries().supports("insecure-port"):
            flags["insecure-port"] = "0"
        if not has_default_route():
            flags["advertise-address"] = "127.0.0.1"
            flags["endpoint-reconciler-type"] = "none"
        return flags

    _bins: Any = None

    def binaries(self) -> Any:
        if Kubelet._bins is None:
            from pytest_kaudit.backends.local.binaries import find_binaries

            Kubelet._bins = find_binaries()
        return Kubelet._bins

    def fail_create(self, message: str) -> None:
        self.state = "ContainerCreating"
        self.message = message
        self.not_before = time.monotonic() + 1.0
        self.report()

    def crash(self, log_host: Path, text: str) -> None:
        with log_host.open("a") as fh:
            fh.write(text + "\n")
        self.state = "CrashLoopBackOff"
        self.message = "Back-off restarting failed container"
        self.not_before = time.monotonic() + _backoff(self.restarts)
        self.report()

    def kill_container(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        self.proc = None

    # -------------------------------------------------------------- loop

    def handle_requests(self) -> None:
        req_dir = self.dir / "requests"
        for req in sorted(req_dir.glob("*.json")):
            try:
                op = json.loads(req.read_text())
            except ValueError:
                continue
            result = {"ok": True, "error": ""}
            if op.get("pod") != self.pod_id:
                result = {"ok": False, "error": f'pod sandbox "{op.get("pod")}" not found'}
            elif op["op"] == "stopp":
                self.kill_container()
                self.stopped = True
                self.state = "NotReady"
            elif op["op"] == "rmp":
                self.kill_container()
                self.stopped = False
                self.new_pod()
            elif op["op"] == "stop":
                self.kill_container()
                self.state = "Exited"
            req.with_suffix(".done").write_text(json.dumps(result))
            req.unlink()
            self.report()

    def sync_service_accounts(self) -> None:
        """The service-account controller's job: a ``default`` account in every namespace."""
        now = time.monotonic()
        if now < self.next_sa_sync or self.proc is None or self.proc.poll() is not None:
            return
        self.next_sa_sync = now + 1.0
        server = f"https://127.0.0.1:{self.record['apiserver_port']}"

        def call(method: str, path: str, body: bytes | None = None) -> Any:
            ca, _ = self.node_path("/etc/kubernetes/pki/ca.crt")
            ctx = ssl.create_default_context(cafile=str(ca))
            ctx.load_cert_chain(self.record["admin_cert"], self.record["admin_key"])
            req = urllib.request.Request(server + path, data=body, method=method)
            req.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
                return json.loads(resp.read())

        try:
            namespaces = {i["metadata"]["name"] for i in call("GET", "/api/v1/namespaces")["items"]}
            have = {
                i["metadata"]["namespace"]
                for i in call(
                    "GET", "/api/v1/serviceaccounts?fieldSelector=metadata.name%3Ddefault"
                )["items"]
            }
            for ns in sorted(namespaces - have):
                # The token controller's part, as a reference only (no real token exists).
                account = {"metadata": {"name": "default"}, "secrets": [{"name": "default-token"}]}
                body = json.dumps(account).encode()
                try:
                    call("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", body)
                except urllib.error.HTTPError:
                    pass  # terminating namespace, or created meanwhile
        except (OSError, ValueError, KeyError):
            pass  # apiserver not answering yet: next round

    def new_pod(self) -> None:
        self.pod_id = uuid.uuid4().hex[:13]
        self.restarts = -1
        self.state = "Pending"
        self.not_before = 0.0

    def loop(self) -> None:
        (self.dir / "requests").mkdir(exist_ok=True)
        self.new_pod()
        while self.running:
            self.handle_requests()
            manifest, digest = self.manifest()
            if manifest is None:
                if self.proc is not None:
                    self.kill_container()
                    self.state = "Removed"
                    self.report()
            elif not self.stopped:
                if digest != self.hash and self.hash:
                    self.kill_container()  # new config hash: the pod is replaced
                    self.new_pod()
                self.hash = digest
                if self.proc is not None and self.proc.poll() is not None:
                    self.proc = None
                    self.state = "CrashLoopBackOff"
                    self.message = "Back-off restarting failed container"
                    self.not_before = time.monotonic() + _backoff(self.restarts)
                    self.report()
                if self.proc is None and time.monotonic() >= self.not_before:
                    self.start_container(manifest)
                self.sync_service_accounts()
            time.sleep(0.05)
        self.kill_container()
        self.state = "Stopped"
        self.report()


def main() -> None:
    """Run until SIGTERM; then stop the apiserver (before etcd goes, see kind delete)."""
    kubelet = Kubelet(sys.argv[1])

    def _stop(signum: int, frame: object) -> None:
        kubelet.running = False

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    kubelet.loop()


if __name__ == "__main__":
    main()

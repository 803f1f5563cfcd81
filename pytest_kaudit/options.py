"""Every pytest-kaudit setting: its name, help, type and default, with no pytest import.

``pytest_kaudit.config`` registers them as ``--kaudit-*`` options and ``kaudit_*`` ini keys;
``kaudit check`` offers the backend ones as plain ``--*`` options. One list, two front ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BACKENDS = ("local", "kind", "k3s", "existing")
EVIDENCE_MODES = ("failed", "always", "never")


@dataclass(frozen=True)
class Option:
    """One setting: its CLI flag, ini key, type and help."""

    name: str          # e.g. "backend" -> --kaudit-backend / kaudit_backend
    help: str
    default: Any = None
    kind: str = "string"   # string | bool | float | int | list
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    minimum: float | None = None   # numbers: the smallest value allowed
    maximum: float | None = None
    above: float | None = None     # numbers: must be strictly more than this

    @property
    def flag(self) -> str:
        return f"--kaudit-{self.name.replace('_', '-')}"

    @property
    def ini(self) -> str:
        return f"kaudit_{self.name}"


OPTIONS: tuple[Option, ...] = (
    Option("backend", "Cluster backend: local (default; etcd + kube-apiserver processes), kind, "
           "k3s or existing", "local", choices=BACKENDS, metavar="{local,kind,k3s,existing}"),
    Option("policy", "Audit policy file for the session (markers override it per test)",
           metavar="PATH"),
    Option("apiserver_flag", "Extra kube-apiserver flag NAME=VALUE (repeatable; ini: one per "
           "line), validated before boot", kind="list", metavar="NAME=VALUE"),
    Option("apiserver_bin", "kube-apiserver binary for the local backend", metavar="PATH"),
    Option("etcd_bin", "etcd binary for the local backend", metavar="PATH"),
    Option("timeout", "Seconds an expectation waits for its events", 10.0, kind="float",
           metavar="SECONDS", above=0),
    Option("boot_timeout", "Seconds a cluster may take to become ready", 120.0, kind="float",
           metavar="SECONDS", above=0),
    Option("lenient", "Load policies as kube-apiserver does: unknown or duplicate fields are "
           "warnings, not errors", default=False, kind="bool"),
    Option("max_clusters", "Running clusters kept for distinct policy/flag sets before the "
           "least recently used one is stopped", 3, kind="int", metavar="N", minimum=1),
    Option("evidence", "Attach a test's audit events to its report", "failed",
           choices=EVIDENCE_MODES, metavar="{failed,always,never}"),
    Option("coverage", "Write policy rule coverage as JSON to PATH", metavar="PATH"),
    Option("fail_under", "Fail the run if policy rule coverage is below N percent", kind="float",
           metavar="N", minimum=0, maximum=100),
    Option("kind_bin", "kind binary (default: kind on PATH)", metavar="PATH"),
    Option("kind_image", "Node image for kind clusters", metavar="IMAGE"),
    Option("kind_config", "Base kind cluster config to merge the audit wiring into",
           metavar="PATH"),
    Option("kind_config_dump", "Write the generated kind config to PATH", metavar="PATH"),
    Option("reuse", "Reuse an existing kind cluster with the same name and configuration; "
           "local backend: reuse a warm cluster (etcd + kube-apiserver kept running after the "
           "run, shared with `kaudit up`)", default=False, kind="bool"),
    Option("warm_idle", "Minutes a warm local cluster (--kaudit-reuse) stays up unused before "
           "it stops itself", 15.0, kind="float", metavar="MINUTES", above=0),
    Option("keep", "Keep kind/k3s clusters after the run", default=False, kind="bool"),
    Option("cluster_name", "Name of the kind cluster (default: kaudit-<config hash>)",
           metavar="NAME"),
    Option("k3s_image", "Image for the k3s backend", metavar="IMAGE"),
    Option("kubeconfig", "Kubeconfig of the existing cluster", metavar="PATH"),
    Option("context", "Kubeconfig context of the existing cluster", metavar="NAME"),
    Option("log_path", "Audit log file of the existing cluster, readable from here",
           metavar="PATH"),
    Option("log_command", "Command printing the existing cluster's audit log "
           "(e.g. 'ssh node sudo cat /var/log/audit.log')", metavar="CMD"),
    Option("pack", "Check the session policy against these requirement packs (cis, secrets, "
           "stig, forensics; comma-separated): one test item per requirement", metavar="NAMES"),
)

"""Every pytest-kaudit setting: its name, help, type and default, with no pytest import.

Each setting is declared once, as a typed field of :class:`KauditConfig`; :data:`OPTIONS`
is read from those fields. ``pytest_kaudit.config`` registers them as ``--kaudit-*``
options and ``kaudit_*`` ini keys and fills a ``KauditConfig`` from them; ``kaudit check``
offers the backend ones as plain ``--*`` options. One list, two front ends.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

BACKENDS = ("local", "kind", "k3s", "existing")
EVIDENCE_MODES = ("failed", "always", "never")

_T = TypeVar("_T")


def _setting(help: str, default: _T, *, choices: tuple[str, ...] | None = None,
             metavar: str | None = None, minimum: float | None = None,
             maximum: float | None = None, above: float | None = None) -> _T:
    """A :class:`KauditConfig` field that is also a ``--kaudit-*`` option and ini key."""
    return field(default=default, metadata={
        "help": help, "choices": choices, "metavar": metavar, "minimum": minimum,
        "maximum": maximum, "above": above})


@dataclass(frozen=True)
class KauditConfig:
    """All settings of a run, resolved once at configure time (CLI flag > ini key > default).

    The fields up to ``pack`` are the options; the last three are derived from them.
    """

    backend: str = _setting(
        "Cluster backend: local (default; etcd + kube-apiserver processes), kind, k3s or "
        "existing", "local", choices=BACKENDS, metavar="{local,kind,k3s,existing}")
    #: absolute, as meant where pytest was started
    policy: str | None = _setting(
        "Audit policy file for the session (markers override it per test)", None,
        metavar="PATH")
    apiserver_flag: tuple[str, ...] = _setting(
        "Extra kube-apiserver flag NAME=VALUE (repeatable; ini: one per line), validated "
        "before boot", (), metavar="NAME=VALUE")
    apiserver_bin: str | None = _setting(
        "kube-apiserver binary for the local backend", None, metavar="PATH")
    etcd_bin: str | None = _setting("etcd binary for the local backend", None, metavar="PATH")
    timeout: float = _setting("Seconds an expectation waits for its events", 10.0,
                              metavar="SECONDS", above=0)
    boot_timeout: float = _setting("Seconds a cluster may take to become ready", 120.0,
                                   metavar="SECONDS", above=0)
    lenient: bool = _setting(
        "Load policies as kube-apiserver does: unknown or duplicate fields are warnings, not "
        "errors", default=False)
    max_clusters: int = _setting(
        "Running clusters kept for distinct policy/flag sets before the least recently used "
        "one is stopped", 3, metavar="N", minimum=1)
    evidence: str = _setting("Attach a test's audit events to its report", "failed",
                             choices=EVIDENCE_MODES, metavar="{failed,always,never}")
    #: absolute, its directory made at configure time
    coverage: str | None = _setting("Write policy rule coverage as JSON to PATH", None,
                                    metavar="PATH")
    fail_under: float | None = _setting(
        "Fail the run if policy rule coverage is below N percent", None, metavar="N",
        minimum=0, maximum=100)
    kind_bin: str | None = _setting("kind binary (default: kind on PATH)", None, metavar="PATH")
    kind_image: str | None = _setting("Node image for kind clusters", None, metavar="IMAGE")
    kind_config: str | None = _setting(
        "Base kind cluster config to merge the audit wiring into", None, metavar="PATH")
    kind_config_dump: str | None = _setting("Write the generated kind config to PATH", None,
                                            metavar="PATH")
    reuse: bool = _setting(
        "Reuse an existing kind cluster with the same name and configuration; local backend: "
        "reuse a warm cluster (etcd + kube-apiserver kept running after the run, shared with "
        "`kaudit up`)", default=False)
    warm_idle: float = _setting(
        "Minutes a warm local cluster (--kaudit-reuse) stays up unused before it stops itself",
        15.0, metavar="MINUTES", above=0)
    keep: bool = _setting("Keep kind/k3s clusters after the run", default=False)
    cluster_name: str | None = _setting(
        "Name of the kind cluster (default: kaudit-<config hash>)", None, metavar="NAME")
    k3s_image: str | None = _setting("Image for the k3s backend", None, metavar="IMAGE")
    kubeconfig: str | None = _setting("Kubeconfig of the existing cluster", None,
                                      metavar="PATH")
    context: str | None = _setting("Kubeconfig context of the existing cluster", None,
                                   metavar="NAME")
    log_path: str | None = _setting(
        "Audit log file of the existing cluster, readable from here", None, metavar="PATH")
    log_command: str | None = _setting(
        "Command printing the existing cluster's audit log (e.g. 'ssh node sudo cat "
        "/var/log/audit.log')", None, metavar="CMD")
    pack: str | None = _setting(
        "Check the session policy against these requirement packs (cis, secrets, stig, "
        "forensics; comma-separated): one test item per requirement", None, metavar="NAMES")

    #: where pytest was started relative to: the rootdir policies are also looked up in
    rootdir: Path = Path(".")
    #: option name -> where its value came from (its flag or ``ini <key>``), for messages
    origins: Mapping[str, str] = field(default_factory=dict)
    #: the session's apiserver flags, parsed from ``apiserver_flag`` and checked at start-up
    session_flags: Mapping[str, str] = field(default_factory=dict)

    def origin(self, name: str) -> str:
        """Where setting ``name`` came from, for error messages: its flag or ``ini <key>``."""
        return self.origins.get(name, f"--kaudit-{name.replace('_', '-')}")

    @property
    def apiserver_flags(self) -> dict[str, str]:
        """The session-wide apiserver flags (a fresh dict: callers may add to it)."""
        return dict(self.session_flags)


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


_KINDS: dict[object, str] = {str: "string", bool: "bool", int: "int", float: "float"}


def _kind(hint: object) -> str:
    """The option kind of a field's type: ``float | None`` is a float, a tuple a list."""
    if isinstance(hint, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return "list"
    return _KINDS[hint]


def _options() -> tuple[Option, ...]:
    hints = typing.get_type_hints(KauditConfig)
    return tuple(Option(f.name, default=f.default, kind=_kind(hints[f.name]), **f.metadata)
                 for f in fields(KauditConfig) if "help" in f.metadata)


OPTIONS: tuple[Option, ...] = _options()

"""Options and ini keys, resolved once: CLI flag > ini key > default.

Every option is registered as a ``--kaudit-<thing>`` flag and a ``kaudit_<thing>`` ini key
with the same meaning. CLI defaults are ``None`` so "not given" is told apart from "given as
empty/false" (no ``or`` fall-through).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

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
           metavar="SECONDS"),
    Option("boot_timeout", "Seconds a cluster may take to become ready", 120.0, kind="float",
           metavar="SECONDS"),
    Option("lenient", "Load policies as kube-apiserver does: unknown or duplicate fields are "
           "warnings, not errors", default=False, kind="bool"),
    Option("max_clusters", "Running clusters kept for distinct policy/flag sets before the "
           "least recently used one is stopped", 3, kind="int", metavar="N"),
    Option("evidence", "Attach a test's audit events to its report", "failed",
           choices=EVIDENCE_MODES),
    Option("coverage", "Write policy rule coverage as JSON to PATH", metavar="PATH"),
    Option("fail_under", "Fail the run if policy rule coverage is below N percent", kind="float",
           metavar="N"),
    Option("kind_bin", "kind binary (default: kind on PATH)", metavar="PATH"),
    Option("kind_image", "Node image for kind clusters", metavar="IMAGE"),
    Option("kind_config", "Base kind cluster config to merge the audit wiring into",
           metavar="PATH"),
    Option("kind_config_dump", "Write the generated kind config to PATH", metavar="PATH"),
    Option("reuse", "Reuse an existing kind cluster with the same name and configuration",
           default=False, kind="bool"),
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
)


def add_options(parser: pytest.Parser) -> None:
    """Register every option as a CLI flag and an ini key."""
    group = parser.getgroup("kaudit", "Kubernetes audit-policy testing (pytest-kaudit)")
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": f"kaudit_{opt.name}", "default": None, "help": opt.help}
        if opt.kind == "bool":
            group.addoption(opt.flag, action="store_const", const=True, **kwargs)
        elif opt.kind == "list":
            group.addoption(opt.flag, action="append", metavar=opt.metavar, **kwargs)
        else:
            if opt.choices:
                kwargs["choices"] = opt.choices
            group.addoption(opt.flag, metavar=opt.metavar or opt.name.upper(), **kwargs)
        ini_type: Literal["bool", "linelist", "string"] = (
            "bool" if opt.kind == "bool" else "linelist" if opt.kind == "list" else "string")
        default = opt.default if opt.kind in ("bool", "list") else None
        parser.addini(opt.ini, opt.help, type=ini_type, default=default if default is not None
                      else ([] if opt.kind == "list" else None))


def _coerce(opt: Option, value: Any, origin: str) -> Any:
    if value is None:
        return None
    try:
        if opt.kind == "float":
            return float(value)
        if opt.kind == "int":
            return int(value)
        if opt.kind == "bool":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
    except ValueError:
        raise pytest.UsageError(
            f"{origin}: expected a {'number' if opt.kind != 'int' else 'whole number'}, "
            f"got {value!r}") from None
    if opt.choices and value not in opt.choices:
        raise pytest.UsageError(f"{origin}: {value!r} is not one of {', '.join(opt.choices)}")
    return value


def parse_flag_assignments(items: list[str], origin: str) -> dict[str, str]:
    """``["audit-log-maxsize=1", "--v=2"]`` → ``{"audit-log-maxsize": "1", "v": "2"}``.

    Raises:
        ValueError: an item is not NAME=VALUE (the message names ``origin``).
    """
    flags: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{origin}: {item!r} is not NAME=VALUE (e.g. audit-log-maxage=30)")
        name, value = item.split("=", 1)
        # Keep single-dash spellings intact: the policy engine reports them (kube-apiserver
        # would reject `-allow-privileged`).
        stripped = name[2:] if name.startswith("--") else name
        flags[stripped] = value
    return flags


@dataclass(frozen=True)
class KauditConfig:
    """All settings of a run, resolved once at configure time."""

    values: dict[str, Any] = field(default_factory=dict)
    rootdir: Path = Path(".")

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def apiserver_flags(self) -> dict[str, str]:
        """The session-wide apiserver flags (a fresh dict: callers may add to it)."""
        return dict(self.values["session_flags"])


def get_config(config: pytest.Config) -> KauditConfig:
    """Resolve every option: CLI flag if given, else the ini key, else the default."""
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        cli = config.getoption(f"kaudit_{opt.name}")
        if cli is not None:
            values[opt.name] = _coerce(opt, cli, opt.flag)
            continue
        ini = config.getini(opt.ini)
        if opt.kind == "list":
            values[opt.name] = list(ini) if ini else []
        elif opt.kind == "bool":
            values[opt.name] = _coerce(opt, ini, opt.ini) if ini is not None else opt.default
        elif ini not in (None, ""):
            values[opt.name] = _coerce(opt, ini, f"ini {opt.ini}")
        else:
            values[opt.name] = opt.default
    try:
        values["session_flags"] = parse_flag_assignments(values["apiserver_flag"],
                                                         "--kaudit-apiserver-flag")
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if values["policy"] is not None:
        # a session path means what it meant where pytest was started, for every test
        values["policy"] = str(Path(config.invocation_params.dir, values["policy"]).resolve())
    return KauditConfig(values, Path(str(config.rootpath)))

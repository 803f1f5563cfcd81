"""Options and ini keys, resolved once: CLI flag > ini key > default.

Every option is registered as a ``--kaudit-<thing>`` flag and a ``kaudit_<thing>`` ini key
with the same meaning. CLI defaults are ``None`` so "not given" is told apart from "given as
empty/false" (no ``or`` fall-through).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_kaudit._suggest import invalid_choice
from pytest_kaudit.options import BACKENDS, EVIDENCE_MODES, OPTIONS, KauditConfig, Option

__all__ = ["BACKENDS", "EVIDENCE_MODES", "OPTIONS", "KauditConfig", "Option", "add_options",
           "get_config", "parse_flag_assignments"]


def add_options(parser: pytest.Parser) -> None:
    """Register every option as a CLI flag and an ini key."""
    group = parser.getgroup("kaudit", "Kubernetes audit-policy testing (pytest-kaudit)")
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": f"kaudit_{opt.name}", "default": None, "help": opt.help}
        if opt.kind == "bool":
            group.addoption(opt.flag, action="store_const", const=True, **kwargs)
        elif opt.kind == "list":
            group.addoption(opt.flag, action="append", metavar=opt.metavar, **kwargs)
        else:  # choices are checked by _coerce, which gives a hint for near misses
            group.addoption(opt.flag, metavar=opt.metavar or opt.name.upper(), **kwargs)
        ini_type: Literal["bool", "linelist", "string"] = (
            "bool" if opt.kind == "bool" else "linelist" if opt.kind == "list" else "string")
        default = [] if opt.kind == "list" else opt.default if opt.kind == "bool" else None
        parser.addini(opt.ini, opt.help, type=ini_type, default=default)


def _coerce(opt: Option, value: Any, origin: str) -> Any:
    if value is None:
        return None
    try:
        if opt.kind == "float":
            return _check_range(opt, float(value), str(value).strip(), origin)
        if opt.kind == "int":
            return _check_range(opt, int(value), str(value).strip(), origin)
        if opt.kind == "bool":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
    except ValueError:
        raise pytest.UsageError(
            f"{origin}: expected a {'number' if opt.kind != 'int' else 'whole number'}, "
            f"got {value!r}") from None
    if opt.choices and value not in opt.choices:
        raise pytest.UsageError(invalid_choice(origin, value, opt.choices))
    return value


def _check_range(opt: Option, number: float, text: str, origin: str) -> float:
    """``number`` if it is finite and within the option's bounds, else a UsageError."""
    if opt.above is not None and not number > opt.above:  # also refuses nan
        raise pytest.UsageError(f"{origin}: must be more than {opt.above:g}, got {text}")
    if not math.isfinite(number):
        raise pytest.UsageError(f"{origin}: must be a finite number, got {text}")
    if opt.minimum is not None and number < opt.minimum:
        raise pytest.UsageError(f"{origin}: must be at least {opt.minimum:g}, got {text}")
    if opt.maximum is not None and number > opt.maximum:
        raise pytest.UsageError(f"{origin}: must be at most {opt.maximum:g}, got {text}")
    return number


def parse_flag_assignments(items: Iterable[str], origin: str) -> dict[str, str]:
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


def get_config(config: pytest.Config) -> KauditConfig:
    """Resolve every option: CLI flag if given, else the ini key, else the default."""
    values: dict[str, Any] = {}  # option name -> its value, typed as the field says
    origins: dict[str, str] = {}
    for opt in OPTIONS:
        cli = config.getoption(f"kaudit_{opt.name}")
        origins[opt.name] = opt.flag
        if cli is not None:
            values[opt.name] = (tuple(cli) if opt.kind == "list"
                                else _coerce(opt, cli, opt.flag))
            continue
        ini = config.getini(opt.ini)
        if opt.ini in config.inicfg:
            origins[opt.name] = f"ini {opt.ini}"
        if opt.kind == "list":
            values[opt.name] = tuple(ini) if ini else ()
        elif opt.kind == "bool":
            values[opt.name] = (_coerce(opt, ini, f"ini {opt.ini}") if ini is not None
                                else opt.default)
        elif ini not in (None, ""):
            values[opt.name] = _coerce(opt, ini, f"ini {opt.ini}")
        else:
            values[opt.name] = opt.default
    session_flags = _session_flags(values["apiserver_flag"], origins["apiserver_flag"])
    invoked = Path(config.invocation_params.dir)
    if values["policy"] is not None:
        # a session path means what it meant where pytest was started, for every test
        values["policy"] = str(Path(invoked, values["policy"]).resolve())
    if values["coverage"] is not None:
        values["coverage"] = str(_coverage_path(Path(invoked, values["coverage"]),
                                                origins["coverage"]))
    return KauditConfig(**values, rootdir=Path(str(config.rootpath)), origins=origins,
                        session_flags=session_flags)


def _session_flags(items: tuple[str, ...], origin: str) -> dict[str, str]:
    """Parse the session's apiserver flags and refuse what every kube-apiserver refuses."""
    from pytest_kaudit.preflight import flag_errors

    try:
        flags = parse_flag_assignments(items, origin)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    errors = flag_errors(flags, source=origin)
    if errors:
        raise pytest.UsageError("\n".join(
            [f"{origin}: kube-apiserver would refuse to start with these flags:",
             *(f"  {p}" for p in errors)]))
    return flags


def _coverage_path(path: Path, origin: str) -> Path:
    """The coverage report's path, its directory created now so the report is never lost."""
    path = path.resolve()
    if path.is_dir():
        raise pytest.UsageError(f"{origin}: {path} is a directory; give a file path such as "
                                f"{path / 'kaudit-coverage.json'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise pytest.UsageError(f"{origin}: cannot create the directory {path.parent}: "
                                f"{exc.strerror or exc}") from None
    return path

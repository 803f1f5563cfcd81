"""kube-apiserver audit flags: parse errors, ``options/audit.go`` validation, CIS lints.

The facts are in docs/apiserver-flags.md.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_kaudit.policy.flag_sources import FlagArg, FlagSource
from pytest_kaudit.policy.problems import Problem, Severity
from pytest_kaudit.policy.versions import (
    Version,
    VersionLike,
    accepted_api_versions,
    parse_version,
    rotation_defaults,
    warns_deprecated_api_version,
)

_BACKENDS = ("log", "webhook")
_MODES = ("batch", "blocking", "blocking-strict")
_FORMATS = ("legacy", "json")


def _flag_types() -> dict[str, str]:
    types = {
        "audit-policy-file": "string",
        "audit-log-path": "string",
        "audit-log-format": "string",
        "audit-log-version": "string",
        "audit-log-maxsize": "int",
        "audit-log-maxbackup": "int",
        "audit-log-maxage": "int",
        "audit-log-compress": "bool",
        "audit-webhook-config-file": "string",
        "audit-webhook-initial-backoff": "duration",
        "audit-webhook-batch-initial-backoff": "duration",
        "audit-webhook-version": "string",
    }
    for b in _BACKENDS:
        types.update({
            f"audit-{b}-mode": "string",
            f"audit-{b}-batch-buffer-size": "int",
            f"audit-{b}-batch-max-size": "int",
            f"audit-{b}-batch-max-wait": "duration",
            f"audit-{b}-batch-throttle-enable": "bool",
            f"audit-{b}-batch-throttle-qps": "float",
            f"audit-{b}-batch-throttle-burst": "int",
            f"audit-{b}-truncate-enabled": "bool",
            f"audit-{b}-truncate-max-batch-size": "int",
            f"audit-{b}-truncate-max-event-size": "int",
        })
    return types


FLAG_TYPES = _flag_types()
_DEFAULTS: dict[str, Any] = {
    "audit-log-format": "json",
    "audit-log-version": "audit.k8s.io/v1",
    "audit-webhook-version": "audit.k8s.io/v1",
    "audit-log-mode": "blocking",
    "audit-webhook-mode": "batch",
    "audit-log-batch-buffer-size": 10000,
    "audit-webhook-batch-buffer-size": 10000,
    "audit-log-batch-max-size": 1,
    "audit-webhook-batch-max-size": 400,
    "audit-log-batch-throttle-enable": False,
    "audit-webhook-batch-throttle-enable": True,
    "audit-log-batch-throttle-qps": 0.0,
    "audit-webhook-batch-throttle-qps": 10.0,
    "audit-log-batch-throttle-burst": 0,
    "audit-webhook-batch-throttle-burst": 15,
    "audit-log-truncate-max-batch-size": 10485760,
    "audit-webhook-truncate-max-batch-size": 10485760,
    "audit-log-truncate-max-event-size": 102400,
    "audit-webhook-truncate-max-event-size": 102400,
}
#: CIS Kubernetes Benchmark rotation minimums (kube-bench 1.2.17-1.2.19).
CIS_MINIMUMS = (
    ("audit-log-maxage", 30, "1.2.17", "days"),
    ("audit-log-maxbackup", 10, "1.2.18", "files"),
    ("audit-log-maxsize", 100, "1.2.19", "MB"),
)
_DURATION_RE = re.compile(r"^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")
#: kube-apiserver's boolean flags outside the audit set, so ``--name VALUE`` splits as pflag
#: splits it (a bool flag never takes the next word; any other flag does).
_OTHER_BOOLS = frozenset({
    "allow-privileged", "anonymous-auth", "profiling", "contention-profiling",
    "enable-bootstrap-token-auth", "enable-aggregator-routing", "enable-garbage-collector",
    "enable-priority-and-fairness", "enable-logs-handler", "logtostderr", "alsologtostderr",
    "help", "version", "permit-port-sharing", "permit-address-sharing",
})
#: Flags that name a file or directory: ``--audit-log-path``, ``--tls-cert-file``, ...
_PATH_FLAG_RE = re.compile(r"-(?:file|path|dir)$")
#: Characters a real path seldom holds; kube-apiserver takes a path byte for byte (no shell).
_ODD_PATH_CHAR_RE = re.compile(r"[^\w./@+=,:~%-]")
#: What the start-up errors of pflag and cobra mean for the cluster.
REFUSES_TO_START = "kube-apiserver prints this and exits: it refuses to start"


class _Collector:
    def __init__(self, source: str | None) -> None:
        self.source = source
        self.problems: list[Problem] = []
        #: flag name -> line of the occurrence that counts (the last one, as in pflag)
        self.lines: dict[str, int] = {}

    def add(self, severity: Severity, code: str, message: str, flag: str = "",
            hint: str | None = None, fix: str | None = None, line: int | None = None,
            field: str | None = None) -> None:
        where = line if line is not None else self.lines.get(flag)
        if field is None:
            field = f"--{flag}" if flag else ""
        self.problems.append(Problem(severity, code, message, self.source, where, field,
                                     hint=hint, fix=fix))


def _split_args(
    flags: Mapping[str, Any] | Sequence[str] | Sequence[FlagArg], out: _Collector
) -> dict[str, str]:
    """Flag name -> raw value; reports what pflag/cobra would reject while parsing."""
    values: dict[str, str] = {}
    if isinstance(flags, Mapping):
        args = [FlagArg(_mapping_arg(str(key), value)) for key, value in flags.items()]
    else:
        args = [a if isinstance(a, FlagArg) else FlagArg(str(a)) for a in flags]
        if args and not args[0].text.startswith("-") and _is_program(args[0].text):
            args = args[1:]
    positional: list[FlagArg] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        text = arg.text
        if text == "--":  # pflag: everything after it is an argument
            positional += args[i:]
            break
        if text.startswith("--"):
            name, eq, value = text[2:].partition("=")
            if not name or name[0] in "-=":
                out.add("error", "flag-syntax", f"bad flag syntax: {text}",
                        hint=REFUSES_TO_START, line=arg.line)
                continue
            if not eq:
                if FLAG_TYPES.get(name) == "bool" or name in _OTHER_BOOLS:
                    value = "true"
                elif i < len(args) and (name in FLAG_TYPES or not args[i].text.startswith("-")):
                    value = args[i].text
                    if value.startswith("-"):
                        out.add("warning", "flag-takes-next", f"--{name} takes the next "
                                f"argument {value!r} as its value", name,
                                hint=f"that flag is not applied; give --{name} a value",
                                line=arg.line)
                    i += 1
                elif name in FLAG_TYPES:
                    out.add("error", "flag-syntax", f"flag needs an argument: --{name}", name,
                            hint=REFUSES_TO_START, line=arg.line)
                    continue
                else:
                    value = "true"
            values.pop(name, None)  # keep the last occurrence last, as pflag applies them
            values[name] = value
            if arg.line is not None:
                out.lines[name] = arg.line
        elif text.startswith("-") and len(text) > 1:
            _single_dash(text, out, arg.line)
        elif text:
            positional.append(arg)
    if positional:
        quoted = " ".join(f'"{p.text}"' for p in positional)
        out.add("error", "flag-syntax",
                f'"kube-apiserver" does not take any arguments, got [{quoted}]',
                hint="every setting is a --flag=value pair", line=positional[0].line)
    return values


def _mapping_arg(key: str, value: Any) -> str:
    """``{name: value}`` as the argv element it stands for; a dash written in ``name`` stays."""
    raw = "true" if value is True else "false" if value is False else str(value)
    return f"{key}={raw}" if key.startswith("-") else f"--{key}={raw}"


def _is_program(word: str) -> bool:
    return word.rsplit("/", 1)[-1] == "kube-apiserver"


def _single_dash(arg: str, out: _Collector, line: int | None) -> None:
    first = arg[1]
    if first in "vh":  # klog's -v and help's -h are real shorthands
        return
    name = arg.lstrip("-").split("=", 1)[0]
    out.add("error", "single-dash-flag", f"unknown shorthand flag: '{first}' in {arg}", name,
            hint=f"{REFUSES_TO_START}; long flags take two dashes: --{arg.lstrip('-')}",
            fix=f"--{arg.lstrip('-')}", line=line, field=arg.split("=", 1)[0])


def _check_path(name: str, raw: str, out: _Collector) -> None:
    """A path flag whose value holds a character real paths seldom do (``/var/;pg/...``)."""
    odd = sorted(set(_ODD_PATH_CHAR_RE.findall(raw)))
    if not odd:
        return
    shown = ", ".join(repr(c) for c in odd)
    out.add("warning", "odd-flag-path",
            f"path {raw!r} contains {shown}: kube-apiserver uses it byte for byte (no shell "
            "reads it), so the file is exactly there", name, hint="a typo?")


def _parse_value(name: str, raw: str, out: _Collector) -> Any:
    kind = FLAG_TYPES[name]
    prefix = f'invalid argument "{raw}" for "--{name}" flag: '
    if kind in _NUMBER_PARSERS:
        parse, go_func = _NUMBER_PARSERS[kind]
        try:
            return parse(raw)
        except ValueError:
            out.add("error", "flag-value",
                    prefix + f'strconv.{go_func}: parsing "{raw}": invalid syntax', name)
            return None
        except OverflowError:
            out.add("error", "flag-value",
                    prefix + f'strconv.{go_func}: parsing "{raw}": value out of range', name)
            return None
    if kind == "bool":
        if raw in _GO_TRUE:
            return True
        if raw in _GO_FALSE:
            return False
        out.add("error", "flag-value",
                prefix + f'strconv.ParseBool: parsing "{raw}": invalid syntax', name)
        return None
    if kind == "duration":
        if raw == "0" or _DURATION_RE.match(raw):
            return raw
        out.add("error", "flag-value", prefix + f'time: invalid duration "{raw}"', name)
        return None
    return raw


def _go_parse_int(raw: str) -> int:
    """``strconv.ParseInt(s, 0, 64)``: decimal, 0x, 0o, 0b, leading-0 octal, underscores."""
    text = raw
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    base = 10
    lower = text.lower()
    if lower.startswith("0x"):
        base, text = 16, text[2:]
    elif lower.startswith("0b"):
        base, text = 2, text[2:]
    elif lower.startswith("0o"):
        base, text = 8, text[2:]
    elif len(text) > 1 and text.startswith("0"):
        base, text = 8, text[1:]
    if (not text or text != text.strip() or text.startswith("_") or text.endswith("_")
            or "__" in text):
        raise ValueError(raw)
    value = sign * int(text.replace("_", ""), base)
    if not -(2**63) <= value < 2**63:
        raise OverflowError(raw)
    return value


def _go_parse_float(raw: str) -> float:
    """``strconv.ParseFloat(s, 64)`` for decimal text: no spaces, no underscores."""
    if raw != raw.strip() or "_" in raw:
        raise ValueError(raw)
    value = float(raw)
    if math.isinf(value) and "inf" not in raw.lower():
        raise OverflowError(raw)  # Go reports 1e999 as out of range, not as +Inf
    return value


#: Numeric flag kinds: the parser and the Go function named in its error message.
_NUMBER_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "int": (_go_parse_int, "ParseInt"),
    "float": (_go_parse_float, "ParseFloat"),
}


def _go_number(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:g}"
        return text
    return str(value)


def validate_flags(
    flags: Mapping[str, Any] | Sequence[str] | FlagSource,
    *,
    target_version: VersionLike = None,
    source: str | None = None,
) -> list[Problem]:
    """Check kube-apiserver audit flags the way kube-apiserver does, then the CIS minimums.

    ``flags`` is ``{"audit-log-maxage": "30"}``, argv-like ``["--audit-log-maxage=30"]``, or a
    :class:`~pytest_kaudit.policy.flag_sources.FlagSource` read from a file (its problems come
    first, and every finding carries the line of its flag). Errors are what kube-apiserver
    refuses at startup (messages as in ``options/audit.go``, or pflag's for unknown names, bad
    syntax and bad values); warnings are lints with stable codes.
    """
    version = parse_version(target_version)
    problems: list[Problem] = []
    given: Mapping[str, Any] | Sequence[str] | Sequence[FlagArg]
    if isinstance(flags, FlagSource):
        source = source or flags.source
        problems += flags.problems
        given = flags.args
    else:
        given = flags
    out = _Collector(source)
    raw_values = _split_args(given, out)
    values: dict[str, Any] = {}
    for name, raw in raw_values.items():
        if _PATH_FLAG_RE.search(name) and raw != "-":
            _check_path(name, raw, out)
        if not name.startswith("audit-"):
            continue
        if name not in FLAG_TYPES:
            close = difflib.get_close_matches(name, list(FLAG_TYPES), n=1, cutoff=0.8)
            hint = f'did you mean "--{close[0]}"?' if close else None
            out.add("error", "unknown-flag", f"unknown flag: --{name}", name, hint=hint,
                    fix=f"--{close[0]}={raw}" if close else None)
            continue
        parsed = _parse_value(name, raw, out)
        if parsed is not None:
            values[name] = parsed
    if "audit-webhook-batch-initial-backoff" in values:
        out.add("warning", "deprecated-flag",
                "--audit-webhook-batch-initial-backoff is deprecated",
                "audit-webhook-batch-initial-backoff", fix="use --audit-webhook-initial-backoff")
        alias = values["audit-webhook-batch-initial-backoff"]
        values.setdefault("audit-webhook-initial-backoff", alias)
    if values.get("audit-log-path"):
        _validate_backend("log", values, version, out)
        _validate_log_specific(values, out)
    if values.get("audit-webhook-config-file"):
        _validate_backend("webhook", values, version, out)
    _cis(values, raw_values, version, out)
    return problems + out.problems


def _get(values: Mapping[str, Any], name: str) -> Any:
    return values.get(name, _DEFAULTS.get(name))


def _validate_backend(backend: str, values: Mapping[str, Any], version: Version,
                      out: _Collector) -> None:
    mode = _get(values, f"audit-{backend}-mode")
    if mode not in _MODES:
        out.add("error", "flag-value",
                f'invalid audit {backend} mode {mode}, allowed modes are "{",".join(_MODES)}"',
                f"audit-{backend}-mode")
    elif mode == "batch":
        _validate_batch(backend, values, out)
    event = _get(values, f"audit-{backend}-truncate-max-event-size")
    batch = _get(values, f"audit-{backend}-truncate-max-batch-size")
    if event <= 0:
        out.add("error", "flag-value",
                f"invalid audit truncate {backend} max event size {event}, must be a positive "
                "number", f"audit-{backend}-truncate-max-event-size")
    elif batch < event:
        out.add("error", "flag-value",
                f"invalid audit truncate {backend} max batch size {batch}, must be greater than "
                f"max event size ({event})", f"audit-{backend}-truncate-max-batch-size")
    gv = _get(values, f"audit-{backend}-version")
    known = accepted_api_versions(version)
    if gv.count("/") > 1:
        out.add("error", "flag-value", f"unexpected GroupVersion string: {gv}",
                f"audit-{backend}-version")
    elif gv not in known:
        rendered = " ".join(f'"{v}"' for v in known)
        out.add("error", "flag-value", f"invalid group version, allowed versions are [{rendered}]",
                f"audit-{backend}-version", fix=f"--audit-{backend}-version=audit.k8s.io/v1")
    elif gv != "audit.k8s.io/v1" and warns_deprecated_api_version(version):
        out.add("warning", "deprecated-api-version",
                f'"{gv}" is deprecated and will be removed in a future release, use '
                '"audit.k8s.io/v1" instead', f"audit-{backend}-version",
                fix=f"--audit-{backend}-version=audit.k8s.io/v1")


def _validate_batch(backend: str, values: Mapping[str, Any], out: _Collector) -> None:
    checks = [
        ("batch-buffer-size", "buffer size"),
        ("batch-max-size", "max batch size"),
    ]
    if _get(values, f"audit-{backend}-batch-throttle-enable"):
        checks += [
            ("batch-throttle-qps", "throttle QPS"),
            ("batch-throttle-burst", "throttle burst"),
        ]
    for suffix, words in checks:
        value = _get(values, f"audit-{backend}-{suffix}")
        if value <= 0:
            out.add("error", "flag-value",
                    f"invalid audit batch {backend} {words} {_go_number(value)}, must be a "
                    "positive number", f"audit-{backend}-{suffix}")
            return  # the apiserver returns at the first batch error


def _validate_log_specific(values: Mapping[str, Any], out: _Collector) -> None:
    fmt = _get(values, "audit-log-format")
    if fmt not in _FORMATS:
        out.add("error", "flag-value",
                f'invalid audit log format {fmt}, allowed formats are "{",".join(_FORMATS)}"',
                "audit-log-format")
    for name in ("audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize"):
        value = values.get(name, 0)
        if value < 0:
            out.add("error", "flag-value", f"--{name} {value} can't be a negative number", name)


def _cis(values: Mapping[str, Any], raw: Mapping[str, str], version: Version,
         out: _Collector) -> None:
    if not values.get("audit-policy-file"):
        out.add("warning", "cis-audit-policy-file",
                "--audit-policy-file is not set: kube-apiserver records no audit events at all "
                "(CIS 3.2.1)", "audit-policy-file",
                fix="--audit-policy-file=/etc/kubernetes/audit-policy.yaml")
    path = values.get("audit-log-path")
    if not path:
        out.add("warning", "cis-audit-log-path",
                "--audit-log-path is not set: no audit log file is written (CIS 1.2.16)",
                "audit-log-path", fix="--audit-log-path=/var/log/kubernetes/audit/audit.log")
        return
    if path == "-":
        return  # stdout: there is nothing to rotate
    defaults = rotation_defaults(version)
    for name, minimum, cis_id, unit in CIS_MINIMUMS:
        if name in raw and name not in values:
            continue  # unparsable: already an error
        given = name in values
        value = values[name] if given else defaults[name]
        if value >= minimum:
            continue
        if name == "audit-log-maxsize" and value == 0 and version >= (1, 36):
            what = "0, which disables rotation in 1.36+"
        else:
            what = f"{value}" + ("" if given else " (the default)")
        out.add("warning", f"cis-{name}",
                f"--{name} is {what}; CIS {cis_id} asks for at least {minimum} {unit}", name,
                fix=f"--{name}={minimum}")

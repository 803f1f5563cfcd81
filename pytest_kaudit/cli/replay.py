"""``kaudit replay POLICY AUDIT_LOG...``: what a candidate policy would do to real traffic.

Re-evaluates every event of an existing audit log under the candidate policy and reports
events per level before and after, bytes per day after (bodies added or dropped estimated
from the log's own sizes), the request classes that change most, and what stops being
logged. It streams: memory does not grow with the log, only with the number of distinct
request shapes (capped).

Speed matters (logs are GBs): each line is cut before its request/response bodies and only
that small head is JSON-decoded (a full decode is the fallback for anything unusual), and
decisions are cached per distinct attribute tuple.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import multiprocessing
import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    LEVEL_RANK,
    CliError,
    Streams,
    add_format_option,
    add_policy_options,
    load_policy,
)
from pytest_kaudit.policy.space import OTHER_NAME, OTHER_NAMESPACE, OTHER_USER, unique_value

if TYPE_CHECKING:
    from pytest_kaudit.policy import Policy

LEVELS = ("RequestResponse", "Request", "Metadata", "None")
TERMINAL_STAGES = frozenset({"ResponseComplete", "Panic"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})
#: Verbs whose requests carry a decoded body (requestObject) at Request level and above.
BODY_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

_TS_KEY = b',"requestReceivedTimestamp":"'
_REQ_KEY = b',"requestObject":'
_RESP_KEY = b',"responseObject":'
#: Bounds that keep memory flat whatever the log size.
MAX_CACHED_DECISIONS = 200_000
MAX_WARNINGS_SHOWN = 20


# --------------------------------------------------------------------------- inputs


def expand_rotated(paths: Sequence[str]) -> list[str]:
    """Add each file's rotated siblings (``audit-<ts>.log[.gz]``), oldest first, before it."""
    out: list[str] = []
    for raw in paths:
        if raw == "-":
            out.append(raw)
            continue
        p = Path(raw)
        stem, ext = p.stem, p.suffix
        if ext == ".gz":  # given a rotated file itself
            out.append(raw)
            continue
        siblings = sorted(
            {*p.parent.glob(f"{stem}-*{ext}"), *p.parent.glob(f"{stem}-*{ext}.gz")},
            key=lambda s: s.name.removesuffix(".gz"),
        )
        out += [str(s) for s in siblings]
        out.append(raw)
    return list(dict.fromkeys(out))


def _open(path: str) -> tuple[str, IO[bytes]]:
    """Open a log (plain, gzip by magic bytes, or ``-`` for stdin) as a binary line stream."""
    if path == "-":
        raw: IO[bytes] = sys.stdin.buffer
        label = "<stdin>"
    else:
        label = path
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[type-var]
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return label, gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return label, buffered


def check_inputs(paths: Sequence[str]) -> None:
    """Fail early (exit 2) on a missing or unreadable log, before any output."""
    for path in paths:
        if path == "-":
            continue
        p = Path(path)
        if not p.exists():
            raise CliError(f"audit log {path!r}: no such file")
        if p.is_dir():
            raise CliError(f"audit log {path!r}: is a directory")
        try:
            with open(p, "rb"):
                pass
        except OSError as exc:
            raise CliError(f"audit log {path!r}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------- parsing

#: The head of an ``audit.k8s.io/v1`` line, in the apiserver's struct key order (§4.1), up to
#: the end of ``objectRef``. ``user`` may hold one level of nested objects (``extra``, on
#: nearly every 1.34+ event). Strings with escaped quotes and the like make it fail (or stop
#: early, caught by the ``,"re`` check), and the line is decoded fully instead.
_LINE_RE = re.compile(
    rb'\{"kind":"Event","apiVersion":"audit\.k8s\.io/v1","level":"(\w+)","auditID":"[^"]*",'
    rb'"stage":"(\w+)","requestURI":"([^"]*)","verb":"([^"]*)",'
    rb'"user":\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}'  # one level of nesting: "extra":{...}
    rb'(?:,"impersonatedUser":\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})?'
    rb'(?:,"authenticationMetadata":\{[^{}]*\})?'
    rb'(?:,"sourceIPs":\[[^\]]*\])?(?:,"userAgent":"[^"]*")?'
    rb'(?:,"objectRef":\{"resource":"([^"\\]*)"(?:,"namespace":"([^"\\]*)")?(?:,"name":"([^"\\]*)")?'
    rb'(?:,"uid":"[^"\\]*")?(?:,"apiGroup":"([^"\\]*)")?(?:,"apiVersion":"[^"\\]*")?'
    rb'(?:,"resourceVersion":"[^"\\]*")?(?:,"subresource":"([^"\\]*)")?\})?'
)

#: One parsed line: level, stage, user (the raw ``user`` object body for the fast path, or a
#: decoded ``(username, groups)`` pair), verb, resource (None: non-resource request),
#: namespace, name, apiGroup, subresource, path (non-resource), requestObject and
#: responseObject sizes, requestReceivedTimestamp. Fast-path fields are raw bytes (None
#: when absent), decoded only on a decision-cache miss.
Parsed = tuple[Any, ...]


def parse_fast(line: bytes) -> Parsed | None:
    """Slice the fields replay needs out of a standard line with one regex, no JSON decode.

    kube-apiserver writes keys in struct order and escapes every ``"`` inside strings, so the
    pattern cannot match across values. Anything unusual returns None and goes through
    :func:`parse_line`. Bodies are measured, not parsed: they sit between the head and
    ``requestReceivedTimestamp``.
    """
    m = _LINE_RE.match(line)
    if m is None:
        return None
    e = m.end()
    if not line.startswith(b',"re', e):  # responseStatus, request/responseObject, timestamps
        return None
    ts = line.rfind(_TS_KEY)
    if ts < e:
        return None
    rq = line.find(_REQ_KEY, e, ts)
    rs = line.find(_RESP_KEY, e if rq < 0 else rq, ts)
    req = ((rs if rs > 0 else ts) - rq) if rq > 0 else 0
    resp = ts - rs if rs > 0 else 0
    level, stage, uri, verb, user, res, ns, name, grp, sub = m.groups()
    t0 = ts + 29
    if res is None:
        q = uri.find(b"?")
        return (
            level,
            stage,
            user,
            verb,
            None,
            None,
            None,
            None,
            None,
            uri if q < 0 else uri[:q],
            req,
            resp,
            line[t0 : t0 + 27],
        )
    return (level, stage, user, verb, res, ns, name, grp, sub, None, req, resp, line[t0 : t0 + 27])


def parse_line(line: bytes) -> Parsed | str:
    """Decode any event line fully (the fallback); returns a reason string if unusable."""
    try:
        obj = json.loads(line)
    except ValueError:
        return "not JSON"
    if not isinstance(obj, dict):
        return "not a JSON object"
    stage = obj.get("stage")
    audit_id = obj.get("auditID")
    user = obj.get("user")
    if not isinstance(stage, str) or not isinstance(audit_id, str):
        return "not an audit event (no stage/auditID)"
    if not isinstance(user, dict):
        return "not an audit event (no user)"
    who = _identity_of(user)
    compact = (",", ":")
    req = (
        len(json.dumps(obj["requestObject"], separators=compact)) + 17
        if "requestObject" in obj
        else 0
    )
    resp = (
        len(json.dumps(obj["responseObject"], separators=compact)) + 18
        if "responseObject" in obj
        else 0
    )
    stamp = str(obj.get("requestReceivedTimestamp") or "").encode()
    level = str(obj.get("level") or "None").encode()
    verb = str(obj.get("verb") or "").encode()
    ref = obj.get("objectRef")
    if isinstance(ref, dict):

        def f(k: str) -> bytes:
            return json.dumps(str(ref.get(k) or ""))[1:-1].encode()

        return (
            level,
            stage.encode(),
            who,
            verb,
            f("resource"),
            f("namespace"),
            f("name"),
            f("apiGroup"),
            f("subresource"),
            None,
            req,
            resp,
            stamp,
        )
    path = str(obj.get("requestURI") or "").split("?", 1)[0]
    return (
        level,
        stage.encode(),
        who,
        verb,
        None,
        None,
        None,
        None,
        None,
        json.dumps(path)[1:-1].encode(),
        req,
        resp,
        stamp,
    )


def _identity_of(user: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    username = user.get("username")
    groups = tuple(str(g) for g in user.get("groups") or ())
    if not username and not groups:
        return None, ()  # a 401: the checker sees no user
    return str(username or ""), groups


def _text(raw: bytes | None) -> str:
    if not raw:
        return ""
    if b"\\" in raw:
        return str(json.loads(b'"' + raw + b'"'))
    return raw.decode("utf-8", "replace")


# --------------------------------------------------------------------------- statistics

#: Per (old level, stage) of a class: [events, bytes, requestObject bytes, responseObject bytes,
#: first location].
Stats = dict[tuple[bytes, bytes], list[Any]]


@dataclass(eq=False, slots=True)
class Shape:
    """The candidate policy's verdict on one request shape (the decision-cache value).

    Shapes with the same report class and verdict share one ``stats`` dict, so the cache can
    be cleared without losing counts.
    """

    new_level: str
    new_rank: int
    new_omit: frozenset[str]
    label: str  # "verb target", the class used in reports
    verb: str
    long_running: bool
    unauthenticated: bool
    stats: Stats


@dataclass
class ReplayReport:
    """Everything replay measured; rendered as text or JSON."""

    files: list[str] = field(default_factory=list)
    lines: int = 0
    events: int = 0
    requests: int = 0
    bytes_before: int = 0
    bytes_after: float = 0.0
    events_before: Counter[str] = field(default_factory=Counter)
    events_after: Counter[str] = field(default_factory=Counter)
    added_events: int = 0
    first_ts: bytes = b""
    last_ts: bytes = b""
    changed_requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    stopped_events: Counter[tuple[str, str]] = field(default_factory=Counter)
    stopped_bytes: Counter[tuple[str, str]] = field(default_factory=Counter)
    stopped_example: dict[tuple[str, str], str] = field(default_factory=dict)
    omitted_stage_events: Counter[str] = field(default_factory=Counter)
    unestimated_bodies: int = 0
    fallback_lines: int = 0
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0

    @property
    def span_seconds(self) -> float | None:
        """Time covered by the log, from the requestReceivedTimestamps."""
        try:
            a = datetime.fromisoformat(self.first_ts.decode().replace("Z", "+00:00"))
            b = datetime.fromisoformat(self.last_ts.decode().replace("Z", "+00:00"))
        except ValueError:
            return None
        return (b - a).total_seconds()

    @property
    def has_changes(self) -> bool:
        """Whether the candidate policy logs anything differently."""
        return bool(
            self.changed_requests
            or self.stopped_events
            or self.omitted_stage_events
            or self.added_events
        )


class Replayer:
    """Streams events through a candidate policy and accumulates a :class:`ReplayReport`.

    Per line it only parses, looks up the cached verdict and bumps four counters of the
    line's class; everything else (requests, bytes after, added stages) is derived from the
    per-class aggregates in :meth:`finish`. Requests per class are the largest count of a
    single stage (ResponseComplete and Panic together): one per auditID in a well-formed log,
    whichever stages the old policy omitted.
    """

    def __init__(self, policy: Policy, *, warn: Callable[[str], None] | None = None) -> None:
        self.policy = policy
        self.report = ReplayReport()
        self._warn_sink = warn
        rules = policy.rules
        self._users = {u for r in rules for u in r.users}
        self._groups = {g for r in rules for g in r.user_groups}
        self._namespaces = {n.encode() for r in rules for n in r.namespaces}
        self._names = {n.encode() for r in rules for gr in r.resources for n in gr.resource_names}
        self._uses_names = bool(self._names)
        self._other_user = unique_value(OTHER_USER, self._users)
        self._other_ns = unique_value(OTHER_NAMESPACE, {n.decode() for n in self._namespaces})
        self._other_name = unique_value(OTHER_NAME, {n.decode() for n in self._names})
        self._cache: dict[tuple[Any, ...], Shape] = {}
        self._identities: dict[Any, tuple[str | None, tuple[str, ...]]] = {}
        self._classes: dict[tuple[Any, ...], Stats] = {}
        self._shapes: dict[tuple[Any, ...], Shape] = {}

    # ------------------------------------------------------------------ helpers
    def warn(self, text: str) -> None:
        """Record a warning about the input (shown on stderr, capped)."""
        self.report.warning_count += 1
        if len(self.report.warnings) < MAX_WARNINGS_SHOWN:
            self.report.warnings.append(text)
            if self._warn_sink:
                self._warn_sink(text)

    def identity(self, user: Any) -> tuple[str | None, tuple[str, ...]]:
        """The caller as the policy can tell it apart: a listed user or "other", listed groups.

        The checker only asks whether the name is in a rule's ``users`` and whether a group
        is in its ``userGroups``, so this is exact and keeps the decision cache small.
        """
        if isinstance(user, bytes):
            who, groups = _identity_of(json.loads(b"{" + user + b"}")) if user else (None, ())
        else:
            who, groups = user
        if who is None:
            return None, ()
        rep = who if who in self._users else self._other_user
        return rep, tuple(sorted({g for g in groups if g in self._groups}))

    def shape(self, key: tuple[Any, ...]) -> Shape:
        """Decide a request shape under the candidate policy (called on cache misses only)."""
        from pytest_kaudit.policy import RequestAttributes

        (user, groups), verb_b, ns_b, res_b, name_b, grp_b, sub_b, path_b = key
        verb = _text(verb_b)
        if res_b is not None:
            res, sub, grp = _text(res_b), _text(sub_b), _text(grp_b)
            attrs = RequestAttributes(
                user=user,
                groups=groups,
                verb=verb,
                namespace=self._other_ns if ns_b is None else _text(ns_b),
                resource=res,
                subresource=sub,
                name=self._other_name if name_b is None else _text(name_b),
                api_group=grp,
                api_version="",
                path="",
                is_resource_request=True,
            )
            target = (f"{res}/{sub}" if sub else res) + (f".{grp}" if grp else "")
            long_running = verb in ("watch", "proxy") or sub in LONG_RUNNING_SUBRESOURCES
        else:
            path = _text(path_b)
            attrs = RequestAttributes(
                user=user,
                groups=groups,
                verb=verb,
                path=path,
                is_resource_request=False,
            )
            target = path
            long_running = verb in ("watch", "proxy") or path.startswith("/debug/pprof/")
        d = self.policy.evaluate_attributes(attrs)
        level = str(d.level.value)
        omit = frozenset(str(s.value) for s in d.omit_stages)
        label = f"{verb} {target}"
        cls = (label, level, omit, long_running, user is None)
        stats = self._classes.get(cls)
        if stats is None:
            stats = self._classes[cls] = {}
            self._shapes[cls] = Shape(
                level, LEVEL_RANK[level], omit, label, verb, long_running, user is None, stats
            )
        return self._shapes[cls]

    # ------------------------------------------------------------------ main loop
    def feed(self, label: str, stream: Iterable[bytes], *, first_line: int = 0,
             whole_file: bool = True) -> None:
        """Consume one log file (or, in a worker, one line-aligned part of it).

        Bad lines become warnings with ``file:line``; ``first_line`` is the number of lines
        before this part, so the numbers stay those of the whole file.
        """
        rep = self.report
        if whole_file:
            rep.files.append(label)
        cache = self._cache
        uses_names = self._uses_names
        identities = self._identities
        namespaces = self._namespaces
        names = self._names
        fast = parse_fast
        lineno = first_line
        events = bytes_before = 0
        first_ts, last_ts = rep.first_ts or b"\xff", rep.last_ts
        try:
            for line in stream:
                lineno += 1
                if line[-1:] != b"\n":
                    self.warn(
                        f"{label}:{lineno}: truncated line (no newline at end of file; skipped)"
                    )
                    break
                parsed = fast(line)
                if parsed is None:
                    if not line.strip():
                        continue
                    slow = parse_line(line)
                    if isinstance(slow, str):
                        self.warn(f"{label}:{lineno}: {slow} (skipped)")
                        continue
                    parsed = slow
                    rep.fallback_lines += 1
                level, stage, user, verb, res, ns, name, grp, sub, path, rq, rs, stamp = parsed
                ident = identities.get(user)
                if ident is None:
                    if len(identities) >= MAX_CACHED_DECISIONS:
                        identities.clear()
                    ident = identities[user] = self.identity(user)
                if res is None:
                    key: tuple[Any, ...] = (ident, verb, None, None, None, None, None, path)
                else:
                    if uses_names:
                        # the checker sees the URL's name: none for a create of the resource itself
                        name = (
                            (name if name in names else None) if verb != b"create" or sub else b""
                        )
                    else:
                        name = b""
                    if ns is None:
                        ns = b""
                    key = (ident, verb, ns if ns in namespaces else None, res, name, grp, sub, None)
                shape = cache.get(key)
                if shape is None:
                    if len(cache) >= MAX_CACHED_DECISIONS:
                        cache.clear()
                    shape = cache[key] = self.shape(key)
                size = len(line)
                st = shape.stats.get((level, stage))
                if st is None:
                    st = shape.stats[(level, stage)] = [0, 0, 0, 0, f"{label}:{lineno}"]
                st[0] += 1
                st[1] += size
                if rq:
                    st[2] += rq
                if rs:
                    st[3] += rs
                events += 1
                bytes_before += size
                if stamp > last_ts:
                    last_ts = stamp
                if stamp < first_ts:
                    first_ts = stamp
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            self.warn(
                f"{label}:{lineno}: cannot read further ({exc}); the rest of this file is skipped"
            )
        finally:
            rep.lines += lineno - first_line
            rep.events += events
            rep.bytes_before += bytes_before
            rep.first_ts = b"" if first_ts == b"\xff" else first_ts
            rep.last_ts = last_ts
        if events == 0 and whole_file:
            self.warn(f"{label}: no audit events")

    def merge(self, shapes: dict[tuple[Any, ...], Shape], part: ReplayReport) -> None:
        """Add a worker's per-class counts and totals (parts arrive in file order)."""
        for cls, shape in shapes.items():
            mine = self._shapes.get(cls)
            if mine is None:
                self._shapes[cls] = shape
                self._classes[cls] = shape.stats
                continue
            for k, (n, size, rq, rs, where) in shape.stats.items():
                st = mine.stats.get(k)
                if st is None:
                    mine.stats[k] = [n, size, rq, rs, where]
                else:
                    st[0] += n
                    st[1] += size
                    st[2] += rq
                    st[3] += rs  # st[4]: the earlier part's example line is kept
        rep = self.report
        rep.lines += part.lines
        rep.events += part.events
        rep.bytes_before += part.bytes_before
        rep.fallback_lines += part.fallback_lines
        if part.first_ts and (not rep.first_ts or part.first_ts < rep.first_ts):
            rep.first_ts = part.first_ts
        rep.last_ts = max(rep.last_ts, part.last_ts)
        for text in part.warnings:
            self.warn(text)
        rep.warning_count += part.warning_count - len(part.warnings)

    # ------------------------------------------------------------------ aggregation
    def finish(self) -> ReplayReport:
        """Derive requests, levels after, bytes after and changes from the class aggregates."""
        rep = self.report
        need_req: Counter[str] = Counter()
        need_resp: Counter[str] = Counter()
        req_sizes: dict[str, list[int]] = {}
        resp_sizes: dict[str, list[int]] = {}
        for shape in self._shapes.values():
            for n, _size, rq, rs, _where in shape.stats.values():
                if rq:
                    agg = req_sizes.setdefault(shape.label, [0, 0])
                    agg[0] += rq
                    agg[1] += n  # events of this stage that can carry a body
                if rs:
                    agg = resp_sizes.setdefault(shape.label, [0, 0])
                    agg[0] += rs
                    agg[1] += n
        for shape in self._shapes.values():
            by_level: dict[bytes, dict[str, list[Any]]] = {}
            for (level_b, stage_b), st in shape.stats.items():
                by_level.setdefault(level_b, {})[stage_b.decode()] = st
            for level_b, stages in by_level.items():
                level = level_b.decode()
                self._account(shape, level, stages, need_req, need_resp)
        rep.bytes_after += self._estimate(need_req, req_sizes)
        rep.bytes_after += self._estimate(need_resp, resp_sizes)
        return rep

    def _account(
        self,
        shape: Shape,
        level: str,
        stages: dict[str, list[Any]],
        need_req: Counter[str],
        need_resp: Counter[str],
    ) -> None:
        rep = self.report
        count = {s: st[0] for s, st in stages.items()}
        requests = max(
            count.get("RequestReceived", 0),
            count.get("ResponseStarted", 0),
            count.get("ResponseComplete", 0) + count.get("Panic", 0),
        )
        rep.requests += requests
        old_rank = LEVEL_RANK.get(level, 0)
        new_rank = shape.new_rank
        for stage, (n, size, rq, rs, where) in stages.items():
            rep.events_before[level] += n
            if new_rank == 0:
                k = (shape.label, level)
                rep.stopped_events[k] += n
                rep.stopped_bytes[k] += size
                rep.stopped_example.setdefault(k, where)
                continue
            if stage in shape.new_omit:
                rep.omitted_stage_events[stage] += n
                continue
            rep.events_after[shape.new_level] += n
            if new_rank < old_rank:
                size -= (rs if new_rank < 3 else 0) + (rq if new_rank < 2 else 0)
            elif new_rank > old_rank:
                if (
                    new_rank >= 2 > old_rank
                    and stage != "RequestReceived"
                    and shape.verb in BODY_VERBS
                ):
                    need_req[shape.label] += n
                if new_rank >= 3 > old_rank and stage in TERMINAL_STAGES and not shape.long_running:
                    need_resp[shape.label] += n
            rep.bytes_after += size
        if new_rank:
            # stages the candidate emits that the log lacks (e.g. RequestReceived no longer omitted)
            if shape.unauthenticated:
                expected = {"ResponseStarted"}
            else:
                expected = {"RequestReceived", "ResponseComplete"}
                if shape.long_running:
                    expected.add("ResponseStarted")
            total_n = sum(count.values())
            meta = sum(st[1] - st[2] - st[3] for st in stages.values()) / max(total_n, 1)
            for stage in expected - shape.new_omit:
                have = count.get(stage, 0) + (
                    count.get("Panic", 0) if stage == "ResponseComplete" else 0
                )
                missing = requests - have
                if missing > 0:
                    rep.added_events += missing
                    rep.events_after[shape.new_level] += missing
                    rep.bytes_after += missing * meta
        if level != shape.new_level and requests:
            rep.changed_requests[(shape.label, level, shape.new_level)] += requests

    def _estimate(self, need: Counter[str], sizes: dict[str, list[int]]) -> float:
        by_target: dict[str, list[int]] = {}
        for label, (total, n) in sizes.items():
            agg = by_target.setdefault(label.split(" ", 1)[-1], [0, 0])
            agg[0] += total
            agg[1] += n
        total = sum(t for t, _ in sizes.values())
        n_all = sum(n for _, n in sizes.values())
        overall = total / n_all if n_all else 0.0
        added = 0.0
        for label, count in need.items():
            s = sizes.get(label) or by_target.get(label.split(" ", 1)[-1])
            if s and s[1]:
                added += count * s[0] / s[1]
            else:  # no sample of this resource: the log-wide mean (0 if the log has no bodies)
                added += count * overall
                self.report.unestimated_bodies += count
        return added


# --------------------------------------------------------------------------- rendering


def _mb(n: float) -> str:
    if abs(n) >= 1e9:
        return f"{n / 1e9:.2f} GB"
    if abs(n) >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if abs(n) >= 1e3:
        return f"{n / 1e3:.1f} kB"
    return f"{n:.0f} B"


def render_text(rep: ReplayReport, *, top: int) -> list[str]:
    """The human report."""
    span = rep.span_seconds
    out = [
        f"replayed {len(rep.files)} file{'s' if len(rep.files) != 1 else ''}: "
        f"{rep.events:,} event{'s' if rep.events != 1 else ''}, "
        f"{rep.requests:,} request{'s' if rep.requests != 1 else ''}, {_mb(rep.bytes_before)}"
    ]
    if rep.first_ts:
        out.append(f"time span: {rep.first_ts.decode()} .. {rep.last_ts.decode()}")
    out.append("")
    out.append(f"{'level':<18}{'events before':>15}{'events after':>15}")
    for level in LEVELS:
        after = rep.events_after.get(level, 0)
        if level == "None":
            after = sum(rep.stopped_events.values())
        out.append(f"{level:<18}{rep.events_before.get(level, 0):>15,}{after:>15,}")
    out.append(f"{'bytes':<18}{_mb(rep.bytes_before):>15}{_mb(rep.bytes_after):>15}")
    if span and span >= 1:
        per_day = 86400 / span
        out.append(
            f"{'bytes per day':<18}{_mb(rep.bytes_before * per_day):>15}"
            f"{_mb(rep.bytes_after * per_day):>15}  (after: estimated)"
        )
    else:
        out.append("bytes per day: n/a (the log spans less than a second)")
    if rep.added_events:
        out.append(f"newly emitted stages: about {rep.added_events:,} more events")
    if rep.unestimated_bodies:
        out.append(
            f"note: {rep.unestimated_bodies:,} newly logged bodies have no sample of their "
            "resource in this log; estimated with the log-wide mean body size"
        )
    out.append("")
    if rep.changed_requests:
        out.append(f"top request classes that change level (of {len(rep.changed_requests):,}):")
        for (cls, old, new), n in rep.changed_requests.most_common(top):
            out.append(f"  {n:>10,}  {cls}: {old} → {new}")
    else:
        out.append("no request changes level")
    stopped = sum(rep.stopped_events.values())
    if stopped:
        out.append("")
        out.append(
            f"events the new policy stops logging: {stopped:,} "
            f"({_mb(sum(rep.stopped_bytes.values()))})"
        )
        for k, n in rep.stopped_events.most_common(top):
            cls, old = k
            where = rep.stopped_example.get(k, "")
            out.append(f"  {n:>10,}  {cls} (was {old}) e.g. {where}")
    if rep.omitted_stage_events:
        out.append("")
        out.append("events dropped by omitStages:")
        for stage, n in sorted(rep.omitted_stage_events.items()):
            out.append(f"  {n:>10,}  {stage}")
    if rep.warning_count:
        out.append("")
        out.append(
            f"{rep.warning_count:,} input warning{'s' if rep.warning_count != 1 else ''} "
            "(see stderr)"
        )
    return out


def to_json(rep: ReplayReport, *, top: int) -> dict[str, Any]:
    """The machine report."""
    span = rep.span_seconds
    per_day = 86400 / span if span and span >= 1 else None
    return {
        "files": rep.files,
        "events": rep.events,
        "requests": rep.requests,
        "time_span": [rep.first_ts.decode(), rep.last_ts.decode()] if rep.first_ts else None,
        "events_before": dict(rep.events_before),
        "events_after": {**dict(rep.events_after), "None": sum(rep.stopped_events.values())},
        "bytes_before": rep.bytes_before,
        "bytes_after_estimated": round(rep.bytes_after),
        "bytes_per_day_before": round(rep.bytes_before * per_day) if per_day else None,
        "bytes_per_day_after_estimated": round(rep.bytes_after * per_day) if per_day else None,
        "added_events_estimated": rep.added_events,
        "unestimated_bodies": rep.unestimated_bodies,
        "changed_classes": [
            {"class": k, "old_level": o, "new_level": n, "requests": c}
            for (k, o, n), c in rep.changed_requests.most_common(top)
        ],
        "stopped": [
            {
                "class": k,
                "old_level": o,
                "events": c,
                "bytes": rep.stopped_bytes[(k, o)],
                "example": rep.stopped_example.get((k, o)),
            }
            for (k, o), c in rep.stopped_events.most_common(top)
        ],
        "omitted_stage_events": dict(rep.omitted_stage_events),
        "warnings": rep.warning_count,
    }


#: Plain files at least this large are split across worker processes.
PARALLEL_MIN_BYTES = 64 << 20
_WORKER_POLICY: Policy | None = None  # inherited by forked workers; never pickled


def _range_lines(path: str, start: int, end: int) -> Iterator[bytes]:
    """The lines of ``path`` that begin in ``[start, end)`` (both on line starts)."""
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        for line in fh:
            yield line
            left -= len(line)
            if left <= 0:
                return


def _line_aligned_parts(path: str, size: int, parts: int) -> list[tuple[int, int, int]]:
    """``(start, end, lines before start)`` for ``parts`` line-aligned ranges of the file."""
    cuts = [0]
    with open(path, "rb") as fh:
        for i in range(1, parts):
            fh.seek(max(cuts[-1], size * i // parts))
            fh.readline()  # move to the next line start
            cuts.append(min(fh.tell(), size))
    cuts.append(size)
    out, lines = [], 0
    with open(path, "rb") as fh:
        for start, end in zip(cuts, cuts[1:], strict=False):  # consecutive pairs
            out.append((start, end, lines))
            fh.seek(start)
            left = end - start
            while left > 0:  # memchr-speed newline count, so warnings keep whole-file numbers
                block = fh.read(min(left, 1 << 22))
                if not block:
                    break
                lines += block.count(b"\n")
                left -= len(block)
    return [part for part in out if part[0] < part[1]]


def _replay_part(
    job: tuple[str, int, int, int],
) -> tuple[dict[tuple[Any, ...], Shape], ReplayReport]:
    """Worker: replay one line-aligned part under the policy inherited from the parent."""
    path, start, end, first_line = job
    assert _WORKER_POLICY is not None
    replayer = Replayer(_WORKER_POLICY)
    replayer.feed(path, _range_lines(path, start, end), first_line=first_line, whole_file=False)
    return replayer._shapes, replayer.report


def _parallel_jobs(path: str, jobs: int) -> int:
    """How many processes to split ``path`` across (1: read it here)."""
    if jobs < 2 or path == "-" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    try:
        with open(path, "rb") as fh:
            if fh.read(2) == b"\x1f\x8b":  # gzip streams cannot be split
                return 1
        size = os.path.getsize(path)
    except OSError:
        return 1
    return 1 if size < PARALLEL_MIN_BYTES else jobs


def _feed_parallel(replayer: Replayer, path: str, jobs: int) -> None:
    global _WORKER_POLICY
    parts = _line_aligned_parts(path, os.path.getsize(path), jobs)
    replayer.report.files.append(path)
    _WORKER_POLICY = replayer.policy
    try:
        with multiprocessing.get_context("fork").Pool(len(parts)) as pool:
            results = pool.map(_replay_part, [(path, *p) for p in parts])
    finally:
        _WORKER_POLICY = None
    for shapes, part in results:
        replayer.merge(shapes, part)
    if not any(part.events for _, part in results):
        replayer.warn(f"{path}: no audit events")


def replay_paths(
    policy: Policy, paths: Sequence[str], *, warn: Callable[[str], None] | None = None,
    jobs: int | None = None,
) -> ReplayReport:
    """Replay files (``-`` = stdin) under ``policy``; the library entry point.

    Large plain files are split into line-aligned parts read by ``jobs`` processes (default:
    the CPU count, at most 4); the report is the same as a serial read.
    """
    replayer = Replayer(policy, warn=warn)
    jobs = min(os.cpu_count() or 1, 4) if jobs is None else jobs
    for path in paths:
        workers = _parallel_jobs(path, jobs)
        if workers > 1:
            _feed_parallel(replayer, path, workers)
            continue
        try:
            label, stream = _open(path)
        except OSError as exc:
            raise CliError(f"audit log {path!r}: {exc.strerror or exc}") from None
        try:
            replayer.feed(label, stream)
        finally:
            if path != "-":
                stream.close()
    return replayer.finish()


# --------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``replay``'s arguments."""
    parser.add_argument("policy", metavar="POLICY", help="The candidate audit policy")
    parser.add_argument(
        "logs",
        metavar="AUDIT_LOG",
        nargs="+",
        help="Audit log files (JSON lines; .gz detected by content; - for stdin)",
    )
    parser.add_argument(
        "--with-rotated",
        action="store_true",
        help="Also read each log's rotated siblings (audit-<timestamp>.log[.gz]), oldest first",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="How many changed classes and stopped classes to list (default: 10)",
    )
    add_policy_options(parser)
    add_format_option(parser)


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Replay; exit 1 when the candidate would log anything differently, 2 on bad input."""
    if args.top < 1:
        raise CliError("--top must be at least 1")
    paths = expand_rotated(args.logs) if args.with_rotated else list(args.logs)
    check_inputs(paths)
    policy = load_policy(args.policy, lenient=args.lenient, target_version=args.target_version)
    report = replay_paths(policy, paths, warn=streams.warn)
    if report.warning_count > MAX_WARNINGS_SHOWN:
        streams.warn(f"... and {report.warning_count - MAX_WARNINGS_SHOWN:,} more input warnings")
    if report.events == 0:
        streams.error(f"no audit events found in {', '.join(report.files)}")
        return EXIT_USAGE
    if args.format == "json":
        streams.json(to_json(report, top=args.top))
    else:
        streams.print("\n".join(render_text(report, top=args.top)))
    return EXIT_FINDINGS if report.has_changes else EXIT_OK


COMMAND = Command(
    name="replay",
    help="Re-evaluate a real audit log under a candidate policy: levels, bytes/day, what changes",
    add_arguments=add_arguments,
    run=run,
    description=__doc__,
)

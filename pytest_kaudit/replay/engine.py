"""The statistics: what a candidate policy would log, accumulated one event line at a time.

Per line the engine decodes a typed record, looks up the candidate's verdict for the line's
request class in a cache and bumps four counters. Everything else (requests, bytes after,
stages the candidate adds or drops) is derived from the per-class totals in
:meth:`Replayer.finish`, so memory grows with the number of distinct request classes, never
with the log.

The cache key is the request as the policy can tell it apart: a user the rules do not name
and a namespace or object name they do not list all collapse into "anything else". Every
event of one key therefore gets the same decision, and the first event of a key is decided
through the same event-to-attributes function the fixture uses.
"""

from __future__ import annotations

import gc
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Final

import msgspec

from pytest_kaudit.events.attributes import attributes_from_event
from pytest_kaudit.policy.model import Level, Stage
from pytest_kaudit.policy.space import OTHER_USER, unique_value
from pytest_kaudit.policy.stages import FINAL_STAGES, emitted_stages
from pytest_kaudit.replay.inputs import MAX_LINE_BYTES, LineStream, lines_of, skip_rest_of_line
from pytest_kaudit.replay.records import (
    LEVEL_OF,
    STAGE_OF,
    EventRecord,
    RequestRef,
    UserRecord,
    record_decoder,
    ref_type_for,
    rejection,
)

if TYPE_CHECKING:
    from pytest_kaudit.policy import Policy

#: Verbs whose requests carry a decoded body (requestObject) at Request level and above.
BODY_VERBS: Final = frozenset({"create", "update", "patch", "delete", "deletecollection"})
#: ``,"requestObject":`` and ``,"responseObject":``: what dropping a body removes besides it.
_REQUEST_KEY_BYTES: Final = 17
_RESPONSE_KEY_BYTES: Final = 18
#: Bounds that keep memory flat whatever the log size.
MAX_CACHED_DECISIONS: Final = 200_000
MAX_WARNINGS_SHOWN: Final = 20

_UNSEEN: Final = object()
_EARLIEST: Final = datetime.max.replace(tzinfo=timezone.utc)
_LATEST: Final = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class InputWarning:
    """A line (or file) that was skipped or cut short; never quotes the line's content."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


@dataclass(slots=True)
class StageTally:
    """Totals of one (old level, stage) within a request class."""

    events: int = 0
    bytes: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    first_file: str = ""
    first_line: int = 0

    @property
    def first_seen(self) -> str:
        """``file:line`` of the first such event."""
        return f"{self.first_file}:{self.first_line}"


#: Tallies of a class keyed by the line's (level, stage) strings, as decoded.
Tallies = dict[tuple[str, str], StageTally]
ClassKey = tuple[str, Level, frozenset[Stage], bool, bool]


@dataclass(eq=False, slots=True)
class RequestClass:
    """The candidate policy's verdict on one class of requests and the old log's tallies.

    A class is what the report lists ("verb target") together with the verdict, so the
    decision cache can be cleared without losing counts.
    """

    new_level: Level
    new_omit: frozenset[Stage]
    label: str
    verb: str
    long_running: bool
    unauthenticated: bool
    tallies: Tallies = field(default_factory=dict)

    @property
    def key(self) -> ClassKey:
        """The identity of the class."""
        return (self.label, self.new_level, self.new_omit, self.long_running,
                self.unauthenticated)


@dataclass
class ReplayReport:
    """Everything replay measured; rendered as text or JSON by :mod:`.render`."""

    files: list[str] = field(default_factory=list)
    lines: int = 0
    events: int = 0
    requests: int = 0
    bytes_before: int = 0
    bytes_after: float = 0.0
    events_before: Counter[Level] = field(default_factory=Counter)
    events_after: Counter[Level] = field(default_factory=Counter)
    added_events: int = 0
    first_received: datetime | None = None
    last_received: datetime | None = None
    changed_requests: Counter[tuple[str, Level, Level]] = field(default_factory=Counter)
    stopped_events: Counter[tuple[str, Level]] = field(default_factory=Counter)
    stopped_bytes: Counter[tuple[str, Level]] = field(default_factory=Counter)
    stopped_example: dict[tuple[str, Level], str] = field(default_factory=dict)
    omitted_stage_events: Counter[Stage] = field(default_factory=Counter)
    unestimated_bodies: int = 0
    warnings: list[InputWarning] = field(default_factory=list)
    warning_count: int = 0

    @property
    def span_seconds(self) -> float | None:
        """Time covered by the log, from the requestReceivedTimestamps."""
        if self.first_received is None or self.last_received is None:
            return None
        return (self.last_received - self.first_received).total_seconds()

    @property
    def has_changes(self) -> bool:
        """Whether the candidate policy logs anything differently."""
        return bool(
            self.changed_requests
            or self.stopped_events
            or self.omitted_stage_events
            or self.added_events
        )


@dataclass
class PartResult:
    """What a worker hands back for one byte range of a file (lines numbered from 1)."""

    classes: dict[ClassKey, RequestClass]
    report: ReplayReport
    lines: int


class Replayer:
    """Streams events through a candidate policy and accumulates a :class:`ReplayReport`.

    Requests per class are the largest count of a single stage (ResponseComplete and Panic
    together): one per auditID in a well-formed log, whichever stages the old policy omitted.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        warn: Callable[[str], None] | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self.policy = policy
        self.report = ReplayReport()
        self.max_line_bytes = max_line_bytes
        self._warn_sink = warn
        self._held: list[InputWarning] | None = None
        self._held_count = 0
        rules = policy.rules
        self._users = {u for r in rules for u in r.users}
        self._groups = {g for r in rules for g in r.user_groups}
        self._namespaces = {n for r in rules for n in r.namespaces}
        self._names = {n for r in rules for gr in r.resources for n in gr.resource_names}
        self._other_user = unique_value(OTHER_USER, self._users)
        self._decode = record_decoder(
            ref_type_for(namespaces=bool(self._namespaces), names=bool(self._names))
        )
        #: the hot cache: (identity, verb, level, stage, request fields) -> the tally to bump
        self._tallies: dict[tuple[object, ...], StageTally] = {}
        #: the same key without level and stage -> the candidate's class for it
        self._decisions: dict[tuple[object, ...], RequestClass] = {}
        #: user -> number of the user's identity in ``_identities`` (a small int hashes fast)
        self._user_ids: dict[UserRecord, int] = {}
        self._identities: dict[tuple[str, tuple[str, ...]] | None, int] = {}
        #: objectRef record or requestURI -> number of its target in ``_target_numbers``
        self._targets: dict[object, int] = {}
        self._target_numbers: dict[tuple[str, ...] | tuple[str | None, ...], int] = {}
        self._classes: dict[ClassKey, RequestClass] = {}

    # ------------------------------------------------------------------ warnings
    def warn(self, file: str, line: int | None, message: str) -> None:
        """Record a warning about the input (passed to the sink, the first few kept)."""
        warning = InputWarning(file, line, message)
        if self._held is not None:
            self._held_count += 1
            if len(self._held) < MAX_WARNINGS_SHOWN:
                self._held.append(warning)
            return
        self._record(warning)

    def _record(self, warning: InputWarning) -> None:
        self.report.warning_count += 1
        if len(self.report.warnings) < MAX_WARNINGS_SHOWN:
            self.report.warnings.append(warning)
            if self._warn_sink is not None:
                self._warn_sink(str(warning))

    # ------------------------------------------------------------------ decisions
    def _user_id(self, user: UserRecord) -> int:
        """The caller as the policy can tell it apart, as a small int (cached per user).

        The checker only asks whether the name is in a rule's ``users`` and whether a group
        is in its ``userGroups``, so users alike in both are one identity; an unauthenticated
        request (``user: {}``) is another.
        """
        attrs = attributes_from_event({"user": {"username": user.username,
                                                "groups": list(user.groups)}})
        identity: tuple[str, tuple[str, ...]] | None = None
        if attrs.user is not None:
            who = attrs.user if attrs.user in self._users else self._other_user
            identity = (who, tuple(sorted({g for g in attrs.groups if g in self._groups})))
        number = self._identities.setdefault(identity, len(self._identities))
        if len(self._user_ids) >= MAX_CACHED_DECISIONS:
            self._user_ids.clear()
        self._user_ids[user] = number
        return number

    def _target_id(self, record: EventRecord[RequestRef]) -> int:
        """What the request is done to, as far as the policy can tell, as a small int.

        Namespaces and object names that no rule lists are folded together; a non-resource
        request is its path (without the query), as the checker sees it.
        """
        ref = record.object_ref
        target: tuple[str, ...] | tuple[str | None, ...]
        if ref is None:
            target = (attributes_from_event(record.as_event()).path,)
            raw: object = record.request_uri
        else:
            event_ref = record.as_event()["objectRef"]
            ns, name = event_ref["namespace"], event_ref["name"]
            target = (ref.resource, ref.subresource, ref.api_group, ref.api_version,
                      ns if ns in self._namespaces else None,
                      name if name in self._names else None)
            raw = ref
        number = self._target_numbers.setdefault(target, len(self._target_numbers))
        if len(self._targets) >= MAX_CACHED_DECISIONS:
            self._targets.clear()
        self._targets[raw] = number
        return number

    def _tally_for(
        self, key: tuple[object, ...], record: EventRecord[RequestRef], label: str, lineno: int
    ) -> StageTally:
        """Find or open the tally for a key seen for the first time."""
        request = key[:2] + key[4:]
        cls = self._decisions.get(request)
        if cls is None:
            if len(self._decisions) >= MAX_CACHED_DECISIONS:
                self._decisions.clear()
            cls = self._decisions[request] = self._decide(record)
        tally = cls.tallies.get((record.level, record.stage))
        if tally is None:
            tally = cls.tallies[(record.level, record.stage)] = StageTally(
                first_file=label, first_line=lineno
            )
        if len(self._tallies) >= MAX_CACHED_DECISIONS:
            self._tallies.clear()
        self._tallies[key] = tally
        return tally

    def _decide(self, record: EventRecord[RequestRef]) -> RequestClass:
        """Decide the first event of a cache key and find (or open) its class."""
        attrs = attributes_from_event(record.as_event())
        decision = self.policy.evaluate_attributes(attrs)
        if attrs.is_resource_request:
            target = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
            target += f".{attrs.api_group}" if attrs.api_group else ""
        else:
            target = attrs.path
        candidate = RequestClass(
            new_level=decision.level,
            new_omit=frozenset(decision.omit_stages),
            label=f"{attrs.verb} {target}",
            verb=attrs.verb,
            long_running=attrs.is_long_running,
            unauthenticated=attrs.user is None,
        )
        return self._classes.setdefault(candidate.key, candidate)

    # ------------------------------------------------------------------ main loop
    def feed(self, label: str, stream: LineStream, *, compressed: bool = False) -> None:
        """Consume one whole log file; ``compressed`` logs name corruption once."""
        self.report.files.append(label)
        before = self.event_count()
        if not compressed:
            self.consume(label, stream)
        else:
            self._held, self._held_count = [], 0
            try:
                self.consume(label, stream, corrupt=self._corrupt)
            finally:
                held, count = self._held, self._held_count
                self._held = None
            if held is not None:
                for warning in held:
                    self._record(warning)
                self.report.warning_count += count - len(held)
        if self.event_count() == before:
            self.warn(label, None, "no audit events")

    def event_count(self) -> int:
        """Events tallied so far."""
        return sum(t.events for cls in self._classes.values() for t in cls.tallies.values())

    def _corrupt(self, label: str, line: int, exc: Exception) -> None:
        """A gzip stream broke: one warning for the file instead of one per garbled line."""
        dropped = self._held_count
        self._held, self._held_count = [], 0
        note = f"; {dropped:,} undecodable lines before it are not listed" if dropped else ""
        self.warn(label, line, f"corrupt gzip data, cannot read further ({exc}); "
                               f"the rest of this file is skipped{note}")

    def consume(
        self,
        label: str,
        stream: LineStream,
        *,
        corrupt: Callable[[str, int, Exception], None] | None = None,
    ) -> int:
        """Tally every line of ``stream`` (numbered from 1); returns the number of lines.

        Bad lines become warnings with ``label:line``. A read error ends the stream with a
        warning (``corrupt`` is called instead for a broken gzip stream).
        """
        rep = self.report
        limit = self.max_line_bytes
        tallies, user_ids, targets = self._tallies, self._user_ids, self._targets
        decode, decode_error = self._decode, msgspec.DecodeError
        first = rep.first_received or _EARLIEST
        last = rep.last_received or _LATEST
        lineno = 0
        paused = _pause_cyclic_gc()
        try:
            for lineno, line in enumerate(lines_of(stream, limit), 1):  # noqa: B007 - used after
                try:
                    record = decode(line)
                except decode_error as exc:
                    if line[-1] == 10:
                        if line.strip():
                            self.warn(label, lineno, f"{rejection(line, exc)} (skipped)")
                        continue
                    if len(line) < limit:  # the last line, cut short
                        self.warn(label, lineno,
                                  "truncated line (no newline at end of file; skipped)")
                        break
                    skipped = len(line) + skip_rest_of_line(stream)
                    self.warn(label, lineno, f"line of {skipped:,} bytes is longer than the "
                                             f"{_amount(limit)} limit (skipped)")
                    continue
                who = user_ids.get(record.user)
                if who is None:
                    who = self._user_id(record.user)
                ref = record.object_ref
                target = targets.get(record.request_uri if ref is None else ref)
                if target is None:
                    target = self._target_id(record)
                key = (who, record.verb, record.level, record.stage, target)
                tally = tallies.get(key)
                if tally is None:
                    tally = self._tally_for(key, record, label, lineno)
                tally.events += 1
                tally.bytes += len(line)
                body = len(record.request_object)
                if body:
                    tally.request_bytes += body + _REQUEST_KEY_BYTES
                body = len(record.response_object)
                if body:
                    tally.response_bytes += body + _RESPONSE_KEY_BYTES
                received = record.received
                if received > last:
                    last = received
                if received < first:
                    first = received
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            if corrupt is not None:
                corrupt(label, lineno, exc)
            else:
                self.warn(label, lineno, f"cannot read further ({exc}); "
                                         "the rest of this file is skipped")
        finally:
            if paused:
                gc.enable()
            rep.lines += lineno
            rep.first_received = None if first is _EARLIEST else first
            rep.last_received = None if last is _LATEST else last
        return lineno

    # ------------------------------------------------------------------ parallel parts
    def part_result(self, lines: int) -> PartResult:
        """This (worker's) replayer's tallies, for :meth:`merge` in the parent."""
        return PartResult(self._classes, self.report, lines)

    def merge(self, part: PartResult, *, line_offset: int) -> None:
        """Add one part's tallies; parts arrive in file order, ``line_offset`` lines in."""
        for key, theirs in part.classes.items():
            mine = self._classes.setdefault(key, theirs)
            for stage_key, tally in theirs.tallies.items():
                if mine is theirs or stage_key not in mine.tallies:
                    tally.first_line += line_offset
                    mine.tallies[stage_key] = tally
                    continue
                have = mine.tallies[stage_key]
                have.events += tally.events
                have.bytes += tally.bytes
                have.request_bytes += tally.request_bytes
                have.response_bytes += tally.response_bytes
        rep, theirs_rep = self.report, part.report
        rep.lines += theirs_rep.lines
        if theirs_rep.first_received is not None:
            a = rep.first_received
            rep.first_received = theirs_rep.first_received if a is None else min(
                a, theirs_rep.first_received)
        if theirs_rep.last_received is not None:
            b = rep.last_received
            rep.last_received = theirs_rep.last_received if b is None else max(
                b, theirs_rep.last_received)
        for w in theirs_rep.warnings:
            self._record(InputWarning(w.file, None if w.line is None else w.line + line_offset,
                                      w.message))
        rep.warning_count += theirs_rep.warning_count - len(theirs_rep.warnings)

    # ------------------------------------------------------------------ aggregation
    def finish(self) -> ReplayReport:
        """Derive requests, levels after, bytes after and changes from the class totals."""
        rep = self.report
        rep.events = self.event_count()
        rep.bytes_before = sum(
            t.bytes for cls in self._classes.values() for t in cls.tallies.values()
        )
        need_req: Counter[str] = Counter()
        need_resp: Counter[str] = Counter()
        req_sizes: dict[str, list[int]] = {}
        resp_sizes: dict[str, list[int]] = {}
        for cls in self._classes.values():
            for tally in cls.tallies.values():
                if tally.request_bytes:
                    agg = req_sizes.setdefault(cls.label, [0, 0])
                    agg[0] += tally.request_bytes
                    agg[1] += tally.events  # events of this stage that can carry a body
                if tally.response_bytes:
                    agg = resp_sizes.setdefault(cls.label, [0, 0])
                    agg[0] += tally.response_bytes
                    agg[1] += tally.events
        for cls in self._classes.values():
            for level, by_stage in _by_level(cls.tallies):
                self._account(cls, level, by_stage, need_req, need_resp)
        rep.bytes_after += self._estimate(need_req, req_sizes)
        rep.bytes_after += self._estimate(need_resp, resp_sizes)
        return rep

    def _account(
        self,
        cls: RequestClass,
        level: Level,
        by_stage: dict[Stage, StageTally],
        need_req: Counter[str],
        need_resp: Counter[str],
    ) -> None:
        rep = self.report
        count = {s: t.events for s, t in by_stage.items()}
        requests = max(
            count.get(Stage.REQUEST_RECEIVED, 0),
            count.get(Stage.RESPONSE_STARTED, 0),
            count.get(Stage.RESPONSE_COMPLETE, 0) + count.get(Stage.PANIC, 0),
        )
        rep.requests += requests
        old_rank, new_rank = level.rank, cls.new_level.rank
        for stage, tally in by_stage.items():
            n, size = tally.events, tally.bytes
            rep.events_before[level] += n
            if new_rank == 0:
                k = (cls.label, level)
                rep.stopped_events[k] += n
                rep.stopped_bytes[k] += size
                rep.stopped_example.setdefault(k, tally.first_seen)
                continue
            if stage in cls.new_omit:
                rep.omitted_stage_events[stage] += n
                continue
            rep.events_after[cls.new_level] += n
            if new_rank < old_rank:
                size -= (tally.response_bytes if new_rank < 3 else 0) + (
                    tally.request_bytes if new_rank < 2 else 0
                )
            elif new_rank > old_rank:
                if (new_rank >= 2 > old_rank and stage != Stage.REQUEST_RECEIVED
                        and cls.verb in BODY_VERBS):
                    need_req[cls.label] += n
                if new_rank >= 3 > old_rank and stage in FINAL_STAGES and not cls.long_running:
                    need_resp[cls.label] += n
            rep.bytes_after += size
        if new_rank:
            # stages the candidate emits that the log lacks (e.g. RequestReceived no longer omitted)
            expected = emitted_stages(cls.new_level, cls.new_omit,
                                      unauthenticated=cls.unauthenticated,
                                      long_running=cls.long_running)
            total_n = sum(count.values())
            meta = sum(t.bytes - t.request_bytes - t.response_bytes
                       for t in by_stage.values()) / max(total_n, 1)
            for stage in Stage:
                if stage not in expected:
                    continue
                have = count.get(stage, 0) + (
                    count.get(Stage.PANIC, 0) if stage == Stage.RESPONSE_COMPLETE else 0
                )
                missing = requests - have
                if missing > 0:
                    rep.added_events += missing
                    rep.events_after[cls.new_level] += missing
                    rep.bytes_after += missing * meta
        if level != cls.new_level and requests:
            rep.changed_requests[(cls.label, level, cls.new_level)] += requests

    def _estimate(self, need: Counter[str], sizes: dict[str, list[int]]) -> float:
        """Bytes of bodies the candidate adds, from the mean size logged for the same class
        (else the same target under any verb, else the log-wide mean)."""
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


def _pause_cyclic_gc() -> bool:
    """Pause the cyclic garbage collector for a tally loop; True if it was running.

    The loop allocates a few small, acyclic objects per line (records, keys), which
    reference counting frees at once; the cyclic collector would still walk them every few
    hundred lines, for nothing. Memory stays flat either way.
    """
    running = gc.isenabled()
    gc.disable()
    return running


def _amount(size: int) -> str:
    return f"{size >> 20} MiB" if size % (1 << 20) == 0 else f"{size:,}-byte"


def _by_level(tallies: Tallies) -> Iterator[tuple[Level, dict[Stage, StageTally]]]:
    """A class's tallies grouped by old level, both in first-seen order."""
    grouped: dict[str, dict[Stage, StageTally]] = {}
    for (level, stage), tally in tallies.items():
        grouped.setdefault(level, {})[STAGE_OF[stage]] = tally
    for level, by_stage in grouped.items():
        yield LEVEL_OF[level], by_stage

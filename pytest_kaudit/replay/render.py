"""The replay report as text for people and as JSON for machines."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pytest_kaudit.policy.model import Level
from pytest_kaudit.replay.engine import ReplayReport

#: Rows of the level table, most logged first.
_LEVEL_ROWS = sorted(Level, key=lambda level: -level.rank)


def stamp(moment: datetime) -> str:
    """A time as kube-apiserver writes ``requestReceivedTimestamp`` (UTC, microseconds)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _size(n: float) -> str:
    if abs(n) >= 1e9:
        return f"{n / 1e9:.2f} GB"
    if abs(n) >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if abs(n) >= 1e3:
        return f"{n / 1e3:.1f} kB"
    return f"{n:.0f} B"


def _per_day(rep: ReplayReport) -> float | None:
    span = rep.span_seconds
    return 86400 / span if span and span >= 1 else None


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def render_text(rep: ReplayReport, *, top: int) -> list[str]:
    """The human report, one string per line."""
    out = [
        f"replayed {len(rep.files)} file{'s' if len(rep.files) != 1 else ''}: "
        f"{_plural(rep.events, 'event')}, {_plural(rep.requests, 'request')}, "
        f"{_size(rep.bytes_before)}"
    ]
    if rep.first_received is not None and rep.last_received is not None:
        out.append(f"time span: {stamp(rep.first_received)} .. {stamp(rep.last_received)}")
    out.append("")
    out.append(f"{'level':<18}{'events before':>15}{'events after':>15}")
    for level in _LEVEL_ROWS:
        after = rep.events_after.get(level, 0)
        if level is Level.NONE:
            after = sum(rep.stopped_events.values())
        out.append(f"{level.value:<18}{rep.events_before.get(level, 0):>15,}{after:>15,}")
    out.append(f"{'bytes':<18}{_size(rep.bytes_before):>15}{_size(rep.bytes_after):>15}")
    per_day = _per_day(rep)
    if per_day is not None:
        out.append(
            f"{'bytes per day':<18}{_size(rep.bytes_before * per_day):>15}"
            f"{_size(rep.bytes_after * per_day):>15}  (after: estimated)"
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
            out.append(f"  {n:>10,}  {cls}: {old.value} → {new.value}")
    else:
        out.append("no request changes level")
    stopped = sum(rep.stopped_events.values())
    if stopped:
        out.append("")
        out.append(
            f"events the new policy stops logging: {stopped:,} "
            f"({_size(sum(rep.stopped_bytes.values()))})"
        )
        for key, n in rep.stopped_events.most_common(top):
            cls, old = key
            where = rep.stopped_example.get(key, "")
            out.append(f"  {n:>10,}  {cls} (was {old.value}) e.g. {where}")
    if rep.omitted_stage_events:
        out.append("")
        out.append("events dropped by omitStages:")
        for stage, n in sorted(rep.omitted_stage_events.items(), key=lambda kv: kv[0].value):
            out.append(f"  {n:>10,}  {stage.value}")
    if rep.warning_count:
        out.append("")
        out.append(f"{_plural(rep.warning_count, 'input warning')} (see stderr)")
    return out


def report_json(rep: ReplayReport, *, top: int) -> dict[str, Any]:
    """The machine report."""
    per_day = _per_day(rep)
    span = (
        [stamp(rep.first_received), stamp(rep.last_received)]
        if rep.first_received is not None and rep.last_received is not None
        else None
    )
    return {
        "files": rep.files,
        "events": rep.events,
        "requests": rep.requests,
        "time_span": span,
        "events_before": {level.value: n for level, n in rep.events_before.items()},
        "events_after": {
            **{level.value: n for level, n in rep.events_after.items()},
            "None": sum(rep.stopped_events.values()),
        },
        "bytes_before": rep.bytes_before,
        "bytes_after_estimated": round(rep.bytes_after),
        "bytes_per_day_before": round(rep.bytes_before * per_day) if per_day else None,
        "bytes_per_day_after_estimated": round(rep.bytes_after * per_day) if per_day else None,
        "added_events_estimated": rep.added_events,
        "unestimated_bodies": rep.unestimated_bodies,
        "changed_classes": [
            {"class": k, "old_level": o.value, "new_level": n.value, "requests": c}
            for (k, o, n), c in rep.changed_requests.most_common(top)
        ],
        "stopped": [
            {
                "class": k,
                "old_level": o.value,
                "events": c,
                "bytes": rep.stopped_bytes[(k, o)],
                "example": rep.stopped_example.get((k, o)),
            }
            for (k, o), c in rep.stopped_events.most_common(top)
        ],
        "omitted_stage_events": {s.value: n for s, n in rep.omitted_stage_events.items()},
        "warnings": rep.warning_count,
    }

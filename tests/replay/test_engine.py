"""The replay engine through its library entry point: byte accounting, estimates, parallel parts."""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Callable
from pathlib import Path

from pytest_kaudit.cli.base import load_policy
from pytest_kaudit.policy import Level, Policy, Stage
from pytest_kaudit.replay import InputWarning, expand_rotated, replay_paths

ROOT = Path(__file__).parents[2]
CLI_DATA = ROOT / "tests" / "cli" / "data"
BRIEF = ROOT / "fixtures" / "policies" / "brief.yaml"
RR = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"
MD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def _policy(tmp_path: Path, text: str) -> Policy:
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return load_policy(str(p))


def test_rotated_siblings_come_first_oldest_first() -> None:
    assert expand_rotated([str(CLI_DATA / "audit.log")]) == [
        str(CLI_DATA / "audit-2026-11-26T19-30-00.000.log.gz"),
        str(CLI_DATA / "audit.log"),
    ]
    assert expand_rotated(["-", str(CLI_DATA / "audit-2026-11-26T19-30-00.000.log.gz")]) == [
        "-",
        str(CLI_DATA / "audit-2026-11-26T19-30-00.000.log.gz"),
    ]


def test_downgrade_to_metadata_drops_exactly_the_body_bytes() -> None:
    report = replay_paths(load_policy(str(CLI_DATA / "policy-metadata.yaml")),
                          [str(CLI_DATA / "audit.log")])
    expected = 0
    for line in (CLI_DATA / "audit.log").read_bytes().splitlines(keepends=True):
        ev = json.loads(line)
        size = len(line)
        for key in ("requestObject", "responseObject"):
            if key in ev:
                size -= len(f',"{key}":') + len(json.dumps(ev[key], separators=(",", ":")))
        expected += size
    assert report.bytes_after == expected
    assert report.events_after == {Level.METADATA: 14}
    assert report.requests == 7
    assert report.changed_requests == {
        ("create secrets", Level.REQUEST_RESPONSE, Level.METADATA): 1,
        ("create configmaps", Level.REQUEST, Level.METADATA): 1,
        ("update deployments.apps", Level.REQUEST, Level.METADATA): 1,
    }
    assert not report.stopped_events and report.added_events == 0


def test_upgrade_estimates_bodies_from_the_log(tmp_path: Path) -> None:
    report = replay_paths(_policy(tmp_path, RR), [str(CLI_DATA / "audit.log")])
    # get configmaps / list pods / watch ... have no body samples in this log
    assert report.unestimated_bodies > 0
    assert report.bytes_after > report.bytes_before
    assert report.changed_requests[("get configmaps", Level.METADATA,
                                    Level.REQUEST_RESPONSE)] == 1


def test_a_policy_that_stops_omitting_a_stage_adds_events(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = [ln for ln in (CLI_DATA / "audit.log").read_text().splitlines()
             if '"RequestReceived"' not in ln]
    log.write_text("\n".join(lines) + "\n")
    report = replay_paths(_policy(tmp_path, MD), [str(log)])
    assert report.requests == 7
    assert report.added_events == 6  # every authenticated request regains RequestReceived


def test_omit_stages_are_counted_per_stage() -> None:
    report = replay_paths(load_policy(str(CLI_DATA / "policy-new.yaml")),
                          [str(CLI_DATA / "audit.log")])
    assert report.omitted_stage_events == {Stage.REQUEST_RECEIVED: 5}


def _big_log(tmp_path: Path, bad_at: int) -> tuple[Path, int]:
    lines = (CLI_DATA / "audit.log").read_bytes().splitlines(keepends=True)
    lines += gzip.decompress(
        (CLI_DATA / "audit-2026-11-26T19-30-00.000.log.gz").read_bytes()
    ).splitlines(keepends=True)
    big = tmp_path / "audit.log"
    with big.open("wb") as fh:
        for i in range(60):
            fh.writelines(lines)
            if i == bad_at:
                fh.write(b"not json\n")  # one bad line deep inside a later part
    return big, len(lines)


def test_a_large_file_split_across_processes_gives_the_serial_report(tmp_path: Path) -> None:
    """Parallel parts must add up to exactly what one reader sees, warnings' line numbers too."""
    big, per_copy = _big_log(tmp_path, bad_at=41)
    policy = Policy.load(BRIEF)
    serial = replay_paths(policy, [str(big)], jobs=1)
    parallel = replay_paths(policy, [str(big)], jobs=3, parallel_min_bytes=1)
    assert dataclasses.asdict(parallel) == dataclasses.asdict(serial)
    assert serial.warnings == [InputWarning(str(big), 42 * per_copy + 1, "not JSON (skipped)")]
    # and examples ("e.g. file:line") point at the first such event of the whole file
    assert parallel.stopped_example == serial.stopped_example


def test_parallel_parts_stream_their_warnings_in_file_order(tmp_path: Path) -> None:
    big, per_copy = _big_log(tmp_path, bad_at=5)
    with big.open("ab") as fh:
        fh.write(b'{"level":5}\n')
    seen: list[str] = []
    sink: Callable[[str], None] = seen.append
    report = replay_paths(Policy.load(BRIEF), [str(big)], jobs=2, parallel_min_bytes=1,
                          warn=sink)
    assert seen == [
        f"{big}:{6 * per_copy + 1}: not JSON (skipped)",
        f"{big}:{60 * per_copy + 2}: not an audit event (no stage/auditID) (skipped)",
    ]
    assert report.warning_count == 2


def test_memory_is_bounded_by_classes_not_lines(tmp_path: Path) -> None:
    """Distinct object names the policy does not list share one decision-cache entry."""
    from pytest_kaudit.replay import Replayer

    template = (CLI_DATA / "audit.log").read_text().splitlines()[0]
    log = tmp_path / "names.log"
    with log.open("w") as fh:
        for i in range(5000):
            fh.write(template.replace('"namespace":"prod"', f'"namespace":"ns{i}"') + "\n")
    replayer = Replayer(load_policy(str(CLI_DATA / "policy-new.yaml")))
    with log.open("rb") as stream:
        replayer.feed(str(log), stream)
    assert replayer.finish().events == 5000
    assert len(replayer._decisions) == 1  # noqa: SLF001 - the bound is the point of the test


def test_two_cpus_split_only_with_one_free_more_with_one_each(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    from pytest_kaudit.replay import reader

    for cpus, load, jobs in ((1, 0.0, 1), (2, 0.3, 2), (2, 1.5, 1), (3, 5.0, 3),
                             (8, 0.0, reader.MAX_JOBS)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cpus: set(range(n)))
        monkeypatch.setattr(os, "getloadavg", lambda value=load: (value, value, value))
        assert reader.default_jobs() == jobs

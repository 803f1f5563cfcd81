"""``kaudit replay``: levels before/after, bytes, changed classes, bad input, fast-path parity."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_kaudit.cli.base import load_policy
from pytest_kaudit.cli.replay import expand_rotated, parse_fast, parse_line, replay_paths


def test_golden_text_with_rotated_gzip_sibling(kaudit, data):
    r = kaudit("replay", data / "policy-new.yaml", data / "audit.log", "--with-rotated")
    assert r.code == 1
    assert r.err == ""
    assert (
        r.out
        == f"""\
replayed 2 files: 16 events, 8 requests, 9.7 kB
time span: 2026-11-26T19:00:00.000001Z .. 2026-11-26T21:00:00.000001Z

level               events before   events after
RequestResponse                 2              1
Request                         4              1
Metadata                       10              5
None                            0              3
bytes                      9.7 kB         4.8 kB
bytes per day            116.8 kB        57.9 kB  (after: estimated)

top request classes that change level (of 2):
           1  create configmaps: Request → Metadata
           1  watch endpoints: Metadata → None

events the new policy stops logging: 3 (1.8 kB)
           3  watch endpoints (was Metadata) e.g. {data / "audit.log"}:7

events dropped by omitStages:
           6  RequestReceived
"""
    )


def test_rotated_siblings_come_first_oldest_first(data):
    assert expand_rotated([str(data / "audit.log")]) == [
        str(data / "audit-2026-11-26T19-30-00.000.log.gz"),
        str(data / "audit.log"),
    ]


def test_downgrade_to_metadata_drops_exactly_the_body_bytes(data):
    policy = load_policy(str(data / "policy-metadata.yaml"))
    report = replay_paths(policy, [str(data / "audit.log")])
    expected = 0
    for line in (data / "audit.log").read_bytes().splitlines(keepends=True):
        ev = json.loads(line)
        size = len(line)
        for key in ("requestObject", "responseObject"):
            if key in ev:
                size -= len(f',"{key}":') + len(json.dumps(ev[key], separators=(",", ":")))
        expected += size
    assert report.bytes_after == expected
    assert report.events_after == {"Metadata": 14}
    assert report.requests == 7
    assert report.changed_requests == {
        ("create secrets", "RequestResponse", "Metadata"): 1,
        ("create configmaps", "Request", "Metadata"): 1,
        ("update deployments.apps", "Request", "Metadata"): 1,
    }
    assert not report.stopped_events and report.added_events == 0


def test_upgrade_estimates_bodies_from_the_log(write, data):
    p = write(
        "rr.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"
    )
    report = replay_paths(load_policy(str(p)), [str(data / "audit.log")])
    # get configmaps / list pods / watch ... have no body samples in this log
    assert report.unestimated_bodies > 0
    assert report.bytes_after > report.bytes_before
    assert report.changed_requests[("get configmaps", "Metadata", "RequestResponse")] == 1


def test_new_policy_that_stops_omitting_a_stage_adds_events(write, tmp_path, data):
    log = tmp_path / "audit.log"
    lines = [
        ln for ln in (data / "audit.log").read_text().splitlines() if '"RequestReceived"' not in ln
    ]
    log.write_text("\n".join(lines) + "\n")
    p = write("md.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    report = replay_paths(load_policy(str(p)), [str(log)])
    assert report.requests == 7
    assert report.added_events == 6  # every authenticated request regains RequestReceived


def test_json_output(kaudit, data):
    r = kaudit(
        "replay", data / "policy-new.yaml", data / "audit.log", "--format", "json", "--top", "1"
    )
    doc = json.loads(r.out)
    assert r.code == 1
    assert doc["events"] == 14 and doc["requests"] == 7
    assert doc["events_before"] == {"RequestResponse": 2, "Request": 4, "Metadata": 8}
    assert len(doc["changed_classes"]) == 1
    assert doc["stopped"][0]["example"] == f"{data / 'audit.log'}:7"


def test_unchanged_replay_exits_0(kaudit, write, tmp_path, data):
    log = tmp_path / "a.log"
    log.write_text(
        "\n".join(
            ln for ln in (data / "audit.log").read_text().splitlines() if '"level":"Metadata"' in ln
        )
        + "\n"
    )
    p = write("md.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    r = kaudit("replay", p, log)
    assert r.code == 0, r.out
    assert "no request changes level" in r.out


def test_bad_lines_are_warnings_with_file_and_line(kaudit, data):
    r = kaudit("replay", data / "policy-new.yaml", data / "bad.log")
    assert r.code == 1
    bad = data / "bad.log"
    assert r.err == (
        f"kaudit: warning: {bad}:2: not JSON (skipped)\n"
        f"kaudit: warning: {bad}:3: not an audit event (no stage/auditID) (skipped)\n"
        f"kaudit: warning: {bad}:5: truncated line (no newline at end of file; skipped)\n"
    )
    assert "3 input warnings (see stderr)" in r.out
    assert "replayed 1 file: 2 events, 1 request, " in r.out


def test_empty_log_is_an_input_error(kaudit, data):
    r = kaudit("replay", data / "policy-new.yaml", data / "empty.log")
    assert r.code == 2
    assert r.out == ""
    empty = data / "empty.log"
    assert r.err == (
        f"kaudit: warning: {empty}: no audit events\n"
        f"kaudit: error: no audit events found in {empty}\n"
    )


def test_missing_log_and_directory_are_input_errors(kaudit, data, tmp_path):
    r = kaudit("replay", data / "policy-new.yaml", data / "audit.log", tmp_path / "gone.log")
    assert (r.code, r.out) == (2, "")
    assert r.err == f"kaudit: error: audit log '{tmp_path / 'gone.log'}': no such file\n"
    r = kaudit("replay", data / "policy-new.yaml", tmp_path)
    assert r.err == f"kaudit: error: audit log '{tmp_path}': is a directory\n"


def test_corrupt_gzip_is_a_warning_not_a_traceback(kaudit, data, tmp_path):
    gz = tmp_path / "audit-2026-01-01T00-00-00.000.log.gz"
    gz.write_bytes(gzip.compress((data / "audit.log").read_bytes())[:200])
    r = kaudit("replay", data / "policy-new.yaml", gz, data / "audit.log")
    assert r.code == 1
    assert f"kaudit: warning: {gz}:" in r.err and "cannot read further" in r.err
    assert "Traceback" not in r.err


def test_top_must_be_positive(kaudit, data):
    r = kaudit("replay", data / "policy-new.yaml", data / "audit.log", "--top", "0")
    assert (r.code, r.err) == (2, "kaudit: error: --top must be at least 1\n")


def test_stdin(data):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kaudit", "replay", str(data / "policy-new.yaml"), "-"],
        input=(data / "audit.log").read_bytes(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.decode().startswith("replayed 1 file: 14 events, 7 requests")


def _lines(data: Path) -> list[bytes]:
    out = (data / "audit.log").read_bytes().splitlines(keepends=True)
    out += gzip.decompress((data / "audit-2026-11-26T19-30-00.000.log.gz").read_bytes()).splitlines(
        keepends=True
    )
    return out


def test_fast_path_agrees_with_full_decode(data):
    lines = _lines(data)
    assert all(parse_fast(line) is not None for line in lines)
    for line in lines:
        fast, slow = parse_fast(line), parse_line(line)
        assert not isinstance(slow, str)
        level, stage, user, verb, res, ns, name, grp, sub, path, rq, rs, stamp = fast
        u = json.loads(b"{" + user + b"}")
        who = (u.get("username"), tuple(u.get("groups", ()))) if u else (None, ())
        assert (level, stage, who, verb) == (slow[0], slow[1], slow[2], slow[3])
        norm = [
            x or b"" if x is not None or res is not None else None for x in (ns, name, grp, sub)
        ]
        assert (res, *norm, path, rq, rs, stamp) == (
            slow[4],
            *slow[5:9],
            slow[9],
            slow[10],
            slow[11],
            slow[12],
        )


@pytest.mark.parametrize(
    "line",
    [
        # user nested two levels deep (the fast path allows one), escaped quote in objectRef
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete",'
        b'"requestURI":"/api/v1/pods","verb":"list","user":{"username":"a","extra":{"k":{"n":["v"]}}},'
        b'"objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},'
        b'"requestReceivedTimestamp":"2026-01-01T00:00:00.000000Z","stageTimestamp":"2026-01-01T00:00:00.000000Z"}\n',
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete",'
        b'"requestURI":"/api/v1/namespaces/a/pods/p%22","verb":"get","user":{"username":"a"},'
        b'"objectRef":{"resource":"pods","namespace":"a","name":"p\\"q","apiVersion":"v1"},'
        b'"requestReceivedTimestamp":"2026-01-01T00:00:00.000000Z","stageTimestamp":"2026-01-01T00:00:00.000000Z"}\n',
    ],
)
def test_unusual_lines_fall_back_to_a_full_decode(line):
    assert parse_fast(line) is None
    assert not isinstance(parse_line(line), str)


def test_user_extra_takes_the_fast_path_and_agrees_with_full_decode():
    # 1.34+ apiservers put user.extra (a nested object) on nearly every event
    line = (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x",'
        b'"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/ns/pods?limit=5",'
        b'"verb":"list","user":{"username":"alice","uid":"u1","groups":["dev","system:authenticated"],'
        b'"extra":{"authentication.kubernetes.io/credential-id":["X509SHA256=ab"],'
        b'"authentication.kubernetes.io/node-name":["n1"]}},'
        b'"impersonatedUser":{"username":"bob","extra":{"scope":["a"]}},'
        b'"sourceIPs":["10.0.0.1"],"userAgent":"kubectl",'
        b'"objectRef":{"resource":"pods","namespace":"ns","apiVersion":"v1"},'
        b'"responseStatus":{"metadata":{},"code":200},'
        b'"requestReceivedTimestamp":"2026-01-01T00:00:00.000000Z",'
        b'"stageTimestamp":"2026-01-01T00:00:00.000000Z"}\n'
    )
    fast, slow = parse_fast(line), parse_line(line)
    assert fast is not None, "user.extra must not force the JSON fallback"
    assert not isinstance(slow, str)
    level, stage, user, verb, res, ns, name, grp, sub, path, rq, rs, stamp = fast
    u = json.loads(b"{" + user + b"}")
    assert (u["username"], tuple(u["groups"])) == ("alice", ("dev", "system:authenticated"))
    assert u["extra"]["authentication.kubernetes.io/node-name"] == ["n1"]
    assert (level, stage, (u["username"], tuple(u["groups"])), verb) == tuple(slow[:4])
    assert (res, ns, path, rq, rs, stamp) == (slow[4], slow[5], slow[9], slow[10], slow[11], slow[12])


def test_a_large_file_split_across_processes_gives_the_serial_report(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Parallel parts must add up to exactly what one reader sees, warnings' line numbers too."""
    import dataclasses

    from pytest_kaudit.cli import replay as replay_module
    from pytest_kaudit.policy import Policy

    data = Path(__file__).parent / "data"
    sample = next(p for p in sorted(data.glob("*.log")) if p.stat().st_size > 1000)
    lines = sample.read_bytes().splitlines(keepends=True)
    big = tmp_path / "audit.log"
    with big.open("wb") as fh:
        for i in range(60):
            fh.writelines(lines)
            if i == 41:
                fh.write(b"not json\n")  # one bad line deep inside a later part
    policy = Policy.load(Path(__file__).parents[2] / "fixtures" / "policies" / "brief.yaml")
    monkeypatch.setattr(replay_module, "PARALLEL_MIN_BYTES", 1)
    serial = replay_module.replay_paths(policy, [str(big)], jobs=1)
    parallel = replay_module.replay_paths(policy, [str(big)], jobs=3)
    assert dataclasses.asdict(parallel) == dataclasses.asdict(serial)
    assert any(f":{42 * len(lines) + 1}:" in w for w in serial.warnings)

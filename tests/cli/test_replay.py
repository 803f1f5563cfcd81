"""``kaudit replay`` as a user runs it: reports, exit codes, and bad input of every kind.

Every malformed, mistyped or unknown-valued line is a ``file:line`` warning and is not
tallied; unreadable inputs are errors that name the input; nothing ends in a traceback.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys


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


def test_jobs_must_be_positive(kaudit, data):
    r = kaudit("replay", data / "policy-new.yaml", data / "audit.log", "--jobs", "0")
    assert (r.code, r.out, r.err) == (2, "", "kaudit: error: --jobs must be at least 1\n")
    r = kaudit("replay", data / "policy-new.yaml", data / "audit.log", "--jobs", "3")
    assert r.code == 1 and r.out.startswith("replayed 1 file: 14 events, 7 requests")


def test_stdin(data):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kaudit", "replay", str(data / "policy-new.yaml"), "-"],
        input=(data / "audit.log").read_bytes(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.decode().startswith("replayed 1 file: 14 events, 7 requests")




def _kaudit(*argv: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``kaudit`` as a user does, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_kaudit", *map(str, argv)],
        capture_output=True, text=True, check=False, timeout=120, **kwargs,  # type: ignore[call-overload]
    )


def _event(**fields: str) -> str:
    """One event line; ``fields`` replace members by their raw JSON text."""
    members = {
        "kind": '"Event"',
        "apiVersion": '"audit.k8s.io/v1"',
        "level": '"Metadata"',
        "auditID": '"b1"',
        "stage": '"ResponseComplete"',
        "requestURI": '"/api/v1/namespaces/prod/pods"',
        "verb": '"list"',
        "user": '{"username":"alice","groups":["system:authenticated"]}',
        "objectRef": '{"resource":"pods","namespace":"prod","apiVersion":"v1"}',
        "requestReceivedTimestamp": '"2026-11-26T20:30:00.000001Z"',
    }
    members.update(fields)
    return "{" + ",".join(f'"{key}":{value}' for key, value in members.items()) + "}"


BAD_EVENTS = [
    (_event(user='{"username":"alice","groups"["system:authenticated"]}'), "not JSON"),
    (_event(level="5"), "level: expected a string, got a number"),
    (_event(level='"metadata"'),
     "level: 'metadata' is not an audit level (expected None, Metadata, Request, "
     "RequestResponse; did you mean 'Metadata'?)"),
    (_event(stage='"Bogus"'),
     "stage: 'Bogus' is not an audit stage (expected RequestReceived, ResponseStarted, "
     "ResponseComplete, Panic)"),
    (_event(requestReceivedTimestamp='"last tuesday"'),
     "requestReceivedTimestamp: not an RFC 3339 time with a zone "
     "(such as 2024-01-02T03:04:05.000000Z)"),
    (_event(requestReceivedTimestamp='"2026-11-26T20:30:00"'),
     "requestReceivedTimestamp: not an RFC 3339 time with a zone "
     "(such as 2024-01-02T03:04:05.000000Z)"),
    (_event(user='{"username":"alice","groups":[7]}'), "user.groups[0]: expected `str`, got `int`"),
]


def test_malformed_and_mistyped_events_are_warnings_and_not_tallied(data, tmp_path):
    good = (data / "audit.log").read_text().splitlines()
    log = tmp_path / "audit.log"
    log.write_text("\n".join([good[0], *(line for line, _ in BAD_EVENTS), *good[1:]]) + "\n")
    r = _kaudit("replay", data / "policy-new.yaml", log)
    clean = _kaudit("replay", data / "policy-new.yaml", data / "audit.log")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr == "".join(
        f"kaudit: warning: {log}:{i}: {reason} (skipped)\n"
        for i, (_, reason) in enumerate(BAD_EVENTS, start=2)
    )
    # the report is the clean log's: nothing from the bad lines was counted anywhere
    body = r.stdout.replace(f"\n\n{len(BAD_EVENTS)} input warnings (see stderr)", "")
    shifted = len(BAD_EVENTS)  # the example line moves down by the inserted lines
    assert body == clean.stdout.replace(f"{data / 'audit.log'}:7", f"{log}:{7 + shifted}")


def test_many_bad_lines_show_the_first_twenty_and_a_count(data, tmp_path):
    log = tmp_path / "audit.log"
    log.write_text((data / "audit.log").read_text() + "garbage\n" * 50)
    r = _kaudit("replay", data / "policy-new.yaml", log)
    lines = r.stderr.splitlines()
    assert lines[:20] == [f"kaudit: warning: {log}:{15 + i}: not JSON (skipped)" for i in range(20)]
    assert lines[20:] == ["kaudit: warning: ... and 30 more input warnings"]
    assert "50 input warnings (see stderr)" in r.stdout


def test_a_corrupt_gzip_is_named_once_as_corrupt(data, tmp_path):
    text = (data / "audit.log").read_bytes() * 400
    packed = bytearray(gzip.compress(text))
    for i in range(len(packed) // 2, len(packed) // 2 + 24):  # damage the middle of the stream
        packed[i] ^= 0x5A
    gz = tmp_path / "audit-2026-01-01T00-00-00.000.log.gz"
    gz.write_bytes(bytes(packed))
    r = _kaudit("replay", data / "policy-new.yaml", gz, data / "audit.log")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    [warning] = r.stderr.splitlines()
    assert warning.startswith(f"kaudit: warning: {gz}:")
    assert "corrupt gzip data, cannot read further (" in warning
    assert "the rest of this file is skipped" in warning
    assert "not JSON" not in r.stderr


def test_stdin_closed_is_a_clear_error(data):
    r = _kaudit("replay", data / "policy-new.yaml", "-", stdin=subprocess.DEVNULL,
                preexec_fn=lambda: __import__("os").close(0))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        "kaudit: error: audit log '-': standard input is closed; "
        "pipe a log into it or name a file\n"
    )


def test_a_huge_line_is_skipped_with_bounded_memory(data, tmp_path):
    """A 512 MiB line (a sparse file: no disk) costs memory bounded by the line limit."""
    log = tmp_path / "audit.log"
    good = (data / "audit.log").read_bytes()
    with log.open("wb") as fh:
        fh.write(good)
        fh.seek(len(good) + (512 << 20))  # a hole of zero bytes: one line with no newline
        fh.write(b"\n" + good)
    probe = (
        "import resource, sys\n"
        "from pytest_kaudit.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe, "replay", str(data / "policy-new.yaml"), str(log)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    *warnings, peak_kb = r.stderr.splitlines()
    assert warnings == [
        f"kaudit: warning: {log}:15: line of {(512 << 20) + 1:,} bytes is longer than the "
        "128 MiB limit (skipped)"
    ]
    assert "replayed 1 file: 28 events, 14 requests" in r.stdout
    # at most two limit-sized buffers; reading the line whole would take over 512 MiB
    assert int(peak_kb) < 400 * 1024

"""``kaudit replay`` reports pinned byte for byte, text and JSON, on the committed test logs.

The expected outputs in ``golden/`` were written by the replay command as it stood before it
became a library; any change to them must be a deliberate change of the report. ``corpus.log.gz``
holds 1,500 lines of ``benchmarks/bench_replay.py``'s generated traffic plus hand-written
unusual lines (escaped names, nested ``user.extra``, another key order, a v1beta1 event, a 401,
exec and pprof requests, a null body, a blank line).

Regenerate (only for an intended report change): ``python tests/replay/test_golden.py``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_kaudit.cli import main

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
CLI_DATA = HERE.parent / "cli" / "data"
REPLAY_DATA = HERE / "data"
POLICIES = HERE.parents[1] / "fixtures" / "policies"
RR_POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"


@dataclass(frozen=True)
class Case:
    """One replay run: arguments (``{cli}``, ``{replay}``, ``{policies}``, ``{tmp}`` expand)."""

    name: str
    argv: tuple[str, ...]
    stdin: str | None = None  # a file (same placeholders) fed on stdin, in a subprocess


CASES = [
    Case("new-rotated-text", ("{cli}/policy-new.yaml", "{cli}/audit.log", "--with-rotated")),
    Case(
        "new-rotated-json",
        ("{cli}/policy-new.yaml", "{cli}/audit.log", "--with-rotated", "--format", "json"),
    ),
    Case("metadata-text", ("{cli}/policy-metadata.yaml", "{cli}/audit.log")),
    Case("metadata-json", ("{cli}/policy-metadata.yaml", "{cli}/audit.log", "--format", "json")),
    Case("old-text", ("{cli}/policy-old.yaml", "{cli}/audit.log", "{cli}/audit.log")),
    Case("rr-text", ("{tmp}/rr.yaml", "{cli}/audit.log", "--with-rotated")),
    Case("rr-json", ("{tmp}/rr.yaml", "{cli}/audit.log", "--format", "json")),
    Case("no-received-text", ("{tmp}/rr.yaml", "{tmp}/no-received.log")),
    Case("bad-text", ("{cli}/policy-new.yaml", "{cli}/bad.log")),
    Case("bad-json", ("{cli}/policy-new.yaml", "{cli}/bad.log", "--format", "json")),
    Case("bench-corpus-text", ("{replay}/policy-bench.yaml", "{replay}/corpus.log.gz", "--top", "25")),
    Case(
        "bench-corpus-json",
        ("{replay}/policy-bench.yaml", "{replay}/corpus.log.gz", "--format", "json", "--top", "60"),
    ),
    Case("brief-corpus-json", ("{policies}/brief.yaml", "{tmp}/corpus.log", "--format", "json")),
    Case("gke-corpus-text", ("{policies}/gke-style.yaml", "{tmp}/corpus.log", "--top", "40")),
    Case(
        "cis-corpus-json",
        ("{policies}/cis-baseline.yaml", "{tmp}/corpus.log", "--format", "json", "--top", "40"),
    ),
    Case("rr-corpus-text", ("{tmp}/rr.yaml", "{replay}/corpus.log.gz", "{cli}/audit.log")),
    Case("bench-corpus-stdin", ("{replay}/policy-bench.yaml", "-"), stdin="{tmp}/corpus.log"),
]


def prepare(tmp: Path) -> dict[str, str]:
    """Write the derived inputs into ``tmp``; returns the placeholder table."""
    (tmp / "rr.yaml").write_text(RR_POLICY)
    (tmp / "corpus.log").write_bytes(gzip.decompress((REPLAY_DATA / "corpus.log.gz").read_bytes()))
    lines = (CLI_DATA / "audit.log").read_text().splitlines()
    (tmp / "no-received.log").write_text(
        "\n".join(ln for ln in lines if '"RequestReceived"' not in ln) + "\n"
    )
    return {"cli": str(CLI_DATA), "replay": str(REPLAY_DATA), "policies": str(POLICIES),
            "tmp": str(tmp)}


def run_case(case: Case, places: dict[str, str]) -> str:
    """Run one case; returns exit code, stdout and stderr as one text, paths abstracted."""
    argv = ["replay", *(a.format(**places) for a in case.argv)]
    if case.stdin is not None:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest_kaudit", *argv],
            stdin=open(case.stdin.format(**places), "rb"),  # noqa: SIM115 - closed by run()
            capture_output=True,
            text=True,
            check=False,
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        out_buf, err_buf = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out_buf), contextlib.redirect_stderr(err_buf):
            code = main(argv)
        out, err = out_buf.getvalue(), err_buf.getvalue()
    text = f"exit: {code}\n--- stdout\n{out}--- stderr\n{err}"
    for key in ("tmp", "cli", "replay", "policies"):  # longest-first is not needed: disjoint
        text = text.replace(places[key], "{" + key + "}")
    return text


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    """The placeholder table with the derived inputs written."""
    return prepare(tmp_path)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_report_is_unchanged(case: Case, places: dict[str, str]) -> None:
    expected = (GOLDEN / f"{case.name}.txt").read_text()
    assert run_case(case, places) == expected


def _regenerate(write: Callable[[Path, str], None]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        places = prepare(Path(tmp))
        for case in CASES:
            write(GOLDEN / f"{case.name}.txt", run_case(case, places))


if __name__ == "__main__":
    GOLDEN.mkdir(exist_ok=True)
    _regenerate(lambda p, text: p.write_text(text))

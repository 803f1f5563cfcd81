"""Driving the engine over the inputs: stream by stream, or a large file split across processes.

A plain file of at least :data:`PARALLEL_MIN_BYTES` is cut into line-aligned byte ranges,
one per worker. Workers are forked, so they inherit the loaded policy (nothing is pickled on
the way in); each tallies its range with line numbers counted from the range's start and
sends back only its per-class totals. The parent adds them up in file order, shifting line
numbers by the lines of the ranges before, so the report is the one a single reader makes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from pytest_kaudit.replay.engine import PartResult, Replayer, ReplayReport
from pytest_kaudit.replay.inputs import (
    MAX_LINE_BYTES,
    is_plain_file,
    line_aligned_parts,
    open_input,
    open_part,
)

if TYPE_CHECKING:
    from pytest_kaudit.policy import Policy

#: Plain files at least this large are split across worker processes.
PARALLEL_MIN_BYTES = 64 << 20
#: More workers than this gain nothing: the disk and the merge become the limit.
MAX_JOBS = 4


def default_jobs() -> int:
    """One process per usable CPU (at most :data:`MAX_JOBS`); on two CPUs only when one is free.

    Workers cost about 15% more CPU in total than one reader. On an idle 2-core machine the
    split reads 300 MB in 0.56x the time of one process (``benchmarks/bench_replay.py``);
    when other work keeps the second core busy it was slower, so there one process reads.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if cpus > 2:
        return min(cpus, MAX_JOBS)
    if cpus == 2 and os.getloadavg()[0] < 1.0:
        return 2
    return 1


def replay_paths(
    policy: Policy,
    paths: Sequence[str],
    *,
    warn: Callable[[str], None] | None = None,
    jobs: int | None = None,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ReplayReport:
    """Replay logs (``-`` = stdin) under ``policy``; the library entry point.

    ``warn`` receives each of the first input warnings as it is found. Large plain files are
    read by ``jobs`` processes (default: :func:`default_jobs`); the report is the same as a
    serial read.

    Raises:
        InputError: a log cannot be opened (stdin closed, permission denied).
    """
    replayer = Replayer(policy, warn=warn, max_line_bytes=max_line_bytes)
    jobs = default_jobs() if jobs is None else jobs
    for path in paths:
        if jobs > 1 and _splittable(path, parallel_min_bytes):
            _feed_parallel(replayer, path, jobs)
            continue
        log = open_input(path)
        try:
            replayer.feed(log.label, log.stream, compressed=log.compressed)
        finally:
            log.close()
    return replayer.finish()


def _splittable(path: str, min_bytes: int) -> bool:
    if "fork" not in multiprocessing.get_all_start_methods() or not is_plain_file(path):
        return False
    return os.path.getsize(path) >= min_bytes


def _feed_parallel(replayer: Replayer, path: str, jobs: int) -> None:
    parts = line_aligned_parts(path, jobs)
    replayer.report.files.append(path)
    results = _run_workers(replayer.policy, path, parts, replayer.max_line_bytes)
    before = replayer.event_count()
    offset = 0
    for part in results:
        replayer.merge(part, line_offset=offset)
        offset += part.lines
    if replayer.event_count() == before:
        replayer.warn(path, None, "no audit events")


def _run_workers(
    policy: Policy, path: str, parts: list[tuple[int, int]], max_line_bytes: int
) -> list[PartResult]:
    """Fork one worker per part and collect their results in part order."""
    context = multiprocessing.get_context("fork")
    workers = []
    try:
        for start, end in parts:
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_replay_part,
                args=(policy, path, start, end, max_line_bytes, send),
                daemon=True,
            )
            process.start()
            send.close()
            workers.append((process, receive))
        results = []
        for process, receive in workers:
            try:
                outcome = receive.recv()
            except EOFError:
                raise RuntimeError(
                    f"a replay worker for {path} exited with status {process.exitcode}"
                ) from None
            if isinstance(outcome, str):
                raise RuntimeError(f"a replay worker for {path} failed: {outcome}")
            results.append(outcome)
        return results
    finally:
        for process, receive in workers:
            receive.close()
            if process.is_alive():
                process.terminate()
            process.join()


def _replay_part(
    policy: Policy, path: str, start: int, end: int, max_line_bytes: int, send: Connection
) -> None:
    """Worker: tally one byte range and send the totals (or the error text) back."""
    try:
        fd, stream = open_part(path, start, end)
        try:
            replayer = Replayer(policy, max_line_bytes=max_line_bytes)
            lines = replayer.consume(path, stream)
        finally:
            os.close(fd)
        send.send(replayer.part_result(lines))
    except Exception as exc:  # reported by the parent, which owns the user's terminal
        send.send(f"{type(exc).__name__}: {exc}")
    finally:
        send.close()

"""Where replay's lines come from: files, their rotated siblings, gzip and stdin, bounded.

A log may be plain or gzip (told by its magic bytes, not its name), or ``-`` for stdin.
Lines are read with a length limit, so a hostile or broken input (gigabytes without a
newline) costs memory in proportion to :data:`MAX_LINE_BYTES`, not to its length, and
becomes one warning.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from pytest_kaudit.events.log import rotated_siblings

#: The longest line replay decodes (128 MiB). Longer lines are skipped with a warning; an
#: event that large is a RequestResponse list of a whole big cluster, or not an event at all.
MAX_LINE_BYTES = 128 << 20
_BUFFER = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
STDIN = "-"


class InputError(Exception):
    """An input that cannot be read at all (missing, a directory, stdin closed)."""


def expand_rotated(paths: Sequence[str]) -> list[str]:
    """Add each file's rotated siblings (``audit-<ts>.log[.gz]``), oldest first, before it."""
    out: list[str] = []
    for raw in paths:
        if raw != STDIN and not raw.endswith(".gz"):  # a rotated file itself has none
            out += [str(s) for s in rotated_siblings(Path(raw))]
        out.append(raw)
    return list(dict.fromkeys(out))


def check_inputs(paths: Sequence[str]) -> None:
    """Fail early on a missing or unreadable log (or a closed stdin), before any output."""
    for path in paths:
        if path == STDIN:
            _stdin()
            continue
        p = Path(path)
        if not p.exists():
            raise InputError(f"audit log {path!r}: no such file")
        if p.is_dir():
            raise InputError(f"audit log {path!r}: is a directory")
        try:
            with open(p, "rb"):
                pass
        except OSError as exc:
            raise InputError(f"audit log {path!r}: {exc.strerror or exc}") from None


def _stdin() -> int:
    """The descriptor of standard input, checked to be open."""
    try:
        if sys.stdin is None or sys.stdin.closed:
            raise ValueError
        fd = sys.stdin.fileno()
        os.fstat(fd)
        return fd
    except (ValueError, OSError, AttributeError):
        raise InputError(
            "audit log '-': standard input is closed; pipe a log into it or name a file"
        ) from None


class LineStream(Protocol):
    """What the engine reads from: a binary stream with a length-limited ``readline``."""

    def readline(self, size: int | None = -1, /) -> bytes:
        """One line, at most ``size`` bytes."""
        ...

    def close(self) -> None:
        """Release the stream."""
        ...


@dataclass
class LogInput:
    """One opened log: its label for messages, a binary stream, and whether it is gzip."""

    label: str
    stream: LineStream
    file: io.BufferedReader[io.FileIO]
    compressed: bool

    def close(self) -> None:
        """Close the stream and the file under it (the descriptor of stdin stays open)."""
        self.stream.close()
        self.file.close()


def open_input(path: str) -> LogInput:
    """Open a log (plain, gzip by magic bytes, or ``-`` for stdin) as a binary stream."""
    try:
        if path == STDIN:
            label, raw = "<stdin>", io.FileIO(_stdin(), "r", closefd=False)
        else:
            label, raw = path, io.FileIO(path, "r")
    except OSError as exc:
        raise InputError(f"audit log {path!r}: {exc.strerror or exc}") from None
    stream = io.BufferedReader(raw, _BUFFER)
    try:
        magic = stream.peek(2)[:2]
    except OSError as exc:
        stream.close()
        raise InputError(f"audit log {path!r}: {exc.strerror or exc}") from None
    if magic == _GZIP_MAGIC:
        return LogInput(label, gzip.GzipFile(fileobj=stream, mode="rb"), stream, compressed=True)
    return LogInput(label, stream, stream, compressed=False)


def is_plain_file(path: str) -> bool:
    """A regular, uncompressed file (one that can be split by byte ranges)."""
    if path == STDIN:
        return False
    try:
        with open(path, "rb") as fh:
            return os.fstat(fh.fileno()).st_size > 0 and fh.read(2) != _GZIP_MAGIC
    except OSError:
        return False


def lines_of(stream: LineStream, limit: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The stream's lines, each at most ``limit`` bytes; no Python frame per line.

    A line without a trailing newline is either the file's truncated last line or the first
    ``limit`` bytes of an over-long one; :func:`skip_rest_of_line` tells them apart.
    """
    return iter(partial(stream.readline, limit), b"")


def skip_rest_of_line(stream: LineStream) -> int:
    """Read past the end of the current line without holding it; returns the bytes skipped."""
    skipped = 0
    while True:
        piece = stream.readline(_BUFFER)
        skipped += len(piece)
        if not piece or piece.endswith(b"\n"):
            return skipped


class _Window(io.RawIOBase):
    """Bytes ``[start, end)`` of a file, read with ``pread`` (a part for one worker)."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self._fd, self._pos, self._end = fd, start, end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._end - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def open_part(path: str, start: int, end: int) -> tuple[int, LineStream]:
    """A buffered stream over one byte range of ``path``; the caller closes the descriptor."""
    fd = os.open(path, os.O_RDONLY)
    return fd, io.BufferedReader(_Window(fd, start, end), _BUFFER)


def line_aligned_parts(path: str, parts: int) -> list[tuple[int, int]]:
    """``(start, end)`` of ``parts`` byte ranges of ``path`` that begin on line starts."""
    size = os.path.getsize(path)
    cuts = [0]
    fd = os.open(path, os.O_RDONLY)
    try:
        for i in range(1, parts):
            cuts.append(_next_line_start(fd, max(cuts[-1], size * i // parts), size))
    finally:
        os.close(fd)
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if a < b]


def _next_line_start(fd: int, pos: int, size: int) -> int:
    """The offset after the first newline at or after ``pos - 1`` (a bounded scan)."""
    if pos == 0:
        return 0
    pos -= 1  # a cut right after a newline stays where it is
    while pos < size:
        block = os.pread(fd, _BUFFER, pos)
        at = block.find(b"\n")
        if at >= 0:
            return pos + at + 1
        pos += len(block)
    return size

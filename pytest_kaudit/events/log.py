"""Incremental, rotation-aware reading of an audit log.

A test never re-reads the log from the start: its :class:`AuditLog` opens the source at the
current end and afterwards reads only the bytes appended since the previous poll. The cost of
an expectation therefore depends on what this test produced, not on the size of the log.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pytest_kaudit.events.model import AuditEvent, event_from_dict

log = logging.getLogger(__name__)

_READ_SIZE = 1 << 20
#: At most this much is read per call, so a huge backlog streams instead of loading whole.
_MAX_READ = 32 << 20


@dataclass(frozen=True)
class Chunk:
    """Bytes appended to one file of the log; ``final`` when that file will not grow again."""

    label: str
    offset: int
    data: bytes
    final: bool = False


class LogFollower(Protocol):
    """A cursor over a log that returns what was appended since the last call."""

    def read_new(self) -> list[Chunk]:
        """Return the bytes appended since the previous call (possibly across rotations)."""
        ...

    def close(self) -> None:
        """Release file handles or processes."""
        ...


class LogSource(Protocol):
    """Where a cluster's audit log can be read: a file, a command, container logs."""

    description: str

    def follow(self, *, from_start: bool = False) -> LogFollower:
        """Open a cursor at the current end of the log (or at its start)."""
        ...


@dataclass(frozen=True)
class LogProblem:
    """A line that could not be decoded. Holds no line content: it may carry Secret data."""

    file: str
    offset: int
    length: int
    error: str

    def __str__(self) -> str:
        return (
            f"{self.file} @ byte {self.offset}: "
            f"undecodable line ({self.length} bytes): {self.error}"
        )


class FileLogSource:
    """The audit log as a file on this host (``--audit-log-path``), rotated by lumberjack."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.description = str(self.path)

    def follow(self, *, from_start: bool = False) -> FileFollower:
        """Open a cursor; see :class:`FileFollower`."""
        return FileFollower(self.path, from_start=from_start)


class FileFollower:
    """Follows a file by keeping its descriptor open, so a rename (rotation) loses nothing.

    lumberjack rotates by renaming ``audit.log`` to ``audit-<timestamp>.log`` and creating a
    new ``audit.log``. The open descriptor still reaches the renamed file, so its remaining
    bytes are read before switching to the new file at offset 0. A file that shrank under the
    same inode was truncated (copytruncate) and is re-read from 0.
    """

    def __init__(self, path: Path, *, from_start: bool) -> None:
        self.path = path
        self._fd: int | None = None
        self._offset = 0
        self._open(at_end=not from_start)

    def _open(self, *, at_end: bool) -> bool:
        """Open the current file; False when it does not exist (yet)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            # kube-apiserver <1.22 creates the file on the first event: all of it will be new.
            self._fd, self._offset = None, 0
            return False
        self._fd = fd
        self._offset = os.lseek(fd, 0, os.SEEK_END) if at_end else 0
        return True

    def _drain(self, limit: int | None = None) -> bytes:
        assert self._fd is not None
        parts = []
        total = 0
        while limit is None or total < limit:
            block = os.pread(self._fd, _READ_SIZE, self._offset)
            if not block:
                break
            parts.append(block)
            self._offset += len(block)
            total += len(block)
        return b"".join(parts)

    def read_new(self) -> list[Chunk]:
        """Return the bytes appended since the previous call, following rotations."""
        chunks: list[Chunk] = []
        if self._fd is None and not self._open(at_end=False):
            return chunks
        fd = self._fd
        assert fd is not None  # opened above
        start = self._offset
        data = self._drain(_MAX_READ)
        if len(data) >= _MAX_READ:  # more is waiting: hand this part over first
            return [Chunk(str(self.path), start, data)]
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None  # mid-rotation: renamed, new file not created yet
        mine = os.fstat(fd)
        if current is not None and current.st_ino == mine.st_ino:
            if current.st_size < self._offset:  # truncated in place
                log.info("audit log %s was truncated; reading it from the start", self.path)
                self._offset = 0
                data += self._drain()
                start = 0
            if data:
                chunks.append(Chunk(str(self.path), start, data))
            return chunks
        # Rotated: finish the old file (it may have grown between drain and stat), then read
        # any file rotated after it (several rotations between two polls), then switch.
        data += self._drain()
        # same label as before the rotation: a line half-read by the last poll continues here
        chunks.append(Chunk(str(self.path), start, data, final=True))
        for missed in self._rotated_after(mine):
            chunks.append(Chunk(str(missed), 0, _read_whole(missed), final=True))
        os.close(fd)
        self._fd = None
        if current is not None and self._open(at_end=False):
            chunks.append(Chunk(str(self.path), 0, self._drain()))
        return chunks

    def _rotated_after(self, mine: os.stat_result) -> list[Path]:
        """Rotated siblings newer than the file we were reading, oldest first."""
        siblings = rotated_siblings(self.path)
        for index, sibling in enumerate(siblings):
            try:
                if sibling.stat().st_ino == mine.st_ino:
                    return siblings[index + 1:]
            except FileNotFoundError:
                continue
        # Ours was compressed (new inode) or removed: take what was modified after it,
        # minus the compressed copy of ours (same content length).
        newer = []
        for sibling in siblings:
            try:
                if sibling.stat().st_mtime < mine.st_mtime:
                    continue
            except FileNotFoundError:
                continue
            if sibling.suffix == ".gz" and len(_read_whole(sibling)) == mine.st_size:
                continue
            newer.append(sibling)
        return newer

    def close(self) -> None:
        """Close the descriptor."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class AuditLog:
    """Decoded events appended to a log since this reader was opened.

    Args:
        follower: the cursor to read from.
        mixed: the stream interleaves other output (apiserver stdout with ``--audit-log-path=-``);
            non-JSON lines are then skipped instead of reported.
        id_prefix: when given, only lines whose auditID starts with it are decoded (a byte
            search), so background traffic costs almost nothing.
    """

    follower: LogFollower
    mixed: bool = False
    id_prefix: str | None = None
    problems: list[LogProblem] = field(default_factory=list)
    bytes_read: int = 0
    _partial: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    @classmethod
    def tail(cls, source: LogSource, **kwargs: object) -> AuditLog:
        """Open ``source`` at its current end: only events logged from now on are seen."""
        return cls(source.follow(from_start=False), **kwargs)  # type: ignore[arg-type]

    def poll(self) -> list[AuditEvent]:
        """Read and decode whatever complete lines were appended since the last poll."""
        return list(self.iter_new())

    def iter_new(self) -> Iterator[AuditEvent]:
        """Stream the events appended since the last read, without holding them all."""
        while True:
            chunks = self.follower.read_new()
            if not chunks:
                return
            yield from self._decode_chunks(chunks)
            if not any(len(c.data) >= _MAX_READ for c in chunks):
                return

    def _decode_chunks(self, chunks: list[Chunk]) -> Iterator[AuditEvent]:
        needle = f'"auditID":"{self.id_prefix}'.encode() if self.id_prefix else None
        for chunk in chunks:
            self.bytes_read += len(chunk.data)
            base, pending = self._partial.pop(chunk.label, (chunk.offset, b""))
            buf = pending + chunk.data
            lines = buf.split(b"\n")
            tail = lines.pop()
            offset = base
            for raw in lines:
                if raw and (needle is None or needle in raw):
                    event = self._decode(raw, chunk.label, offset)
                    if event is not None:
                        yield event
                offset += len(raw) + 1
            if tail:
                if chunk.final:  # a rotated file will not complete its last line
                    self.problems.append(
                        LogProblem(chunk.label, offset, len(tail), "truncated last line")
                    )
                else:
                    self._partial[chunk.label] = (offset, tail)

    def _decode(self, raw: bytes, label: str, offset: int) -> AuditEvent | None:
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            return event_from_dict(obj, file=label)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # JSON, or not an Event
            if not self.mixed:
                self.problems.append(LogProblem(label, offset, len(raw), _short(exc)))
            return None

    def close(self) -> None:
        """Release the underlying cursor."""
        self.follower.close()


def rotated_siblings(path: Path) -> list[Path]:
    """The rotated copies of ``path``, oldest first.

    lumberjack renames ``audit.log`` to ``audit-<UTC timestamp>.log`` (``.gz`` once
    compressed), so ordering by name without ``.gz`` is ordering by time.
    """
    stem, ext = path.stem, path.suffix
    found = {*path.parent.glob(f"{stem}-*{ext}"), *path.parent.glob(f"{stem}-*{ext}.gz")}
    return sorted(found, key=lambda p: p.name.removesuffix(".gz"))


def _read_whole(path: Path) -> bytes:
    """A rotated file's bytes, decompressed if lumberjack gzipped it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return b""
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _short(exc: Exception) -> str:
    # json errors quote no content, only positions; keep it that way (lines may hold secrets).
    text = str(exc)
    return text if len(text) < 120 else text[:117] + "..."

"""Audit logs read through a command: ``docker exec … tail``, ``ssh … cat``, ``kubectl logs``.

These implement :class:`pytest_kaudit.events.log.LogSource` for logs that are not a readable
file on this host: a kind node's log whose host mount is unreadable, an existing cluster's log
on a remote node, or the apiserver's stdout (``--audit-log-path=-``).
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Sequence

from pytest_kaudit.errors import AuditLogError
from pytest_kaudit.events.log import Chunk

log = logging.getLogger(__name__)

#: Placeholders a command may contain: bytes already read, and that plus one (``tail -c +N``).
OFFSET = "{offset}"
OFFSET1 = "{offset1}"


#: Options whose value is a secret, masked in descriptions (messages, reports).
_SECRET_OPTIONS = ("--token", "--password")
_MASK = "***"
_SECRET_INLINE = re.compile(r"(--(?:token|password)(?:=|\s+))(?:'[^']*'|\"[^\"]*\"|\S+)")
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*(?:[A-Za-z]+\s+)?)\S.*")


def masked_command(argv: Sequence[str]) -> str:
    """The command as text for messages, with token/password values and auth headers masked.

    Masks ``--token X``, ``--token=X``, ``--password X``/``=X`` (also inside a ``sh -c``
    string) and the credentials of ``Authorization:`` headers (``curl -H``).
    """
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(_MASK)
            hide_next = False
            continue
        if arg in _SECRET_OPTIONS:
            hide_next = True
            out.append(arg)
            continue
        arg = _SECRET_INLINE.sub(lambda m: m[1] + _MASK, arg)
        out.append(_AUTH_HEADER.sub(lambda m: m[1] + _MASK, arg))
    return " ".join(out)


class CommandLogSource:
    """An audit log printed by a command, read incrementally when the command takes an offset.

    Args:
        command: argv. If an argument contains ``{offset}`` (bytes already read) or
            ``{offset1}`` (the same plus one, for ``tail -c +{offset1}``), only new bytes are
            fetched; otherwise the whole output is fetched each poll and the bytes already
            seen are skipped (when the output shrinks, the log was rotated and is re-read).
        size_command: optional argv printing the log's current size in bytes; with an offset
            command it detects rotation (size below the offset).
        json_only: keep only lines that look like JSON objects; for streams that mix audit
            events with other output, like apiserver stdout.
        timeout: seconds allowed per command run.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        description: str | None = None,
        size_command: Sequence[str] | None = None,
        json_only: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.command = list(command)
        self.size_command = list(size_command) if size_command else None
        self.json_only = json_only
        self.timeout = timeout
        self.description = description or masked_command(self.command)

    @property
    def incremental(self) -> bool:
        """Whether the command fetches only new bytes."""
        return any(OFFSET in a or OFFSET1 in a for a in self.command)

    def follow(self, *, from_start: bool = False) -> CommandFollower:
        """Open a cursor at the current end of the log (or at its start)."""
        return CommandFollower(self, from_start=from_start)

    def run(self, offset: int) -> bytes:
        """Run the command for ``offset``; raise AuditLogError naming the command on failure."""
        argv = [
            a.replace(OFFSET1, str(offset + 1)).replace(OFFSET, str(offset)) for a in self.command
        ]
        return _run(argv, self.timeout, self.description)

    def size(self) -> int | None:
        """The log's size according to ``size_command`` (None without one)."""
        if self.size_command is None:
            return None
        out = _run(self.size_command, self.timeout, self.description).strip()
        try:
            return int(out.split()[0])
        except (ValueError, IndexError):
            raise AuditLogError(
                f"{self.description}: size command printed {out[:40]!r}, expected a number"
            ) from None


def _run(argv: list[str], timeout: float, what: str) -> bytes:
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise AuditLogError(f"cannot read the audit log: {argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        raise AuditLogError(
            f"reading the audit log timed out after {timeout:.0f}s: {what}"
        ) from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[-500:]
        raise AuditLogError(f"reading the audit log failed (exit {proc.returncode}): {what}\n{err}")
    return proc.stdout


class CommandFollower:
    """Cursor of a :class:`CommandLogSource`: a byte offset plus a generation per rotation."""

    def __init__(self, source: CommandLogSource, *, from_start: bool) -> None:
        self.source = source
        self._generation = 0
        self._offset = 0
        if not from_start:
            self._offset = self._current_size()

    def _label(self) -> str:
        suffix = f" (after rotation {self._generation})" if self._generation else ""
        return f"{self.source.description}{suffix}"

    def _current_size(self) -> int:
        size = self.source.size()
        if size is not None:
            return size
        if self.source.incremental:
            # Without a size command, read once to learn where the end is.
            return self._offset + len(self.source.run(self._offset))
        return len(self._complete(self.source.run(0)))

    def _complete(self, data: bytes) -> bytes:
        """Drop a trailing partial line; it is fetched again, whole, next time."""
        cut = data.rfind(b"\n")
        return data[: cut + 1] if cut >= 0 else b""

    def read_new(self) -> list[Chunk]:
        """Return the bytes appended since the previous call."""
        if self.source.incremental:
            size = self.source.size()
            if size is not None and size < self._offset:
                log.info("%s shrank: rotated, reading the new file from 0", self.source.description)
                self._rotate()
            data = self._complete(self.source.run(self._offset))
            start = self._offset
            self._offset += len(data)
        else:
            whole = self._complete(self.source.run(0))
            if len(whole) < self._offset:
                self._rotate()
            data = whole[self._offset :]
            start = self._offset
            self._offset = len(whole)
        if not data:
            return []
        if self.source.json_only:
            data = b"".join(
                line for line in data.splitlines(keepends=True) if line.lstrip().startswith(b"{")
            )
        return [Chunk(self._label(), start, data)]

    def _rotate(self) -> None:
        self._generation += 1
        self._offset = 0

    def close(self) -> None:
        """Nothing to release: every read is a separate command run."""


def container_file_source(cli: Sequence[str], container: str, path: str) -> CommandLogSource:
    """A file inside a container (kind node, k3s), read with ``<cli> exec <c> tail -c +N``.

    ``exec`` runs as root in the container, so this works when the host mount is unreadable.
    """
    return CommandLogSource(
        [*cli, "exec", container, "tail", "-c", f"+{OFFSET1}", path],
        size_command=[*cli, "exec", container, "stat", "-c", "%s", path],
        description=f"{container}:{path} (via {cli[0]} exec)",
    )

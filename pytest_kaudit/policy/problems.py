"""One reportable finding about a policy or flag set, with where it is and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """A single error or warning, located by file, line and field path.

    ``code`` is a stable identifier (``"unknown-field"``, ``"validation"``, ``"shadowed-rule"`` ...)
    that tools can filter on; ``message`` is the human text (for validation errors exactly the
    apiserver's message body); ``field`` is a path such as ``rules[0].verbs`` ("" for the file).
    """

    severity: Severity
    code: str
    message: str
    file: str | None = None
    line: int | None = None
    field: str = ""
    hint: str | None = None
    fix: str | None = None

    def __str__(self) -> str:
        """Render as ``file:line: field: message (hint)``, leaving out missing parts."""
        parts: list[str] = []
        if self.file is not None and self.line is not None:
            parts.append(f"{self.file}:{self.line}")
        elif self.file is not None:
            parts.append(self.file)
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        text = ": ".join(parts)
        if self.hint:
            text += f" ({self.hint})"
        return text

    @property
    def apiserver_text(self) -> str:
        """The ``<path>: <body>`` form kube-apiserver prints for a field error."""
        return f"{self.field}: {self.message}" if self.field else self.message

"""Exception hierarchy: every error the plugin raises on purpose is a ``KauditError``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_kaudit.policy.problems import Problem


class KauditError(Exception):
    """Base class of pytest-kaudit's own errors."""


class OptionError(KauditError):
    """Options that do not make a usable configuration: pytest reports it as a usage error."""


class PolicyError(KauditError, ValueError):
    """A policy (or apiserver flag set) that kube-apiserver would reject, or that we refuse.

    ``problems`` holds every problem found, in the apiserver's validation order, each with
    the file, line and field path it concerns.
    """

    def __init__(self, problems: Sequence[Problem], *, headline: str | None = None) -> None:
        self.problems = list(problems)
        self.headline = headline
        super().__init__(self._render())

    def _render(self) -> str:
        errors = [p for p in self.problems if p.severity == "error"]
        head = self.headline or (
            f"invalid audit policy: {len(errors)} problem{'s' if len(errors) != 1 else ''}"
        )
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class BinaryNotFound(KauditError):
    """A control-plane binary (etcd, kube-apiserver, kind, docker) could not be found."""

    def __init__(self, name: str, checked: Iterable[str], remedies: Iterable[str]) -> None:
        self.name = name
        self.checked = list(checked)
        self.remedies = list(remedies)
        lines = [f"{name} not found.", "Checked:"]
        lines += [f"  - {c}" for c in self.checked] or ["  (nothing)"]
        lines.append("To fix, any of:")
        lines += [f"  - {r}" for r in self.remedies]
        super().__init__("\n".join(lines))


class BackendError(KauditError):
    """A cluster backend could not start, reconfigure or stop a cluster."""


class BootError(BackendError):
    """The control plane did not become ready; carries the tail of its own logs."""

    def __init__(self, what: str, reason: str, log_tail: str = "", log_path: str | None = None):
        self.what = what
        self.reason = reason
        self.log_tail = log_tail
        self.log_path = log_path
        text = f"{what} failed to start: {reason}"
        if log_tail:
            where = f" ({log_path})" if log_path else ""
            text += f"\n--- last lines of its log{where} ---\n{log_tail.rstrip()}"
        super().__init__(text)


class AuditLogError(KauditError):
    """The audit log could not be read (missing, unreadable, rotated away)."""


class PolicyMismatchWarning(UserWarning):
    """The apiserver logged a request at a level the policy copy in use does not predict.

    On ``existing`` clusters it means the copy given with ``--kaudit-policy`` is not what the
    cluster runs; on clusters the plugin owns it would point at a policy-engine bug.
    """

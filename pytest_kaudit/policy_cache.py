"""Audit policies by the value a marker or option gives, each loaded once per session.

A value is a path (relative to the test's directory, then the rootdir), YAML text, a dict or
a :class:`~pytest_kaudit.policy.Policy`. Problems name the file, line and field, or the
marker and test for inline policies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_kaudit.backends.base import ClusterHandle
from pytest_kaudit.errors import KauditError, PolicyError
from pytest_kaudit.policy import Policy
from pytest_kaudit.policy.versions import Version
from pytest_kaudit.preflight import load_policy_any_version


class PolicyCache:
    """Loads each distinct policy value once; errors carry file, line and field."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self._cache: dict[tuple[str, str], Policy] = {}

    def load(self, value: Any, base_dir: Path, rootdir: Path, *, nodeid: str = "") -> Policy:
        """A path, YAML text, a dict or a Policy → Policy (relative paths: test dir, then
        rootdir). Problems of inline policies name the marker and the test ``nodeid``.

        Policies are accepted if any supported apiserver version accepts them; the backend
        checks them again against its own version (see :mod:`pytest_kaudit.preflight`).
        """
        if isinstance(value, Policy):
            return value
        if isinstance(value, Mapping):
            key = ("dict", repr(sorted(value.items(), key=str)))
            if key not in self._cache:
                document = dict(value)

                def from_dict(version: Version) -> Policy:
                    return Policy.from_dict(document, source="<marker policy>",
                                            strict=self.strict, target_version=version)

                self._cache[key] = _located(
                    f"@pytest.mark.kaudit(policy={{...}}) on {nodeid}", from_dict,
                    has_lines=False)
            return self._cache[key]
        text = str(value)
        if isinstance(value, str) and (
            "\n" in text or text.lstrip().startswith(("apiVersion", "{"))
        ):
            key = ("text", text)
            if key not in self._cache:

                def from_yaml(version: Version) -> Policy:
                    return Policy.from_yaml(text, source="<marker policy>", strict=self.strict,
                                            target_version=version)

                self._cache[key] = _located(
                    f"@pytest.mark.kaudit(policy=<YAML text>) on {nodeid}", from_yaml,
                    has_lines=True)
            return self._cache[key]
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = next(
                (p for p in (base_dir / path, rootdir / path) if p.exists()), rootdir / path
            )
        path = path.resolve()
        key = ("path", str(path.resolve()))
        if key not in self._cache:
            if path.is_dir():
                raise KauditError(f"{path} is a directory, not an audit policy file")
            if not path.is_file():
                raise KauditError(f"audit policy file not found: {path}")
            self._cache[key] = load_policy_any_version(
                lambda v: Policy.load(path, strict=self.strict, target_version=v))
        return self._cache[key]

    def for_version(self, policy: Policy, version: Version) -> Policy:
        """``policy`` as the apiserver of ``version`` reads it (its predictions follow it).

        Collection accepted the policy for some version; the backend has since checked it
        against its own, so this load succeeds. Read leniently, as that apiserver does.
        """
        if policy.target_version == version:
            return policy
        key = ("version", f"{version}:{policy.text}")
        if key not in self._cache:
            self._cache[key] = Policy.from_yaml(policy.text, source=policy.source,
                                                strict=False, target_version=version)
        return self._cache[key]

    def in_force(self, handle: ClusterHandle, requested: Policy | None) -> Policy | None:
        """The policy ``handle``'s cluster runs, as its apiserver reads it.

        That is the backend's own copy where it has one (an ``existing`` cluster given a copy
        of its policy), else the policy the test asked for.
        """
        policy = handle.spec.policy if handle.spec.policy is not None else requested
        return self.for_version(policy, handle.version) if policy is not None else None


def _located(where: str, load: Callable[[Version], Policy], *, has_lines: bool) -> Policy:
    """Load an inline policy; its problems name the marker and test instead of a file.

    A dict has no lines of its own (those of its YAML dump would point at nothing); YAML text
    keeps its line numbers, counted within the text.
    """
    try:
        return load_policy_any_version(load)
    except PolicyError as exc:
        problems = [replace(p, file=where + (f", line {p.line}" if has_lines and p.line else ""),
                            line=None) for p in exc.problems]
        raise PolicyError(problems, headline=exc.headline) from None


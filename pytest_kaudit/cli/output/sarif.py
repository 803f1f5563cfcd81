"""SARIF 2.1.0 for ``kaudit lint``, so GitHub code scanning annotates the policy's lines."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_kaudit.policy import Problem

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/pytest-kaudit/pytest-kaudit"


def artifact_uri(path: str, *, base: str | None = None) -> str:
    """A repository-relative URI when ``path`` is under ``base`` (default cwd), else a file URI.

    Code scanning resolves relative URIs against the checkout (``%SRCROOT%``); absolute
    paths from a runner would never match a file in the repository.
    """
    p = Path(path)
    root = Path(base or os.getcwd()).resolve()
    try:
        return p.resolve().relative_to(root).as_posix()
    except ValueError:
        return p.resolve().as_uri() if p.is_absolute() or p.exists() else p.as_posix()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pytest-kaudit")
    except Exception:  # pragma: no cover - not installed
        return "0"


def to_sarif(
    problems: Sequence[Problem], *, default_file: str, base: str | None = None
) -> dict[str, Any]:
    """Render lint problems as one SARIF run; a problem without a line gets no region."""
    rule_ids: list[str] = []
    for p in problems:
        if p.code not in rule_ids:
            rule_ids.append(p.code)
    results = []
    for p in problems:
        location: dict[str, Any] = {
            "artifactLocation": {
                "uri": artifact_uri(p.file or default_file, base=base),
                "uriBaseId": "%SRCROOT%",
            },
        }
        if p.line:
            location["region"] = {"startLine": int(p.line)}
        text = f"{p.field}: {p.message}" if p.field else p.message
        if p.hint:
            text += f" ({p.hint})"
        result: dict[str, Any] = {
            "ruleId": p.code,
            "ruleIndex": rule_ids.index(p.code),
            "level": "error" if p.severity == "error" else "warning",
            "message": {"text": text},
            "locations": [{"physicalLocation": location}],
        }
        props = {k: v for k, v in (("field", p.field), ("hint", p.hint), ("fix", p.fix)) if v}
        if props:
            result["properties"] = props
        results.append(result)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kaudit",
                        "informationUri": INFORMATION_URI,
                        "version": _version(),
                        "rules": [
                            {"id": rid, "name": rid, "shortDescription": {"text": rid}}
                            for rid in rule_ids
                        ],
                    }
                },
                "results": results,
            }
        ],
    }

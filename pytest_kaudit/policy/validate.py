"""kube-apiserver's ``ValidatePolicy``: the nine checks, paths, messages and order
(kubernetes ``staging/src/k8s.io/apiserver/pkg/apis/audit/validation/validation.go``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_kaudit.policy.model import LEVEL_NAMES, STAGE_NAMES
from pytest_kaudit.policy.problems import Problem
from pytest_kaudit.policy.versions import Version, has_group_wildcard, renders_lists_as_json

#: The values ``ValidatePolicy`` accepts, in the order its messages list them.
STAGES = STAGE_NAMES
LEVELS = LEVEL_NAMES

STAGE_BODY = "allowed stages are " + ",".join(STAGES)
LEVEL_BODY = "supported values: " + ", ".join(f'"{level}"' for level in LEVELS)
URL_SLASH_BODY = "non-resource URL rules must begin with a '/' character"
URL_WILDCARD_BODY = "non-resource URL wildcards '*' must be the final character of the rule"
DNS1123_BODY = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1123_LENGTH_BODY = "must be no more than 253 characters"
RESOURCE_NAMES_BODY = "using resourceNames requires at least one resource"
MIXED_BODY = "rules cannot apply to both regular resources and non-resource URLs"

_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r",
            "\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v"}


def go_quote(value: str) -> str:
    """Go's ``%q`` for a string (``strconv.Quote``)."""
    out = ['"']
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def render_string_list(values: Sequence[str], version: Version) -> str:
    """A ``[]string`` value as the apiserver prints it: Go syntax up to 1.33, JSON from 1.34."""
    if renders_lists_as_json(version):
        text = json.dumps(list(values), separators=(",", ":"), ensure_ascii=False)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def validate_policy(
    doc: Mapping[str, Any],
    *,
    version: Version,
    source: str | None = None,
    line_for: Callable[[str], int | None] | None = None,
) -> list[Problem]:
    """Every field error ``ValidatePolicy`` reports for a decoded document, in its order.

    ``doc`` uses the apiserver's key names (``rules``, ``omitStages``, ...). ``line_for`` maps a
    real field path (always indexed, e.g. ``rules[0].resources[1].group``) to a source line; the
    problem's ``field`` is the apiserver's path, which has no index below ``resources``.
    """
    lines = line_for or (lambda _path: None)
    problems: list[Problem] = []

    def add(path: str, body: str, real_path: str | None = None, hint: str | None = None) -> None:
        problems.append(
            Problem("error", "validation", body, source, lines(real_path or path), path, hint=hint)
        )

    for j, stage in enumerate(doc.get("omitStages") or ()):
        if stage not in STAGES:
            add(f"omitStages[{j}]", f"Invalid value: {go_quote(stage)}: {STAGE_BODY}",
                hint=_case_hint(stage, STAGES))
    for i, rule in enumerate(doc.get("rules") or ()):
        prefix = f"rules[{i}]"
        level = rule.get("level") or ""
        if not level:
            add(f"{prefix}.level", "Required value", real_path=prefix,
                hint="every rule needs level: None, Metadata, Request or RequestResponse")
        elif level not in LEVELS:
            add(f"{prefix}.level", f"Unsupported value: {go_quote(level)}: {LEVEL_BODY}",
                hint=_case_hint(level, LEVELS))
        urls = rule.get("nonResourceURLs") or ()
        for j, url in enumerate(urls):
            if url == "*":
                continue
            path = f"{prefix}.nonResourceURLs[{j}]"
            if not url.startswith("/"):
                add(path, f"Invalid value: {go_quote(url)}: {URL_SLASH_BODY}")
            if url and "*" in url[:-1]:
                add(path, f"Invalid value: {go_quote(url)}: {URL_WILDCARD_BODY}")
        for k, entry in enumerate(rule.get("resources") or ()):
            real = f"{prefix}.resources[{k}]"
            group = entry.get("group") or ""
            if group and not (group == "*" and has_group_wildcard(version)):
                for body in _dns1123_subdomain_errors(group):
                    hint = None
                    if "/" in group:
                        hint = "give the group without its version, e.g. apps not apps/v1"
                    elif group == "*":
                        hint = 'group: "*" is accepted only from Kubernetes 1.36'
                    add(f"{prefix}.resources.group", f"Invalid value: {go_quote(group)}: {body}",
                        real_path=f"{real}.group", hint=hint)
            names = entry.get("resourceNames") or ()
            if names and not entry.get("resources"):
                rendered = render_string_list(names, version)
                add(f"{prefix}.resources.resourceNames",
                    f"Invalid value: {rendered}: {RESOURCE_NAMES_BODY}",
                    real_path=f"{real}.resourceNames")
        for j, stage in enumerate(rule.get("omitStages") or ()):
            if stage not in STAGES:
                add(f"{prefix}.omitStages[{j}]", f"Invalid value: {go_quote(stage)}: {STAGE_BODY}",
                    hint=_case_hint(stage, STAGES))
        if urls and (rule.get("resources") or rule.get("namespaces")):
            add(f"{prefix}.nonResourceURLs",
                f"Invalid value: {render_string_list(urls, version)}: {MIXED_BODY}",
                hint="split it into one rule for resources and one for non-resource URLs")
    return problems


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append(DNS1123_LENGTH_BODY)
    if not _DNS1123_SUBDOMAIN.match(value):
        errors.append(DNS1123_BODY)
    return errors


def _case_hint(value: str, allowed: Sequence[str]) -> str | None:
    for candidate in allowed:
        if candidate.lower() == value.lower():
            return f'values are case-sensitive: write "{candidate}"'
    return None


def apiserver_error_text(problems: Sequence[Problem]) -> str:
    """The aggregate error string kube-apiserver prints for these validation problems.

    One error prints bare; several print as ``[e1, e2]``; identical messages are deduplicated
    and a list that deduplicates to one message prints without brackets.
    """
    seen: list[str] = []
    for problem in problems:
        text = problem.apiserver_text
        if text not in seen:
            seen.append(text)
    if len(problems) == 1 or len(seen) == 1:
        return seen[0] if seen else ""
    return "[" + ", ".join(seen) + "]"

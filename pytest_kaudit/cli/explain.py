"""``kaudit explain POLICY REQUEST...``: which rule decides a request, and why not the others.

Each REQUEST is one (quoted) argument, so several can be given at once::

    kaudit explain policy.yaml "get secrets -n prod --as alice" "GET /healthz"

Two forms are accepted: ``VERB RESOURCE[/SUBRESOURCE] [NAME] [options]`` in the
apiserver's verb vocabulary, or ``METHOD /path?query [options]`` as it appears on the wire
(derived like kube-apiserver's RequestInfo: ``GET /api/v1/pods`` is a ``list``).
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import (
    EXIT_OK,
    CliError,
    Streams,
    add_format_option,
    add_policy_options,
    announce_target_version,
    enum_text,
    load_policy,
)
from pytest_kaudit.policy import matching
from pytest_kaudit.policy.model import STAGE_NAMES
from pytest_kaudit.policy.stages import stages_for

if TYPE_CHECKING:
    from pytest_kaudit.policy import Decision, Policy, RequestAttributes

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
AUTHENTICATED_GROUP = "system:authenticated"
DEFAULT_USER = "kaudit:user"

REQUEST_SYNTAX = """\
REQUEST syntax (one quoted argument per request):
  VERB RESOURCE[/SUBRESOURCE] [NAME] [-n NS] [--name N] [--group G] [--subresource S]
                                     [--as USER] [--as-group G ...] [--unauthenticated]
  METHOD /path[?query] [--as USER] [--as-group G ...] [--unauthenticated]
Authenticated callers always carry the group system:authenticated, as on a real apiserver.
Without --as the caller is the user 'kaudit:user'.
examples:
  kaudit explain policy.yaml "get secrets -n prod --as alice" "GET /healthz"
  kaudit explain policy.yaml "create pods/exec web-0 -n prod" "watch deployments --group apps"
"""


class _RequestParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def _request_parser() -> argparse.ArgumentParser:
    p = _RequestParser(prog="REQUEST", add_help=False)
    p.add_argument("verb")
    p.add_argument("target")
    p.add_argument("object_name", nargs="?", default=None)
    p.add_argument("-n", "--namespace", default="")
    p.add_argument("--name", default=None)
    p.add_argument("--group", default="")
    p.add_argument("--subresource", default=None)
    p.add_argument("--as", dest="user", default=None)
    p.add_argument("--as-group", dest="groups", action="append", default=[])
    p.add_argument("--unauthenticated", action="store_true")
    return p


@dataclass(frozen=True)
class ParsedRequest:
    """A REQUEST argument and the attributes the checker would see for it."""

    text: str
    attrs: RequestAttributes


def parse_request(text: str) -> ParsedRequest:
    """Turn one REQUEST argument into RequestAttributes; ValueError says what is wrong."""
    from pytest_kaudit.policy import RequestAttributes

    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot split into words: {exc}") from None
    if len(tokens) < 2:
        raise ValueError("expected 'VERB RESOURCE ...' or 'METHOD /path ...'")
    ns = _request_parser().parse_args(tokens)
    user: str | None = None if ns.unauthenticated else (ns.user or DEFAULT_USER)
    groups: tuple[str, ...] = ()
    if user is not None:
        groups = tuple(dict.fromkeys([*ns.groups, AUTHENTICATED_GROUP]))
    elif ns.user or ns.groups:
        raise ValueError("--unauthenticated cannot be combined with --as/--as-group")
    if ns.target.startswith("/"):
        if ns.object_name or ns.namespace or ns.name or ns.group or ns.subresource:
            raise ValueError("a URL path takes no NAME, -n, --name, --group or --subresource")
        method = ns.verb.upper()
        if method not in HTTP_METHODS:
            raise ValueError(
                f"unknown HTTP method {ns.verb!r} (one of {', '.join(sorted(HTTP_METHODS))})"
            )
        attrs = RequestAttributes.from_http(method, ns.target, user=user, groups=groups)
        return ParsedRequest(text, attrs)
    if ns.verb != ns.verb.lower():
        raise ValueError(
            f"verb {ns.verb!r} must be lower-case (an apiserver verb such as get, list, create);"
            " use 'METHOD /path' for HTTP methods"
        )
    resource, _, sub = ns.target.partition("/")
    if ns.subresource is not None:
        if sub:
            raise ValueError(
                "give the subresource either as RESOURCE/SUB or --subresource, not both"
            )
        sub = ns.subresource
    if ns.object_name is not None and ns.name is not None:
        raise ValueError("give the name either positionally or with --name, not both")
    name = ns.name if ns.name is not None else (ns.object_name or "")
    attrs = RequestAttributes(
        user=user,
        groups=groups,
        verb=ns.verb,
        namespace=ns.namespace,
        resource=resource,
        subresource=sub,
        name=name,
        api_group=ns.group,
        api_version="",
        path=_resource_path(ns.group, ns.namespace, resource, name, sub),
        is_resource_request=True,
    )
    return ParsedRequest(text, attrs)


def _resource_path(group: str, namespace: str, resource: str, name: str, sub: str) -> str:
    head = f"/apis/{group}/v1" if group else "/api/v1"
    parts = [head]
    if namespace and resource != "namespaces":
        parts.append(f"namespaces/{namespace}")
    parts.append(resource)
    if name:
        parts.append(name)
        if sub:
            parts.append(sub)
    return "/".join(parts)


def emitted_stages(attrs: RequestAttributes, decision: Decision) -> list[str]:
    """Stages that will be logged for a normal outcome (a panic turns ResponseComplete into Panic).

    ``{RequestReceived, ResponseComplete}``, plus ``ResponseStarted`` when long-running,
    minus the omitted stages; an unauthenticated request is answered 401 with a single
    ``ResponseStarted`` event.
    """
    return [s.value for s in sorted(stages_for(attrs, decision), key=lambda s: s.rank)]


def rule_source_lines(policy: Policy, index: int) -> list[tuple[int, str]]:
    """The YAML lines of rule ``index`` from the policy text, as (line number, text)."""
    start = policy.rule_line(index)
    text = getattr(policy, "text", "") or ""
    if not start or not text:
        return []
    lines = text.splitlines()
    if start > len(lines):
        return []
    first = lines[start - 1]
    stripped = first.lstrip()
    indent = len(first) - len(stripped)
    out = [(start, first)]
    if not stripped.startswith("-"):
        return out
    for number in range(start + 1, len(lines) + 1):
        line = lines[number - 1]
        body = line.strip()
        if body and (len(line) - len(line.lstrip())) <= indent:
            break
        out.append((number, line))
    while len(out) > 1 and (not out[-1][1].strip() or out[-1][1].strip().startswith("#")):
        out.pop()
    return out


def _describe_attrs(attrs: RequestAttributes) -> str:
    who = "unauthenticated" if attrs.user is None else f"user={attrs.user}"
    groups = f" groups=[{','.join(attrs.groups)}]" if attrs.groups else ""
    if not attrs.is_resource_request:
        return f"non-resource verb={attrs.verb} path={attrs.path} {who}{groups}"
    res = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    parts = [f"verb={attrs.verb}", f"resource={res}"]
    parts.append(f"group={attrs.api_group or 'core'}")
    parts.append(f"namespace={attrs.namespace or '(none)'}")
    if attrs.name:
        parts.append(f"name={attrs.name}")
    return " ".join(parts) + f" {who}{groups}"


def explain_one(policy: Policy, request: ParsedRequest) -> dict[str, Any]:
    """Explain one request as data (the JSON output and the text output both use it)."""
    attrs = request.attrs
    decision = policy.evaluate_attributes(attrs)
    index = decision.rule_index
    earlier = range(index if index is not None else len(policy.rules))
    why_not = []
    for i in earlier:
        rule = policy.rules[i]
        why_not.append(
            {
                "rule": i,
                "line": policy.rule_line(i),
                "summary": rule.summary(),
                "mismatches": matching.mismatches(rule, attrs),
            }
        )
    return {
        "request": request.text,
        "attributes": _describe_attrs(attrs),
        "long_running": bool(attrs.is_long_running),
        "rule": index,
        "line": policy.rule_line(index) if index is not None else None,
        "rule_source": [
            {"line": n, "text": t}
            for n, t in (rule_source_lines(policy, index) if index is not None else [])
        ],
        "level": enum_text(decision.level),
        "omitted_stages": [
            s for s in STAGE_NAMES if s in {enum_text(x) for x in decision.omit_stages}
        ],
        "emitted_stages": emitted_stages(attrs, decision),
        "not_matched": why_not,
    }


def render_text(result: dict[str, Any], number: int) -> list[str]:
    """Human-readable lines for one explained request."""
    out = [f"request {number}: {result['request']}", f"  attributes: {result['attributes']}"]
    if result["rule"] is None:
        out.append("  matched: no rule (level None by default)")
    else:
        where = f" (line {result['line']})" if result["line"] else ""
        out.append(f"  matched: rule {result['rule']}{where}")
        for src in result["rule_source"]:
            out.append(f"    {src['line']:>4} | {src['text']}")
    out.append(f"  level: {result['level']}")
    out.append(f"  omitted stages: {', '.join(result['omitted_stages']) or '(none)'}")
    if result["level"] == "None":
        out.append("  emitted stages: (none: level None logs nothing)")
    else:
        emitted = ", ".join(result["emitted_stages"]) or "(none: every stage is omitted)"
        note = " (long-running)" if result["long_running"] else ""
        out.append(f"  emitted stages: {emitted}{note}")
    if result["not_matched"]:
        out.append("  earlier rules that did not match:")
        for item in result["not_matched"]:
            where = f" (line {item['line']})" if item["line"] else ""
            reasons = item["mismatches"] or ["(matches: engine and explanation disagree)"]
            out.append(f"    rule {item['rule']}{where}: {reasons[0]}")
            out += [f"      {r}" for r in reasons[1:]]
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``explain``'s arguments."""
    parser.add_argument("policy", metavar="POLICY", help="Audit policy file (YAML or JSON)")
    parser.add_argument(
        "requests",
        metavar="REQUEST",
        nargs="+",
        help="A request, one quoted argument each (see REQUEST syntax below)",
    )
    add_policy_options(parser)
    add_format_option(parser)
    parser.epilog = REQUEST_SYNTAX


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Explain each request; input errors (bad REQUEST, bad policy) exit 2."""
    parsed = []
    for number, text in enumerate(args.requests, 1):
        try:
            parsed.append(parse_request(text))
        except ValueError as exc:
            raise CliError(f"request {number} ({text!r}): {exc}") from None
    announce_target_version(args.target_version, streams)
    policy = load_policy(args.policy, lenient=args.lenient, target_version=args.target_version)
    results = [explain_one(policy, request) for request in parsed]
    if args.format == "json":
        streams.json({"policy": args.policy, "requests": results})
        return EXIT_OK
    blocks = ["\n".join(render_text(r, n)) for n, r in enumerate(results, 1)]
    streams.print("\n\n".join(blocks))
    return EXIT_OK


COMMAND = Command(
    name="explain",
    help="Show which rule decides each request, its level and stages, and why earlier rules miss",
    add_arguments=add_arguments,
    run=run,
    description=__doc__,
)

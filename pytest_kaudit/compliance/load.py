"""Strict loader for requirement files: every mistake is reported with file, line and field.

The format (built-in packs use it too)::

    pack: my-team
    requirements:
      - id: team.secrets-logged
        title: Secret reads are logged
        source: ["Our audit standard 4.1"]
        rationale: Who read which Secret must be known after an incident.
        requests:
          - verbs: [get, list]
            resource: secrets
            namespaces: [team-a]
            as: [{user: alice}, {serviceAccount: team-a/deployer}]
        expect: {logged: true, level: {atMost: Metadata}}

Other kinds: ``flag: {name: audit-log-maxage, atLeast: 30}``, ``check: canary``,
``check: gap``. Unknown keys are errors (with a suggestion), as are wrong types and values.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pytest_kaudit.compliance.model import (
    FlagCheck,
    Kind,
    LevelBound,
    RequestTemplate,
    Requirement,
    Want,
)
from pytest_kaudit.errors import KauditError
from pytest_kaudit.policy import Level, Problem
from pytest_kaudit.policy.request import NON_RESOURCE_VERBS
from pytest_kaudit.traffic import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, Identity
from pytest_kaudit.traffic.request import VERB_METHODS

#: Refuse bigger files: a requirements file is hand-written, a huge one is a mistake.
MAX_BYTES = 1_000_000
MAX_REQUESTS = 5_000
_PATCH_TYPES = {"merge": MERGE_PATCH, "json": JSON_PATCH, "strategic": STRATEGIC_PATCH,
                "apply": APPLY_PATCH}
_REQ_KEYS = ("id", "title", "source", "rationale", "requests", "expect", "flag", "check",
             "conflictsWith")
_TEMPLATE_KEYS = ("verbs", "resource", "group", "version", "namespaces", "name", "path", "as",
                  "patchType")
_EXPECT_KEYS = ("logged", "level", "requestBody", "responseBody", "impersonatedUser")
_FLAG_KEYS = ("name", "atLeast", "policyHasRules")
_LEVEL_OPS = ("atLeast", "atMost", "exactly")
#: Requirements send no OPTIONS request.
_NON_RESOURCE_VERBS = tuple(verb for verb in NON_RESOURCE_VERBS if verb != "options")

T = TypeVar("T")


class RequirementsError(KauditError):
    """A requirements file with problems; each names file, line and field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        n = len(problems)
        head = f"invalid requirements: {n} problem{'s' if n != 1 else ''}"
        super().__init__("\n".join([head, *(f"  {p}" for p in problems)]))


class _Bad(Exception):
    """One problem at one node; collected by the loader."""

    def __init__(self, node: yaml.Node, field: str, message: str) -> None:
        super().__init__(message)
        self.node, self.field, self.message = node, field, message


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, node: yaml.Node, field: str, message: str) -> None:
        self.problems.append(Problem("error", "requirements", message, self.source,
                                     node.start_mark.line + 1, field))

    def guard(self, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except _Bad as bad:
            self.problem(bad.node, bad.field, bad.message)
            return None


def _mapping(node: yaml.Node, field: str, keys: tuple[str, ...]) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise _Bad(node, field, "expected a mapping")
    out: dict[str, yaml.Node] = {}
    for key_node, value in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            raise _Bad(key_node, field, "keys must be strings")
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _Bad(key_node, f"{field}.{key}" if field else key,
                       f"unknown field {key!r}{hint}; known: {', '.join(keys)}")
        if key in out:
            raise _Bad(key_node, f"{field}.{key}" if field else key, "duplicate field")
        out[key] = value
    return out


def _str(node: yaml.Node, field: str, *, allow_empty: bool = False) -> str:
    if not (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str"):
        raise _Bad(node, field, "expected a string")
    text = str(node.value)
    if not text and not allow_empty:
        raise _Bad(node, field, "must not be empty")
    return text


def _bool(node: yaml.Node, field: str) -> bool:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        return str(node.value).lower() in ("true", "yes", "on")
    raise _Bad(node, field, "expected true or false")


def _int(node: yaml.Node, field: str) -> int:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
        return int(node.value)
    raise _Bad(node, field, "expected a whole number")


def _str_list(node: yaml.Node, field: str, *, allow_empty_items: bool = False) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise _Bad(node, field, "expected a non-empty list of strings")
    return tuple(_str(item, f"{field}[{i}]", allow_empty=allow_empty_items)
                 for i, item in enumerate(node.value))


def _level(node: yaml.Node, field: str) -> Level:
    text = _str(node, field)
    try:
        return Level(text)
    except ValueError:
        raise _Bad(node, field, f"unknown level {text!r}; levels are "
                   f"{', '.join(lv.value for lv in Level)}") from None


def _identity(node: yaml.Node, field: str) -> Identity:
    if isinstance(node, yaml.ScalarNode):
        word = _str(node, field)
        simple = {"admin": Identity.admin, "anonymous": Identity.anonymous,
                  "invalidToken": Identity.invalid}
        if word not in simple:
            raise _Bad(node, field, f"unknown identity {word!r}; use admin, anonymous, "
                       "invalidToken, {user: NAME}, {serviceAccount: NS/NAME} or "
                       "{impersonate: NAME}")
        return simple[word]()
    m = _mapping(node, field, ("user", "groups", "serviceAccount", "impersonate"))
    groups = _str_list(m["groups"], f"{field}.groups") if "groups" in m else ()
    chosen = [k for k in ("user", "serviceAccount", "impersonate") if k in m]
    if len(chosen) != 1:
        raise _Bad(node, field, "give exactly one of user, serviceAccount, impersonate")
    key = chosen[0]
    value = _str(m[key], f"{field}.{key}")
    if key == "user":
        return Identity.human(value, groups)
    if key == "impersonate":
        return Identity.impersonating(value, groups)
    ns, sep, name = value.partition("/")
    if not sep or not ns or not name or "/" in name:
        raise _Bad(m[key], f"{field}.serviceAccount", "expected NAMESPACE/NAME")
    if groups:
        raise _Bad(m["groups"], f"{field}.groups", "a service account's groups are fixed")
    return Identity.service_account(ns, name)


def _template(node: yaml.Node, field: str) -> RequestTemplate:
    m = _mapping(node, field, _TEMPLATE_KEYS)
    if "verbs" not in m:
        raise _Bad(node, field, "missing field 'verbs'")
    verbs = _str_list(m["verbs"], f"{field}.verbs")
    path = _str(m["path"], f"{field}.path") if "path" in m else ""
    resource_text = _str(m["resource"], f"{field}.resource") if "resource" in m else ""
    if bool(path) == bool(resource_text):
        raise _Bad(node, field, "give exactly one of 'resource' and 'path'")
    allowed = _NON_RESOURCE_VERBS if path else tuple(VERB_METHODS)
    for i, verb in enumerate(verbs):
        if verb not in allowed:
            raise _Bad(m["verbs"].value[i], f"{field}.verbs[{i}]",
                       f"unknown verb {verb!r}; verbs are {', '.join(allowed)}")
    if path and not path.startswith("/"):
        raise _Bad(m["path"], f"{field}.path", "must start with /")
    resource, _, subresource = resource_text.partition("/")
    kwargs: dict[str, Any] = {"verbs": verbs, "resource": resource, "subresource": subresource,
                              "path": path}
    if "group" in m:
        kwargs["group"] = _str(m["group"], f"{field}.group", allow_empty=True)
    if "version" in m:
        kwargs["version"] = _str(m["version"], f"{field}.version")
    if "namespaces" in m:
        kwargs["namespaces"] = _str_list(m["namespaces"], f"{field}.namespaces",
                                         allow_empty_items=True)
    if "name" in m:
        kwargs["name"] = _str(m["name"], f"{field}.name")
    if "as" in m:
        seq = m["as"]
        if not isinstance(seq, yaml.SequenceNode) or not seq.value:
            raise _Bad(seq, f"{field}.as", "expected a non-empty list of identities")
        kwargs["identities"] = tuple(_identity(n, f"{field}.as[{i}]")
                                     for i, n in enumerate(seq.value))
    if "patchType" in m:
        word = _str(m["patchType"], f"{field}.patchType")
        if word not in _PATCH_TYPES:
            raise _Bad(m["patchType"], f"{field}.patchType",
                       f"unknown patch type {word!r}; one of {', '.join(_PATCH_TYPES)}")
        kwargs["patch_type"] = _PATCH_TYPES[word]
    return RequestTemplate(**kwargs)


def _want(node: yaml.Node, field: str) -> Want:
    m = _mapping(node, field, _EXPECT_KEYS)
    if not m:
        raise _Bad(node, field, "an empty expectation checks nothing")
    kwargs: dict[str, Any] = {}
    if "logged" in m:
        kwargs["logged"] = _bool(m["logged"], f"{field}.logged")
    if "level" in m:
        lm = _mapping(m["level"], f"{field}.level", _LEVEL_OPS)
        if len(lm) != 1:
            raise _Bad(m["level"], f"{field}.level",
                       "give exactly one of atLeast, atMost, exactly")
        op, value = next(iter(lm.items()))
        kwargs["level"] = LevelBound(op, _level(value, f"{field}.level.{op}"))  # type: ignore[arg-type]
    for key, attr in (("requestBody", "request_body"), ("responseBody", "response_body")):
        if key in m:
            word = _str(m[key], f"{field}.{key}")
            if word not in ("present", "absent"):
                raise _Bad(m[key], f"{field}.{key}", "expected present or absent")
            kwargs[attr] = word == "present"
    if "impersonatedUser" in m:
        if _str(m["impersonatedUser"], f"{field}.impersonatedUser") != "recorded":
            raise _Bad(m["impersonatedUser"], f"{field}.impersonatedUser", "expected recorded")
        kwargs["impersonated_user"] = True
    return Want(**kwargs)


def _flag(node: yaml.Node, field: str) -> FlagCheck:
    m = _mapping(node, field, _FLAG_KEYS)
    if "name" not in m:
        raise _Bad(node, field, "missing field 'name'")
    name = _str(m["name"], f"{field}.name").removeprefix("--")
    at_least = _int(m["atLeast"], f"{field}.atLeast") if "atLeast" in m else None
    has_rules = _bool(m["policyHasRules"], f"{field}.policyHasRules") \
        if "policyHasRules" in m else False
    return FlagCheck(name, at_least, policy_has_rules=has_rules)


def _requirement(node: yaml.Node, field: str, pack: str, source: str) -> Requirement:
    m = _mapping(node, field, _REQ_KEYS)
    for key in ("id", "title", "source", "rationale"):
        if key not in m:
            raise _Bad(node, field, f"missing field {key!r}")
    rid = _str(m["id"], f"{field}.id")
    sources = _str_list(m["source"], f"{field}.source") if isinstance(
        m["source"], yaml.SequenceNode) else (_str(m["source"], f"{field}.source"),)
    kinds = [k for k in ("requests", "flag", "check") if k in m]
    if len(kinds) != 1:
        raise _Bad(node, field, "give exactly one of 'requests', 'flag' and 'check'")
    kind: Kind
    templates: tuple[RequestTemplate, ...] = ()
    want = None
    flag = None
    if kinds[0] == "requests":
        kind = "traffic"
        seq = m["requests"]
        if not isinstance(seq, yaml.SequenceNode) or not seq.value:
            raise _Bad(seq, f"{field}.requests", "expected a non-empty list")
        templates = tuple(_template(n, f"{field}.requests[{i}]") for i, n in enumerate(seq.value))
        if "expect" not in m:
            raise _Bad(node, field, "a requirement with requests needs 'expect'")
        want = _want(m["expect"], f"{field}.expect")
    elif kinds[0] == "flag":
        kind = "flag"
        flag = _flag(m["flag"], f"{field}.flag")
    else:
        word = _str(m["check"], f"{field}.check")
        if word not in ("canary", "gap"):
            raise _Bad(m["check"], f"{field}.check", "expected canary or gap")
        kind = word  # type: ignore[assignment]
    if kind != "traffic" and "expect" in m:
        raise _Bad(m["expect"], f"{field}.expect", "only requirements with requests take it")
    conflicts = _str_list(m["conflictsWith"], f"{field}.conflictsWith") \
        if "conflictsWith" in m else ()
    return Requirement(
        id=rid, title=_str(m["title"], f"{field}.title"), sources=sources,
        rationale=" ".join(_str(m["rationale"], f"{field}.rationale").split()), pack=pack,
        kind=kind, requests=templates, want=want, flag=flag, conflicts_with=conflicts,
        file=source, line=node.start_mark.line + 1)


def load_requirements_text(text: str, *, source: str) -> list[Requirement]:
    """Parse requirement YAML; raises :class:`RequirementsError` listing every problem."""
    reader = _Reader(source)
    if len(text.encode()) > MAX_BYTES:
        raise RequirementsError([Problem("error", "requirements",
                                         f"file larger than {MAX_BYTES} bytes; refused", source)])
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RequirementsError([Problem(
            "error", "yaml", str(getattr(exc, "problem", None) or exc), source,
            mark.line + 1 if mark is not None else None)]) from None
    if root is None:
        raise RequirementsError([Problem("error", "requirements", "empty file", source)])
    top = reader.guard(lambda: _mapping(root, "", ("pack", "requirements")))
    if top is None:
        raise RequirementsError(reader.problems)
    pack = reader.guard(lambda: _str(top["pack"], "pack")) if "pack" in top else "custom"
    seq = top.get("requirements")
    if not isinstance(seq, yaml.SequenceNode) or not seq.value:
        reader.problem(seq or root, "requirements", "expected a non-empty list of requirements")
        raise RequirementsError(reader.problems)
    out: list[Requirement] = []
    seen: dict[str, int] = {}
    for i, node in enumerate(seq.value):
        req = reader.guard(lambda n=node, i=i: _requirement(  # type: ignore[misc]
            n, f"requirements[{i}]", pack or "custom", source))
        if req is None:
            continue
        if req.id in seen:
            reader.problem(node, f"requirements[{i}].id",
                           f"duplicate id {req.id!r} (first at line {seen[req.id]})")
            continue
        seen[req.id] = req.line
        out.append(req)
    total = sum(len(r.specs()) for r in out)
    if total > MAX_REQUESTS:
        reader.problem(root, "requirements",
                       f"{total} requests in all; the limit is {MAX_REQUESTS}")
    if reader.problems:
        raise RequirementsError(reader.problems)
    return out


def load_requirements(path: str | Path) -> list[Requirement]:
    """Read and parse a requirements file (errors name the file as given)."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise RequirementsError([Problem("error", "requirements",
                                             f"file larger than {MAX_BYTES} bytes; refused",
                                             str(path))])
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RequirementsError([Problem("error", "requirements", f"cannot read: {exc}",
                                         str(path))]) from None
    return load_requirements_text(text, source=str(path))

"""YAML/JSON text -> validated ``Policy``, reproducing kube-apiserver's loader.

The apiserver converts YAML (go-yaml v2, YAML 1.1) to JSON, detects apiVersion/kind, decodes
leniently (unknown fields dropped, last duplicate wins, type mismatches fatal), checks the group
version, validates, and rejects zero rules. We do the same steps, but collect every problem with
its line instead of stopping at the first, and (in strict mode) refuse unknown/duplicate fields
that the apiserver would silently drop.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_kaudit.errors import PolicyError
from pytest_kaudit.policy.model import (
    GroupResources,
    IgnoredDocument,
    Level,
    Policy,
    PolicyRule,
    Stage,
)
from pytest_kaudit.policy.problems import Problem, Severity
from pytest_kaudit.policy.validate import validate_policy
from pytest_kaudit.policy.versions import (
    Version,
    VersionLike,
    accepted_api_versions,
    format_version,
    knows_omit_managed_fields,
    parse_version,
    warns_deprecated_api_version,
    warns_unknown_fields,
)

#: Where kube-apiserver's scheme is registered; the line number varies between versions.
SCHEME_LOCATION = "k8s.io/apiserver/pkg/audit/scheme.go:32"
GV_MISSING_MESSAGE = "unknown group version field audit.k8s.io/__internal, Kind=Policy in policy"
ZERO_RULES_MESSAGE = "loaded illegal policy with 0 rules"
_GVK_STRUCT = (
    'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
    'Kind string "json:\\"kind,omitempty\\"" }'
)
_OTHER_AUDIT_KINDS = ("Event", "EventList", "PolicyList")

Path_ = tuple[str | int, ...]


def render_path(path: Path_) -> str:
    """``("rules", 0, "verb")`` -> ``rules[0].verb``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# ------------------------------------------------------------------------------------ YAML layer
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class _GoYamlLoader(_BaseLoader):  # type: ignore[misc]
    """Composer only: every plain scalar stays a string; we resolve it like go-yaml v2."""


_GoYamlLoader.yaml_implicit_resolvers = {}
_GoYamlLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])

_STR_TAG = "tag:yaml.org,2002:str"
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_BOOLS = {
    **dict.fromkeys(
        ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True
    ),
    **dict.fromkeys(
        ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False
    ),
}
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_SPECIAL_FLOATS = {
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INT_RES = (
    (re.compile(r"^[-+]?0[xX][0-9a-fA-F]+$"), 16, 2),
    (re.compile(r"^[-+]?0[bB][01]+$"), 2, 2),
    (re.compile(r"^[-+]?0[oO][0-7]+$"), 8, 2),
    (re.compile(r"^[-+]?0[0-7]+$"), 8, 1),
    (re.compile(r"^[-+]?[0-9]+$"), 10, 0),
)


def resolve_plain_scalar(text: str) -> Any:
    """Resolve an untagged plain scalar the way go-yaml v2 does (YAML 1.1 rules)."""
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _NULLS:
        return None
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if text and text[0] in "0123456789+-.":
        plain = text.replace("_", "")
        for regex, base, prefix in _INT_RES:
            if regex.match(plain):
                sign = -1 if plain[0] == "-" else 1
                digits = plain.lstrip("+-")[prefix:]
                return sign * int(digits, base)
        if _FLOAT_RE.match(plain):
            return float(plain)
    return text


#: go-yaml's alias-expansion limits (``decode.go``, the decoder under sigs.k8s.io/yaml): up to
#: this many decode operations 99% may come from aliases; from the high mark only 10%.
ALIAS_RATIO_RANGE_LOW = 400_000
ALIAS_RATIO_RANGE_HIGH = 4_000_000
#: Nesting depth we build. go-yaml stops at 10,000 levels; a policy needs 5, and every later
#: step (decoding, dumping, JSON) must stay far from Python's recursion limit.
MAX_DEPTH = 100
#: Largest policy we read (bytes). kube-apiserver reads any size; real policies are a few KB.
MAX_POLICY_BYTES = 2 * 1024 * 1024
#: Documents after the first that we look at (kube-apiserver looks at none of them).
MAX_IGNORED_DOCUMENTS = 100


def allowed_alias_ratio(decode_count: int) -> float:
    """go-yaml's ``allowedAliasRatio``: 0.99 for small documents, sliding to 0.10 for huge ones."""
    if decode_count <= ALIAS_RATIO_RANGE_LOW:
        return 0.99
    if decode_count >= ALIAS_RATIO_RANGE_HIGH:
        return 0.10
    span = ALIAS_RATIO_RANGE_HIGH - ALIAS_RATIO_RANGE_LOW
    return 0.99 - 0.89 * ((decode_count - ALIAS_RATIO_RANGE_LOW) / span)


class _TreeError(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


_NO_KEY: Any = object()


class _Frame:
    """An open sequence or mapping while its events arrive."""

    __slots__ = ("value", "path", "anchor", "size", "key", "merge", "line")

    def __init__(self, value: Any, path: Path_, anchor: str | None, line: int) -> None:
        self.value = value
        self.path = path
        self.anchor = anchor
        self.size = 1  # decode operations, counting every alias expansion in full
        self.key: Any = _NO_KEY
        self.merge = False
        self.line = line


class _DocumentBuilder:
    """Plain values for one YAML document, built from parser events without recursion.

    An alias reuses the value built at its anchor, but counts as go-yaml counts it: one decode
    operation per node of the expanded value, all of them alias-driven. The same ratio test as
    go-yaml's then refuses alias bombs before any later step walks the shared values. Lines,
    raw text of non-string plain scalars and duplicate keys are recorded per path.
    """

    def __init__(self, loader: _GoYamlLoader) -> None:
        self.loader = loader
        self.lines: dict[Path_, int] = {}
        self.raw: dict[Path_, str] = {}
        self.duplicates: list[tuple[Path_, int, int]] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.decode_count = 1  # the document node
        self.alias_count = 0

    def build(self) -> Any:
        """Consume events up to the end of the current document; return its value."""
        get_event = self.loader.get_event
        stack: list[_Frame] = []
        open_anchors: set[str] = set()
        root: Any = None
        while True:
            event = get_event()
            line = event.start_mark.line + 1
            if isinstance(event, yaml.DocumentEndEvent):
                return root
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                frame = stack.pop()
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (frame.value, frame.size)
                    open_anchors.discard(frame.anchor)
                self._check_aliasing(line)
                value, size = frame.value, frame.size
            else:
                path = self._child_path(stack, line)
                if isinstance(event, yaml.AliasEvent):
                    if event.anchor in open_anchors:
                        raise _TreeError(f"anchor '{event.anchor}' value contains itself", line)
                    if event.anchor not in self.anchors:
                        raise _TreeError(f"unknown anchor '{event.anchor}' referenced", line)
                    value, expanded = self.anchors[event.anchor]
                    size = 1 + expanded
                    self.decode_count += size
                    self.alias_count += expanded
                    self._check_aliasing(line)
                elif isinstance(event, yaml.ScalarEvent):
                    self.decode_count += 1
                    value, size = self._scalar(event, path), 1
                    if event.anchor is not None:
                        self.anchors[event.anchor] = (value, 1)
                    if (stack and stack[-1].key is _NO_KEY and isinstance(stack[-1].value, dict)
                            and value == "<<" and event.tag is None and not event.style):
                        stack[-1].merge = True
                else:  # a sequence or mapping starts
                    self.decode_count += 1
                    if len(stack) >= MAX_DEPTH:
                        raise _TreeError(f"exceeded max depth of {MAX_DEPTH}", line)
                    empty: Any = [] if isinstance(event, yaml.SequenceStartEvent) else {}
                    stack.append(_Frame(empty, path if path is not None else (), event.anchor,
                                        line))
                    if event.anchor is not None:
                        open_anchors.add(event.anchor)
                    continue
            if not stack:
                root = value
                continue
            self._add(stack[-1], value, size, line)

    def _child_path(self, stack: list[_Frame], line: int) -> Path_ | None:
        """The path of the node starting now (None for a mapping key), recording its line."""
        if not stack:
            return ()
        top = stack[-1]
        if isinstance(top.value, list):
            path = (*top.path, len(top.value))
            self.lines[path] = line
            return path
        if top.key is _NO_KEY:
            return None
        return (*top.path, top.key)

    def _add(self, top: _Frame, value: Any, size: int, line: int) -> None:
        top.size += size
        if isinstance(top.value, list):
            top.value.append(value)
            return
        if top.key is _NO_KEY:
            key = self._key(value)
            key_path = (*top.path, key)
            if key in top.value and not top.merge:
                self.duplicates.append((key_path, line, self.lines.get(key_path, line)))
            if not top.merge:
                self.lines[key_path] = line
            top.key = key
            return
        if top.merge:
            self._merge(top, value, line)
        else:
            top.value[top.key] = value
        top.key = _NO_KEY
        top.merge = False

    def _merge(self, top: _Frame, value: Any, line: int) -> None:
        """``<<: *a`` or ``<<: [*a, *b]``, in go-yaml v2's order: merged keys are written
        where the merge key stands (earlier list entries win)."""
        sources = list(reversed(value)) if isinstance(value, list) else [value]
        for source in sources:
            if not isinstance(source, dict):
                raise _TreeError("map merge requires map or sequence of maps as the value", line)
            for key, item in source.items():
                top.value[key] = item
                self.lines.setdefault((*top.path, key), line)

    def _check_aliasing(self, line: int) -> None:
        decodes, aliases = self.decode_count, self.alias_count
        if (aliases > 100 and decodes > 1000
                and aliases / decodes > allowed_alias_ratio(decodes)):
            raise _TreeError("document contains excessive aliasing", line)

    def _scalar(self, event: yaml.ScalarEvent, path: Path_ | None) -> Any:
        tag = event.tag
        if tag is None and not event.style:
            value = resolve_plain_scalar(event.value)
            if not isinstance(value, str) and path is not None:
                self.raw[path] = event.value
            return value
        if tag in (None, "!", _STR_TAG) or not tag.startswith("tag:yaml.org,2002:"):
            return event.value
        node = yaml.ScalarNode(tag, event.value, style=event.style)
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception:  # PyYAML's constructors fail in many ways on odd text (!!int '')
            if tag.rsplit(":", 1)[-1] in ("int", "float", "bool", "null"):
                short = "!!" + tag.rsplit(":", 1)[-1]
                mark = event.start_mark
                raise _TreeError(f"cannot decode !!str `{event.value}` as a {short}",
                                 mark.line + 1 if mark else None) from None
            return event.value

    @staticmethod
    def _key(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "null"
        if isinstance(value, (dict, list)):
            return json.dumps(value, default=str)
        return str(value)


@dataclass
class _Parsed:
    """The first document as plain data, with the facts needed to report problems."""

    value: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    raw: dict[Path_, str] = field(default_factory=dict)
    duplicates: list[tuple[Path_, int, int]] = field(default_factory=list)
    error: str | None = None
    error_line: int | None = None
    ignored: list[IgnoredDocument] = field(default_factory=list)


def _parse_text(text: str) -> _Parsed:
    """Parse the first YAML document; later ones are only summarised (go-yaml's Unmarshal never
    reads them, so their content and even their syntax errors change nothing)."""
    loader = _GoYamlLoader(text)
    try:
        try:
            loader.get_event()  # stream start
            if not loader.check_event(yaml.DocumentStartEvent):
                return _Parsed(None)
            start = loader.get_event().start_mark.line + 1
            builder = _DocumentBuilder(loader)
            value = builder.build()
        except yaml.MarkedYAMLError as exc:
            json_parsed = _parse_json(text)
            if json_parsed is not None:
                return json_parsed
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            problem = (exc.problem or str(exc)).replace(" '\\t'", "")
            if "tab character" in problem:  # libyaml's wording for what go-yaml reports like this
                problem = "found character that cannot start any token"
            where = f"line {line}: " if line else ""
            return _Parsed(None, error=f"yaml: {where}{problem}", error_line=line)
        except _TreeError as exc:  # go-yaml words these without a line; we keep it apart
            return _Parsed(None, error=f"yaml: {exc}", error_line=exc.line)
        except yaml.YAMLError as exc:
            return _Parsed(None, error=f"yaml: {exc}")
        if builder.lines or value is not None:
            builder.lines.setdefault((), start)
        parsed = _Parsed(value, builder.lines, builder.raw, builder.duplicates)
        parsed.ignored = _ignored_documents(loader)
        return parsed
    finally:
        loader.dispose()


def _ignored_documents(loader: _GoYamlLoader) -> list[IgnoredDocument]:
    """Summaries of the documents after the first (bounded by ``MAX_IGNORED_DOCUMENTS``)."""
    found: list[IgnoredDocument] = []
    index = 1
    while len(found) < MAX_IGNORED_DOCUMENTS:
        index += 1
        line: int | None = None
        try:
            if not loader.check_event(yaml.DocumentStartEvent):
                break
            line = loader.get_event().start_mark.line + 1
            value = _DocumentBuilder(loader).build()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"line {mark.line + 1}: " if mark else ""
            found.append(IgnoredDocument(index, line, error=f"{where}{exc.problem or exc}"))
            break
        except (yaml.YAMLError, _TreeError) as exc:
            found.append(IgnoredDocument(index, line, error=str(exc).splitlines()[0]))
            break
        if value in (None, "", [], {}):
            continue
        found.append(_summarise(index, line, value))
    return found


def _summarise(index: int, line: int | None, value: Any) -> IgnoredDocument:
    if not isinstance(value, dict):
        return IgnoredDocument(index, line)
    kind = value.get("kind") if isinstance(value.get("kind"), str) else None
    rules = value.get("rules")
    levels: list[str] = []
    count = 0
    if isinstance(rules, list):
        count = len(rules)
        for rule in rules:
            level = rule.get("level") if isinstance(rule, dict) else None
            if isinstance(level, str) and level not in levels:
                levels.append(level)
    return IgnoredDocument(index, line, kind, count, tuple(levels))


def _parse_json(text: str) -> _Parsed | None:
    """Fallback for JSON that PyYAML cannot read (tabs); no line numbers."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    duplicates: list[tuple[Path_, int, int]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(((key,), 0, 0))
            out[key] = value
        return out

    try:
        value = json.loads(text, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    return _Parsed(value, duplicates=[(p, 0, 0) for p, _, _ in duplicates])


# ------------------------------------------------------------------------------------ decoding
_STR, _STRLIST, _BOOL, _META = "string", "strlist", "bool", "meta"
_GROUP_RESOURCES_SCHEMA: dict[str, Any] = {
    "group": _STR,
    "resources": _STRLIST,
    "resourceNames": _STRLIST,
}
_RULE_FIELDS: dict[str, Any] = {
    "level": _STR,
    "users": _STRLIST,
    "userGroups": _STRLIST,
    "verbs": _STRLIST,
    "resources": ("list", "resources"),
    "namespaces": _STRLIST,
    "nonResourceURLs": _STRLIST,
    "omitStages": _STRLIST,
    "omitManagedFields": _BOOL,
}
_POLICY_FIELDS: dict[str, Any] = {
    "apiVersion": _STR,
    "kind": _STR,
    "metadata": _META,
    "rules": ("list", "rule"),
    "omitStages": _STRLIST,
    "omitManagedFields": _BOOL,
}

#: Likely misspellings per context (lower-cased) -> the real key.
_TYPOS: dict[str, dict[str, str]] = {
    "policy": {
        "rule": "rules",
        "omitstage": "omitStages",
        "stages": "omitStages",
        "omitmanagedfield": "omitManagedFields",
        "api_version": "apiVersion",
    },
    "rule": {
        "verb": "verbs",
        "user": "users",
        "groups": "userGroups",
        "group": "userGroups",
        "usergroup": "userGroups",
        "user_groups": "userGroups",
        "namespace": "namespaces",
        "resource": "resources",
        "nonresourceurl": "nonResourceURLs",
        "nonresourceurls": "nonResourceURLs",
        "non_resource_urls": "nonResourceURLs",
        "urls": "nonResourceURLs",
        "paths": "nonResourceURLs",
        "omitstage": "omitStages",
        "stages": "omitStages",
        "omitmanagedfield": "omitManagedFields",
    },
    "resources": {
        "groups": "group",
        "apigroup": "group",
        "apigroups": "group",
        "resource": "resources",
        "names": "resourceNames",
        "resourcename": "resourceNames",
        "name": "resourceNames",
    },
}
_RULE_CONSEQUENCE = {
    "level": "the rule would have no level, which kube-apiserver rejects (Required value)",
    "users": "this rule would match every user",
    "userGroups": "this rule would match every user, whatever their groups",
    "verbs": "this rule would match every verb",
    "resources": "this rule would match every resource",
    "namespaces": "this rule would match every namespace",
    "nonResourceURLs": "this rule would not be limited to those URLs",
    "omitStages": "this rule would not omit those stages",
    "omitManagedFields": "this rule would not change whether managedFields are logged",
}
_RESOURCES_CONSEQUENCE = {
    "group": 'this entry would match the core group ("") instead',
    "resources": "this entry would match every resource in its group",
    "resourceNames": "this entry would match objects of any name",
}
_POLICY_CONSEQUENCE = {
    "rules": "the policy would have no rules, which kube-apiserver rejects",
    "omitStages": "no stages would be omitted",
    "omitManagedFields": "managedFields would still be logged",
    "apiVersion": "the apiVersion would be missing",
}


@dataclass
class _Decoded:
    """The lenient decode result plus problems found on the way."""

    doc: dict[str, Any]
    fatal: list[Problem] = field(default_factory=list)
    field_problems: list[tuple[int, Problem]] = field(default_factory=list)
    empty_fields: set[str] = field(default_factory=set)


class _Decoder:
    """Lenient, case-sensitive decode into the versioned schema, recording what it drops."""

    def __init__(
        self, parsed: _Parsed, *, source: str | None, version: Version, strict: bool
    ) -> None:
        self.parsed = parsed
        self.source = source
        self.version = version
        self.severity: Severity = "error" if strict else "warning"
        self.knows_omf = knows_omit_managed_fields(version)
        self.out = _Decoded(doc={})

    # --- helpers
    def line(self, path: Path_) -> int | None:
        while True:
            if path in self.parsed.lines:
                return self.parsed.lines[path]
            if not path:
                return 1 if self.parsed.lines else None
            path = path[:-1]

    def _ignores(self) -> str:
        if warns_unknown_fields(self.version):
            return "kube-apiserver ignores it (1.26+ only logs a warning)"
        return "kube-apiserver ignores it silently"

    def type_error(self, path: Path_, expected: str, value: Any) -> None:
        found = _describe_json_type(value)
        raw = self.parsed.raw.get(path)
        hint = None
        if raw is not None and expected.startswith("a string"):
            kind = "a boolean" if isinstance(value, bool) else "a number"
            hint = f'YAML 1.1 reads unquoted {raw} as {kind}; quote it: "{raw}"'
        message = f"failed decoding: {render_path(path)}: expected {expected}, found {found}"
        self.out.fatal.append(
            Problem(
                "error",
                "decode",
                message,
                self.source,
                self.line(path),
                render_path(path),
                hint=hint,
            )
        )

    # --- fields
    def decode_document(self, value: dict[str, Any]) -> dict[str, Any]:
        fields = dict(_POLICY_FIELDS)
        if not self.knows_omf:
            fields.pop("omitManagedFields")
        doc = self.decode_object(value, (), fields, "policy", check_gvk_case=True)
        return doc

    def decode_object(
        self,
        value: Mapping[str, Any],
        path: Path_,
        fields: Mapping[str, Any],
        context: str,
        *,
        check_gvk_case: bool = False,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in value.items():
            key_path = (*path, key)
            kind = fields.get(key)
            if kind is None:
                if check_gvk_case and key.lower() in ("apiversion", "kind"):
                    canonical = "apiVersion" if key.lower() == "apiversion" else "kind"
                    self._field_problem(
                        key_path,
                        Problem(
                            "warning",
                            "key-case",
                            f'field "{key}" is only accepted because kube-apiserver detects '
                            f"apiVersion/kind case-insensitively",
                            self.source,
                            self.line(key_path),
                            render_path(key_path),
                            hint=f'write "{canonical}"',
                            fix=f'rename "{key}" to "{canonical}"',
                        ),
                    )
                    continue
                self.unknown_field(key_path, key, context, value)
                continue
            decoded = self.decode_value(item, key_path, kind)
            if decoded is not None:
                out[key] = decoded
        return out

    def decode_value(self, item: Any, path: Path_, kind: Any) -> Any:
        if kind == _STR:
            if item is None:
                return None
            if not isinstance(item, str):
                self.type_error(path, "a string", item)
                return None
            return item
        if kind == _BOOL:
            if item is None:
                return None
            if not isinstance(item, bool):
                self.type_error(path, "a boolean (true or false)", item)
                return None
            return item
        if kind == _META:
            if item is not None and not isinstance(item, dict):
                self.type_error(path, "an object", item)
                return None
            return item
        if kind == _STRLIST:
            if item is None or item == []:
                self.out.empty_fields.add(render_path(path))
                return None
            if not isinstance(item, list):
                self.type_error(path, "a list of strings", item)
                return None
            values = []
            for i, element in enumerate(item):
                if element is None:
                    values.append("")
                elif isinstance(element, str):
                    values.append(element)
                else:
                    self.type_error((*path, i), "a string", element)
            return values
        _, what = kind
        if item is None or item == []:
            self.out.empty_fields.add(render_path(path))
            return None
        if not isinstance(item, list):
            self.type_error(path, f"a list of {'rules' if what == 'rule' else 'objects'}", item)
            return None
        fields = _RULE_FIELDS if what == "rule" else _GROUP_RESOURCES_SCHEMA
        if what == "rule" and not self.knows_omf:
            fields = {k: v for k, v in fields.items() if k != "omitManagedFields"}
        objects: list[dict[str, Any]] = []
        for i, element in enumerate(item):
            if element is None:
                objects.append({})
            elif isinstance(element, dict):
                objects.append(self.decode_object(element, (*path, i), fields, what))
            else:
                self.type_error((*path, i), "an object", element)
        return objects

    def unknown_field(
        self, path: Path_, key: str, context: str, siblings: Mapping[str, Any]
    ) -> None:
        known = list(_POLICY_FIELDS if context == "policy" else _RULE_FIELDS)
        if context == "resources":
            known = list(_GROUP_RESOURCES_SCHEMA)
        suggestion, hint = _suggest(key, context, known)
        consequence = None

        def report(message: str, hint: str | None, fix: str) -> None:
            self._field_problem(
                path,
                Problem(
                    self.severity,
                    "unknown-field",
                    message,
                    self.source,
                    self.line(path),
                    render_path(path),
                    hint=hint,
                    fix=fix,
                ),
            )

        if key == "omitManagedFields" and not self.knows_omf:
            message = (
                f'unknown field "{key}": kube-apiserver {format_version(self.version)} does not '
                "know it (added in 1.23) and ignores it silently, so managedFields would be logged"
            )
            report(message, "target Kubernetes 1.23 or later, or remove it", f'remove "{key}"')
            return
        if context == "resources" and key in _RULE_FIELDS:
            hint = (
                f'"{key}" belongs to the rule, not to a resources entry: '
                "indent it to line up with resources"
            )
            consequence = _RULE_CONSEQUENCE[key]
            fix = f'move "{key}" out of the resources entry, up to the rule'
        elif context == "rule" and key in ("apiGroups", "resourceNames"):
            target = "group" if key == "apiGroups" else "resourceNames"
            hint = f"audit rules put {target} inside each resources entry"
            consequence = (
                'resources without a group mean the core group ("")'
                if key == "apiGroups"
                else "this rule would match objects of any name"
            )
            fix = f'move "{key}" into the resources entries as "{target}"'
        elif context == "resources" and suggestion == "group":
            value = siblings.get(key)
            if value in ("", None, [""], []):
                consequence = (
                    'this entry matches the core group ("") only because that is the default'
                )
            else:
                consequence = f'this entry would match the core group ("") instead of {value!r}'
            fix = f'rename "{key}" to "group"'
        elif suggestion is not None:
            table = {
                "policy": _POLICY_CONSEQUENCE,
                "rule": _RULE_CONSEQUENCE,
                "resources": _RESOURCES_CONSEQUENCE,
            }[context]
            consequence = table.get(suggestion)
            fix = f'rename "{key}" to "{suggestion}"'
        else:
            fix = f'remove "{key}"'
        message = f'unknown field "{key}": {self._ignores()}'
        if consequence:
            selector = suggestion in _RULE_CONSEQUENCE and suggestion not in (
                "level", "omitStages", "omitManagedFields"
            )
            if context == "rule" and selector and _would_be_catch_all(siblings):
                consequence += ", and it becomes a catch-all matching every request"
            message += f", so {consequence}"
        report(message, hint, fix)

    def _field_problem(self, path: Path_, problem: Problem) -> None:
        self.out.field_problems.append((problem.line or 0, problem))

    def duplicates(self) -> None:
        for path, line, first in self.parsed.duplicates:
            key = path[-1]
            if warns_unknown_fields(self.version):
                how = "kube-apiserver keeps only the last value (1.26+ logs a warning)"
            else:
                how = "kube-apiserver silently keeps only the last value"
            where = f" (first at line {first})" if first else ""
            self._field_problem(
                path,
                Problem(
                    self.severity,
                    "duplicate-field",
                    f'duplicate field "{key}": {how}',
                    self.source,
                    line or None,
                    render_path(path),
                    hint=f"remove one of them{where}",
                    fix=f'keep a single "{key}"',
                ),
            )


def _would_be_catch_all(rule: Mapping[str, Any]) -> bool:
    selectors = ("users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs")
    return not any(rule.get(key) for key in selectors)


def _suggest(key: str, context: str, known: list[str]) -> tuple[str | None, str | None]:
    """The key the author probably meant, and the hint text to show."""
    lower = key.lower()
    for candidate in known:
        if candidate.lower() == lower:
            return candidate, f'keys are case-sensitive: write "{candidate}"'
    typo = _TYPOS.get(context, {}).get(lower)
    if typo is None:
        close = difflib.get_close_matches(lower, [k.lower() for k in known], n=1, cutoff=0.75)
        if close:
            typo = next(k for k in known if k.lower() == close[0])
    if typo is None:
        return None, None
    return typo, f'did you mean "{typo}"?'


def _describe_json_type(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# ------------------------------------------------------------------------------------ pipeline
def load_file(
    path: str | Path, *, strict: bool = True, target_version: VersionLike = None
) -> Policy:
    """Read ``path`` and load it; the path becomes every problem's file name.

    Raises:
        PolicyError: unreadable file (missing, a directory, over ``MAX_POLICY_BYTES``, not
            UTF-8), or any problem in it.
    """
    source = str(path)

    def unreadable(reason: str, hint: str | None = None) -> PolicyError:
        problem = Problem("error", "unreadable", f'failed to read file path "{source}": {reason}',
                          source, None, hint=hint)
        return PolicyError([problem], headline=f"cannot read audit policy {source}")

    file = Path(path)
    try:
        if file.is_dir():
            raise unreadable("is a directory", "give the policy file inside it")
        size = file.stat().st_size
        if size > MAX_POLICY_BYTES:
            raise PolicyError([_too_large(size, source)])
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise unreadable(reason.lower()) from exc
    return load_text(text, source=source, strict=strict, target_version=target_version)


def _too_large(size: int, source: str | None) -> Problem:
    return Problem(
        "error",
        "too-large",
        f"policy is {size:,} bytes; pytest-kaudit reads policies of up to {MAX_POLICY_BYTES:,} "
        f"bytes ({MAX_POLICY_BYTES // (1024 * 1024)} MiB)",
        source,
        None,
        hint="kube-apiserver would read it, but real policies are a few KB: a policy this "
        "large is most likely generated by mistake",
    )


def load_text(
    text: str,
    *,
    source: str | None = None,
    strict: bool = True,
    target_version: VersionLike = None,
) -> Policy:
    """Load policy text; see ``Policy.from_yaml``.

    Raises:
        PolicyError: every problem found; text over ``MAX_POLICY_BYTES`` is refused unread.
    """
    version = parse_version(target_version)
    if len(text) > MAX_POLICY_BYTES // 4:
        size = len(text.encode("utf-8", errors="surrogatepass"))
        if size > MAX_POLICY_BYTES:
            raise PolicyError([_too_large(size, source)])
    parsed = _parse_text(text)
    return _load_parsed(parsed, text, source=source, strict=strict, version=version)


def load_object(
    obj: Mapping[str, Any],
    *,
    source: str | None = None,
    strict: bool = True,
    target_version: VersionLike = None,
) -> Policy:
    """Load an already-parsed document; lines come from its YAML dump."""
    version = parse_version(target_version)
    value: Any = obj
    if isinstance(obj, Mapping) and not isinstance(obj, dict):
        value = dict(obj)
    try:
        text = yaml.dump(value, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)
        lines = _lines_of_dump(text)
    except (yaml.YAMLError, RecursionError):
        try:
            text = json.dumps(value, indent=2, default=repr)
        except (ValueError, RecursionError):  # nested too deep, or recursive
            text = ""
        lines = {}
    parsed = _Parsed(value, lines=lines)
    return _load_parsed(parsed, text, source=source, strict=strict, version=version)


def _lines_of_dump(text: str) -> dict[Path_, int]:
    parsed = _parse_text(text)
    return parsed.lines


def _load_parsed(
    parsed: _Parsed, text: str, *, source: str | None, strict: bool, version: Version
) -> Policy:
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if parsed.error is not None:
        problems.append(
            Problem(
                "error",
                "decode",
                f"failed decoding: {parsed.error}",
                source,
                parsed.error_line,
                hint=_decode_hint(parsed.error),
            )
        )
        raise PolicyError(problems)
    value = parsed.value
    gvk_problem = _check_gvk(value, source, version, warnings)
    if gvk_problem is not None and gvk_problem.code == "decode":
        raise PolicyError([gvk_problem, *warnings])
    decoder = _Decoder(parsed, source=source, version=version, strict=strict)
    doc: dict[str, Any] = decoder.decode_document(value) if isinstance(value, dict) else {}
    decoder.duplicates()
    field_problems = [p for _, p in sorted(decoder.out.field_problems, key=lambda x: x[0])]
    for problem in field_problems:
        (problems if problem.severity == "error" else warnings).append(problem)
    problems.extend(decoder.out.fatal)
    if decoder.out.fatal:
        raise PolicyError([*problems, *warnings])
    if gvk_problem is not None:
        problems.append(gvk_problem)
    line_of = decoder.line

    def line_for(path: str) -> int | None:
        return line_of(_parse_rendered(path))

    problems.extend(validate_policy(doc, version=version, source=source, line_for=line_for))
    if not doc.get("rules"):
        problems.append(
            Problem("error", "no-rules", ZERO_RULES_MESSAGE, source, line_for("rules"), "rules",
                    hint="add at least one rule; a final `- level: Metadata` logs everything")
        )
    if problems:
        raise PolicyError([*problems, *warnings])
    return _build_policy(doc, text, source, version, warnings, parsed, decoder.out.empty_fields)


def _decode_hint(error: str) -> str | None:
    if "cannot start any token" in error:
        return "check indentation; YAML does not allow tabs for indentation"
    if "excessive aliasing" in error:
        return (
            "kube-apiserver's YAML decoder (go-yaml) refuses a document once more than 99% of "
            f"its first {ALIAS_RATIO_RANGE_LOW:,} decoded nodes (10% beyond "
            f"{ALIAS_RATIO_RANGE_HIGH:,}) come from expanding aliases: write the values out "
            "instead of repeating anchors"
        )
    if "max depth" in error:
        return f"a policy nests 5 levels deep; this one nests more than {MAX_DEPTH}"
    return None


class _Positions(Mapping[str, int]):
    """Source line per rendered field path, rendered only when asked (large policies have
    hundreds of thousands of paths and lints ask for a few)."""

    def __init__(self, lines: Mapping[Path_, int]) -> None:
        self._lines = lines

    def __getitem__(self, key: str) -> int:
        line = self._lines.get(_parse_rendered(key)) if key else None
        if not line:
            raise KeyError(key)
        return line

    def __iter__(self) -> Iterator[str]:
        return (render_path(path) for path, line in self._lines.items() if line and path)

    def __len__(self) -> int:
        return sum(1 for path, line in self._lines.items() if line and path)

    def __bool__(self) -> bool:
        return bool(self._lines)


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parse_rendered(path: str) -> Path_:
    parts: list[str | int] = []
    for name, index in _PATH_TOKEN.findall(path):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _check_gvk(
    value: Any, source: str | None, version: Version, warnings: list[Problem]
) -> Problem | None:
    """Group-version-kind detection and the loader's group-version check."""
    if value is None:
        return Problem("error", "api-version", GV_MISSING_MESSAGE, source, None,
                       hint="start the file with apiVersion: audit.k8s.io/v1 and kind: Policy")
    if not isinstance(value, dict):
        go_type = {list: "array", str: "string", bool: "bool"}.get(type(value), "number")
        return Problem(
            "error",
            "decode",
            "failed decoding: couldn't get version/kind; json parse error: json: cannot "
            f"unmarshal {go_type} into Go value of type {_GVK_STRUCT}",
            source,
            1,
            hint="the top level of a policy must be a mapping with apiVersion, kind and rules",
        )
    api_version: Any = None
    kind: Any = None
    for key, item in value.items():
        if key.lower() == "apiversion":
            api_version = item
        elif key.lower() == "kind":
            kind = item
    for name, item in (("apiVersion", api_version), ("kind", kind)):
        if item is not None and not isinstance(item, str):
            go_type = _describe_json_type(item).split(" ")[0].replace("boolean", "bool")
            return Problem(
                "error",
                "decode",
                "failed decoding: couldn't get version/kind; json parse error: json: cannot "
                f"unmarshal {go_type} into Go struct field .{name} of type string",
                source,
                1,
            )
    if not api_version:
        return Problem("error", "api-version", GV_MISSING_MESSAGE, source, 1,
                       hint="add apiVersion: audit.k8s.io/v1", fix="apiVersion: audit.k8s.io/v1")
    kind = kind or "Policy"
    accepted = accepted_api_versions(version)
    if api_version not in accepted or kind not in ("Policy", *_OTHER_AUDIT_KINDS):
        hint = None
        if api_version in ("audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1"):
            hint = f"{api_version} was removed in Kubernetes 1.24; use audit.k8s.io/v1"
        return Problem(
            "error",
            "decode",
            f'failed decoding: no kind "{kind}" is registered for version "{api_version}" '
            f'in scheme "{SCHEME_LOCATION}"',
            source,
            1,
            hint=hint or "use apiVersion: audit.k8s.io/v1 and kind: Policy",
        )
    if kind != "Policy":
        short = api_version.rsplit("/", 1)[-1]
        return Problem(
            "error",
            "decode",
            f"failed decoding: converting ({short}.{kind}) to (audit.Policy): unknown conversion",
            source,
            1,
            hint="kind must be Policy",
        )
    if api_version != "audit.k8s.io/v1":
        text = (
            f'"{api_version}" is deprecated and will be removed in a future release, '
            'use "audit.k8s.io/v1" instead'
            if warns_deprecated_api_version(version)
            else f"{api_version} loads in Kubernetes {format_version(version)}"
        )
        warnings.append(
            Problem("warning", "deprecated-api-version",
                    f"{text}; kube-apiserver 1.24 and later reject it", source, 1, "apiVersion",
                    fix="apiVersion: audit.k8s.io/v1")
        )
    return None


def _build_policy(
    doc: dict[str, Any],
    text: str,
    source: str | None,
    version: Version,
    warnings: list[Problem],
    parsed: _Parsed,
    empty_fields: set[str],
) -> Policy:
    rules = []
    for i, raw in enumerate(doc.get("rules", [])):
        resources = tuple(
            GroupResources(
                group=gr.get("group", "") or "",
                resources=tuple(gr.get("resources", ()) or ()),
                resource_names=tuple(gr.get("resourceNames", ()) or ()),
            )
            for gr in raw.get("resources", ()) or ()
        )
        rules.append(
            PolicyRule(
                level=Level(raw["level"]),
                users=tuple(raw.get("users", ())),
                user_groups=tuple(raw.get("userGroups", ())),
                verbs=tuple(raw.get("verbs", ())),
                resources=resources,
                namespaces=tuple(raw.get("namespaces", ())),
                non_resource_urls=tuple(raw.get("nonResourceURLs", ())),
                omit_stages=frozenset(Stage(s) for s in raw.get("omitStages", ())),
                omit_managed_fields=raw.get("omitManagedFields"),
                line=parsed.lines.get(("rules", i)),
            )
        )
    positions = _Positions(parsed.lines)
    return Policy(
        rules=tuple(rules),
        omit_stages=frozenset(Stage(s) for s in doc.get("omitStages", ())),
        omit_managed_fields=bool(doc.get("omitManagedFields", False)),
        source=source,
        text=text,
        warnings=warnings,
        api_version=_detected_api_version(parsed.value),
        target_version=version,
        positions=positions,
        empty_fields=frozenset(empty_fields),
        metadata=doc.get("metadata"),
        ignored_documents=tuple(parsed.ignored),
    )


def _detected_api_version(value: Any) -> str:
    """The apiVersion as GVK detection saw it (keys matched case-insensitively)."""
    found = "audit.k8s.io/v1"
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() == "apiversion" and isinstance(item, str) and item:
                found = item
    return found

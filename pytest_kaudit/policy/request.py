"""The attributes the audit checker sees, derived from an HTTP request
(kubernetes ``apiserver/pkg/endpoints/request/requestinfo.go``).

``RequestAttributes.from_http`` reproduces the apiserver's ``RequestInfoFactory`` (API prefixes
``api`` and ``apis``; ``api`` is groupless), so a test can predict the decision for a raw request.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_SPECIAL_VERBS = frozenset(("proxy", "watch"))
_SPECIAL_VERBS_NO_SUBRESOURCES = frozenset(("proxy",))
_NAMESPACE_SUBRESOURCES = frozenset(("status", "finalize"))
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update",
                 "PATCH": "patch", "DELETE": "delete"}
#: kube-apiserver's long-running check (kubernetes ``cmd/kube-apiserver/app/server.go`` passes
#: these to ``BasicLongRunningRequestCheck`` in ``staging/src/k8s.io/apiserver/pkg/server/``
#: ``filters/longrunning.go``): such requests are held open and answered as a raw stream.
LONG_RUNNING_VERBS = frozenset(("watch", "proxy"))
LONG_RUNNING_SUBRESOURCES = frozenset(("attach", "exec", "proxy", "log", "portforward"))
_INT_QUERY_PARAMS = ("limit", "timeoutSeconds")
#: Verbs of resource requests, commonest first: from the HTTP method, ``list``/``watch``/
#: ``deletecollection`` for a request naming no object, ``proxy``/``watch`` from the legacy path
#: prefixes (``RequestInfoFactory`` below).
RESOURCE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete",
                  "deletecollection", "proxy")
#: Verbs of non-resource requests: the lower-cased HTTP method.
NON_RESOURCE_VERBS = ("get", "post", "put", "patch", "delete", "head", "options")


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """What ``checker.go`` matches against. ``user=None`` means unauthenticated (a 401)."""

    user: str | None = None
    groups: tuple[str, ...] = ()
    verb: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    api_group: str = ""
    api_version: str = ""
    path: str = ""
    is_resource_request: bool = False

    @property
    def is_long_running(self) -> bool:
        """kube-apiserver's long-running rule: these requests also emit ResponseStarted."""
        if self.verb in LONG_RUNNING_VERBS:
            return True
        if self.is_resource_request:
            return self.subresource in LONG_RUNNING_SUBRESOURCES
        return self.path.startswith("/debug/pprof/")

    @property
    def streams_response(self) -> bool:
        """A watch or a streaming subresource (log, exec, ...): the answer is a raw stream,
        never an object, so a successful one logs no ``responseObject``.
        """
        return self.verb == "watch" or self.subresource in LONG_RUNNING_SUBRESOURCES

    @classmethod
    def from_http(
        cls,
        method: str,
        path_with_query: str,
        *,
        user: str | None = None,
        groups: tuple[str, ...] | list[str] = (),
    ) -> RequestAttributes:
        """Derive the attributes exactly as the apiserver's ``RequestInfoFactory`` does.

        Raises:
            ValueError: a path the apiserver itself cannot resolve (``/api/v1/watch``); such
                requests fail before the audit filter and produce no events.
        """
        split = urlsplit(path_with_query)
        path = unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        base = {"user": user, "groups": tuple(groups), "path": path}
        non_resource = cls(verb=method.lower(), **base)  # type: ignore[arg-type]
        parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
        if len(parts) < 3 or parts[0] not in ("api", "apis"):
            return non_resource
        prefix, parts = parts[0], parts[1:]
        group = ""
        if prefix == "apis":
            if len(parts) < 3:
                return non_resource
            group, parts = parts[0], parts[1:]
        version, parts = parts[0], parts[1:]
        if parts[0] in _SPECIAL_VERBS:
            if len(parts) < 2:
                raise ValueError(
                    f"unable to determine kind and namespace from url, {path_with_query}"
                )
            verb, parts = parts[0], parts[1:]
        else:
            verb = _METHOD_VERBS.get(method.upper(), "")
        namespace = ""
        if parts[0] == "namespaces" and len(parts) > 1:
            namespace = parts[1]
            if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
                parts = parts[2:]
        resource = parts[0] if parts else ""
        name = parts[1] if len(parts) >= 2 else ""
        subresource = ""
        if len(parts) >= 3 and verb not in _SPECIAL_VERBS_NO_SUBRESOURCES:
            subresource = parts[2]
        if not name and verb == "get":
            verb, name = _list_or_watch(query)
        if not name and verb == "delete":
            verb = "deletecollection"
        return cls(
            user=user,
            groups=tuple(groups),
            verb=verb,
            namespace=namespace,
            resource=resource,
            subresource=subresource,
            name=name,
            api_group=group,
            api_version=version,
            path=path,
            is_resource_request=True,
        )


def _truthy(values: list[str]) -> bool:
    """``Convert_Slice_string_To_bool``: only ``0`` and ``false`` (any case) are false."""
    if not values:
        return False
    return not (values[0] == "0" or values[0].lower() == "false")


def _list_or_watch(query: dict[str, list[str]]) -> tuple[str, str]:
    """Verb (list/watch) and name (from ``metadata.name=`` field selectors) of a nameless GET."""
    watch = _truthy(query.get("watch", []))
    verb = "watch" if watch else "list"
    try:
        for param in _INT_QUERY_PARAMS:
            values = query.get(param)
            if values and values[0] != "":
                int(values[0], 10)
        selector = query.get("fieldSelector", [""])[0]
        name = _exact_name(selector)
    except ValueError:
        # The apiserver resets the options on any parse error; only watch survives.
        return verb, ""
    if name is None or not _is_valid_path_segment(name):
        return verb, ""
    return verb, name


def _split_terms(selector: str) -> list[str]:
    terms, current, escaped = [], [], False
    for ch in selector:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == ",":
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return terms


def _unescape(value: str) -> str:
    out, escaped = [], False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise ValueError(f"invalid field selector value escape: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise ValueError("invalid field selector value: unescaped " + ch)
        else:
            out.append(ch)
    if escaped:
        raise ValueError("invalid field selector value: trailing backslash")
    return "".join(out)


def _exact_name(selector: str) -> str | None:
    """``fields.ParseSelector(s).RequiresExactMatch("metadata.name")``; raises if unparsable."""
    if not selector.strip():
        return None
    found: str | None = None
    for term in sorted(_split_terms(selector)):
        if term == "":
            continue
        for i in range(len(term)):
            rest = term[i:]
            op = next((o for o in ("!=", "==", "=") if rest.startswith(o)), None)
            if op is not None:
                lhs, rhs = term[:i], term[i + len(op):]
                break
        else:
            raise ValueError(f"invalid selector: '{selector}'; can't understand '{term}'")
        value = _unescape(rhs)
        if found is None and lhs == "metadata.name" and op != "!=":
            found = value
    return found


def _is_valid_path_segment(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "%" not in name

"""Strict reading of a user's kind config (``kind.x-k8s.io/v1alpha4``), with file:line:field errors.

kind decodes its config with unknown fields as errors, so a typo such as ``nodez:`` stops
``kind create cluster`` after kaudit has already prepared everything; kaudit refuses it up
front instead, naming the line and the field kind knows. Node images are checked against the
image reference grammar container engines use. Sources: docs/kind.md.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml

from pytest_kaudit.policy.problems import Problem

#: yaml nodes visited before a config counts as an alias bomb (kind's yaml.v3 refuses those too).
MAX_YAML_NODES = 100_000
#: Problems listed for one config; past this the rest would only repeat them.
MAX_PROBLEMS = 50

_STR, _BOOL, _INT = "string", "bool", "int32"
_Schema = Any  # a type name, ("list", schema), ("map", schema) or (type, {field: schema})

_MOUNT: _Schema = (
    "Mount",
    {
        "containerPath": _STR,
        "hostPath": _STR,
        "readOnly": _BOOL,
        "selinuxRelabel": _BOOL,
        "propagation": _STR,
    },
)
_PORT: _Schema = (
    "PortMapping",
    {"containerPort": _INT, "hostPort": _INT, "listenAddress": _STR, "protocol": _STR},
)
_JSON6902: _Schema = (
    "PatchJSON6902",
    {"group": _STR, "version": _STR, "kind": _STR, "patch": _STR},
)
_NODE: _Schema = (
    "Node",
    {
        "role": _STR,
        "image": _STR,
        "labels": ("map", _STR),
        "extraMounts": ("list", _MOUNT),
        "extraPortMappings": ("list", _PORT),
        "gpus": _STR,
        "kubeadmConfigPatches": ("list", _STR),
        "kubeadmConfigPatchesJSON6902": ("list", _JSON6902),
    },
)
_NETWORKING: _Schema = (
    "Networking",
    {
        "ipFamily": _STR,
        "apiServerPort": _INT,
        "apiServerAddress": _STR,
        "podSubnet": _STR,
        "serviceSubnet": _STR,
        "disableDefaultCNI": _BOOL,
        "kubeProxyMode": _STR,
        "dnsSearch": ("list", _STR),
    },
)
CLUSTER_SCHEMA: _Schema = (
    "Cluster",
    {
        "kind": _STR,
        "apiVersion": _STR,
        "name": _STR,
        "nodes": ("list", _NODE),
        "networking": _NETWORKING,
        "featureGates": ("map", _BOOL),
        "runtimeConfig": ("map", _STR),
        "kubeadmConfigPatches": ("list", _STR),
        "kubeadmConfigPatchesJSON6902": ("list", _JSON6902),
        "containerdConfigPatches": ("list", _STR),
        "containerdConfigPatchesJSON6902": ("list", _STR),
    },
)
#: Fields whose value is one of a fixed set.
ENUMS: dict[str, tuple[str, ...]] = {
    "role": ("control-plane", "worker"),
    "propagation": ("None", "HostToContainer", "Bidirectional"),
    "protocol": ("TCP", "UDP", "SCTP"),
    "ipFamily": ("ipv4", "ipv6", "dual"),
    "kubeProxyMode": ("iptables", "ipvs", "nftables", "none"),
}

# The image reference grammar (name[:tag][@digest]), as container engines parse it.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_NAME = rf"(?:{_HOST}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_MAX_NAME = 255


def image_problem(image: str) -> str | None:
    """Why ``image`` is not a valid image reference, or None when it is."""
    match = IMAGE_REFERENCE.match(image)
    if match is None:
        if image != image.strip() or any(c.isspace() for c in image):
            return f"image {image!r} contains whitespace"
        if any(c.isupper() for c in image.split("/")[-1].split(":")[0].split("@")[0]):
            return f"image {image!r}: repository names must be lower-case"
        return (
            f"image {image!r} is not a valid image reference "
            "(NAME[:TAG][@sha256:DIGEST], e.g. kindest/node:v1.31.12@sha256:<64 hex digits>)"
        )
    if len(match["name"]) > _MAX_NAME:
        return f"image {image!r}: repository name longer than {_MAX_NAME} characters"
    return None


class KindConfigError(ValueError):
    """A kind config kind would refuse; ``problems`` name file, line and field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def load_kind_config(text: str, source: str) -> dict[str, Any]:
    """Decode a kind config strictly; raise :class:`KindConfigError` listing every problem.

    An empty document is kind's default (one control-plane node).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        raise KindConfigError(
            [Problem("error", "yaml", f"not valid YAML ({problem})", source, line)]
        ) from None
    if node is None:
        return {}
    problems: list[Problem] = []
    _Walker(source, problems).check(node, CLUSTER_SCHEMA, "")
    if problems:
        raise KindConfigError(problems)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):  # pragma: no cover - the walker refuses non-mappings
        raise KindConfigError([Problem("error", "type", "not a mapping", source, 1)])
    for index, n in enumerate(data.get("nodes") or []):
        image = n.get("image")
        if isinstance(image, str):
            reason = image_problem(image)
            if reason:
                problems.append(
                    Problem("error", "image", reason, source,
                            _line_of(node, "nodes", index, "image"), f"nodes[{index}].image")
                )
    if problems:
        raise KindConfigError(problems)
    return data


def _line_of(node: yaml.Node, *path: str | int) -> int | None:
    """1-based line of the value at ``path`` in a composed document."""
    for step in path:
        if isinstance(step, int) and isinstance(node, yaml.SequenceNode):
            if step >= len(node.value):
                return None
            node = node.value[step]
        elif isinstance(step, str) and isinstance(node, yaml.MappingNode):
            found = [v for k, v in node.value if getattr(k, "value", None) == step]
            if not found:
                return None
            node = found[0]
        else:
            return None
    return int(node.start_mark.line) + 1


def entry_line(text: str, *path: str | int) -> int | None:
    """Line of a field in a kind config's text (for findings about patch contents)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    return _line_of(node, *path) if node is not None else None


class _Walker:
    """Checks a composed YAML tree against the schema, with a bound on nodes visited."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        self.visited = 0

    def add(self, node: yaml.Node, field: str, message: str, hint: str | None = None) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            return
        self.problems.append(
            Problem("error", "schema", message, self.source, node.start_mark.line + 1, field,
                    hint=hint)
        )

    def check(self, node: yaml.Node, schema: _Schema, field: str) -> None:
        self.visited += 1
        if self.visited > MAX_YAML_NODES:
            if self.visited == MAX_YAML_NODES + 1:
                self.add(node, field, f"more than {MAX_YAML_NODES} YAML nodes (excessive "
                         "aliasing?); a kind config is far smaller")
            return
        if isinstance(schema, tuple) and schema[0] in ("list", "map"):
            self._container(node, schema, field)
        elif isinstance(schema, tuple):
            self._struct(node, schema, field)
        else:
            self._scalar(node, schema, field)

    def _container(self, node: yaml.Node, schema: _Schema, field: str) -> None:
        kind, inner = schema
        if kind == "list":
            if _is_null(node):
                return
            if not isinstance(node, yaml.SequenceNode):
                self.add(node, field, f"must be a list, not {_describe(node)}")
                return
            for index, item in enumerate(node.value):
                self.check(item, inner, f"{field}[{index}]")
            return
        if _is_null(node):
            return
        if not isinstance(node, yaml.MappingNode):
            self.add(node, field, f"must be a mapping, not {_describe(node)}")
            return
        for key, value in node.value:
            self.check(value, inner, f"{field}.{key.value}")

    def _struct(self, node: yaml.Node, schema: _Schema, field: str) -> None:
        type_name, fields = schema
        if _is_null(node) and field:
            return
        if not isinstance(node, yaml.MappingNode):
            what = "a kind Cluster config" if not field else f"a {type_name}"
            self.add(node, field, f"must be {what} (a mapping), not {_describe(node)}")
            return
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            path = f"{field}.{name}" if field else name
            if name in seen:
                self.add(key, path, "mapping key already defined")
                continue
            seen.add(name)
            if name not in fields:
                close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
                self.add(
                    key, path, f"unknown field: kind has no {name!r} in {type_name}",
                    hint=f"did you mean {close[0]}?" if close else
                    f"known fields: {', '.join(fields)}",
                )
                continue
            self.check(value, fields[name], path)

    def _scalar(self, node: yaml.Node, schema: str, field: str) -> None:
        if not isinstance(node, yaml.ScalarNode):
            self.add(node, field, f"must be a {schema}, not {_describe(node)}")
            return
        tag = node.tag.rsplit(":", 1)[-1]
        if tag == "null":
            return
        if schema == _BOOL and tag != "bool":
            self.add(node, field, f"must be true or false, not {node.value!r}")
        elif schema == _INT and tag != "int":
            self.add(node, field, f"must be an integer, not {node.value!r}")
        elif schema == _STR and tag not in ("str", "int", "float", "bool"):
            self.add(node, field, f"must be a string, not {node.value!r}")
        name = field.rsplit(".", 1)[-1]
        if schema == _STR and name in ENUMS and node.value not in ENUMS[name]:
            close = difflib.get_close_matches(node.value, ENUMS[name], n=1, cutoff=0.6)
            self.add(
                node, field, f"{node.value!r} is not one of {', '.join(ENUMS[name])}",
                hint=f"did you mean {close[0]}?" if close else None,
            )


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(node.value)


"""Read kube-apiserver flags out of the files users keep them in.

A flags file is turned into the argv kube-apiserver would receive, one :class:`FlagArg` per
element with the line it came from; :func:`pytest_kaudit.policy.flags.validate_flags` then
judges that argv the way kube-apiserver's flag parser would. Reading never judges a flag: a
single-dash flag or a flag without its value is passed on as written, so the finding can say
what kube-apiserver does with it. The form is detected from the content:

- a Pod (static-pod manifest) or a workload whose container runs kube-apiserver:
  its ``command`` followed by its ``args``;
- a kubeadm ``ClusterConfiguration``: ``apiServer.extraArgs``, as a map (v1beta1-v1beta3) or
  as a ``name``/``value`` list (v1beta4), rendered ``--name=value`` as kubeadm does;
- a kind ``Cluster`` config: the ``ClusterConfiguration`` patches in ``kubeadmConfigPatches``,
  the cluster's first, then each control-plane node's, in the order kind applies them;
- a systemd unit or a bare ``ExecStart=`` line, with or without ``\\`` continuations;
- a manifest fragment (``- --flag=value`` list items, as pasted from documentation);
- anything else: one or more flags per line, shell-quoted, ``#`` comments.

Lines that carry no flag in a fragment or unit (``......``, ``apiVersion: v1``) are skipped
and each skip is reported as a note, so nothing is dropped silently.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

import yaml
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pytest_kaudit.policy.problems import Problem

__all__ = [
    "MAX_FLAGS_FILE_BYTES",
    "FlagArg",
    "FlagSource",
    "FlagSourceError",
    "read_flag_source",
]

#: Largest flags file read: a kube-apiserver command line is a few kilobytes.
MAX_FLAGS_FILE_BYTES = 1024 * 1024
#: YAML aliases allowed in a flags file; manifests and kubeadm configs use none.
MAX_YAML_ALIASES = 100
#: YAML nesting allowed; a kind config, the deepest form, nests about ten levels.
MAX_YAML_DEPTH = 100
#: Skipped lines reported one by one; the rest are counted in one last note.
MAX_SKIP_NOTES = 10

_SHELLS = ("sh", "bash", "dash", "ash")
_STR_TAG = "tag:yaml.org,2002:str"
_LIST_ITEM_RE = re.compile(r"^\s*-\s+(\S.*?)\s*$")
_EXEC_START_RE = re.compile(r"^\s*ExecStart\s*=(.*)$")
_ENV_REF_RE = re.compile(r"^\$(?:\{\w+\}|\w+)$")
_YAML_KEY_RE = re.compile(r"^\s*(?:-\s+)?[\w./-]+:(?:\s|$)")
_KIND_RE = re.compile(r"^[A-Za-z][\w.-]{0,62}$")
_SHELL_SYNTAX_RE = re.compile(r"""['"\\#]""")
_DOTS_RE = re.compile(r"^[\s.…]+$")


class FlagSourceError(ValueError):
    """The file holds no kube-apiserver command line we can read; the message says why."""


@dataclass(frozen=True)
class FlagArg:
    """One argv element as kube-apiserver receives it, and the 1-based line it came from."""

    text: str
    line: int | None = None


@dataclass(frozen=True)
class FlagSource:
    """The argv read from a file, the form it was read as, and what was found on the way.

    ``problems`` are errors of the file itself that the consumer refuses (kubeadm rejecting an
    unquoted ``extraArgs`` value, a line that cannot be split); ``notes`` say what was skipped
    or not checked, and do not make the configuration wrong.
    """

    form: str
    args: tuple[FlagArg, ...]
    problems: tuple[Problem, ...] = ()
    notes: tuple[Problem, ...] = ()
    source: str | None = None

    @property
    def argv(self) -> list[str]:
        """The argv elements without their lines."""
        return [a.text for a in self.args]


@dataclass
class _Reader:
    source: str | None
    args: list[FlagArg] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: int = 0
    structure: int = 0
    first_structure: str = ""

    def note(self, message: str, line: int | None, *, code: str = "flags-file") -> None:
        self.notes.append(Problem("warning", code, message, self.source, line))

    def refuse(self, message: str, line: int | None, *, code: str) -> None:
        self.problems.append(Problem("error", code, message, self.source, line))

    def skip(self, line: int, text: str, why: str = "not a flag") -> None:
        self.skipped += 1
        if self.skipped <= MAX_SKIP_NOTES:
            self.note(f"{why}, ignored: {text.strip()!r}", line, code="not-a-flag")

    def done(self, form: str) -> FlagSource:
        if self.skipped > MAX_SKIP_NOTES:
            self.note(f"{self.skipped - MAX_SKIP_NOTES} more lines that are not flags were "
                      "ignored", None, code="not-a-flag")
        if self.structure:
            self.note(f"{self.structure} lines of YAML structure (such as "
                      f"{self.first_structure!r}) were ignored", None, code="not-a-flag")
        return FlagSource(form, tuple(self.args), tuple(self.problems), tuple(self.notes),
                          self.source)


def read_flag_source(text: str, source: str | None = None) -> FlagSource:
    """Read the kube-apiserver argv out of ``text`` (any form listed in the module docstring).

    ``source`` names the file in notes. The result's ``args`` go to ``validate_flags``.

    Raises:
        FlagSourceError: the text is too large, or is a manifest/config that holds no
            kube-apiserver command line.
    """
    size = len(text.encode("utf-8", "surrogateescape"))
    if size > MAX_FLAGS_FILE_BYTES:
        raise FlagSourceError(
            f"{size} bytes is over the {MAX_FLAGS_FILE_BYTES} byte limit for a flags file "
            "(a kube-apiserver command line is a few kilobytes)")
    reader = _Reader(source)
    docs, yaml_error = _compose(text) if _KIND_LINE_RE.search(text) else (None, "")
    if docs is not None:
        form = _read_structured(docs, reader)
        if form is not None:
            return reader.done(form)
        kinds = [k for d in docs if _KIND_RE.match(k := _scalar(_get(d, "kind")) or "")]
        if kinds:
            raise FlagSourceError(
                f"a YAML document of kind {kinds[0]} with no kube-apiserver command line "
                "(expected a Pod or workload running kube-apiserver, a kubeadm "
                "ClusterConfiguration or a kind Cluster config)")
    lines = text.splitlines()
    if any(_EXEC_START_RE.match(line) for line in lines):
        _read_systemd(lines, reader)
        return reader.done("systemd")
    if any(_is_flag_item(line) for line in lines):
        if yaml_error:
            reader.note(f"not valid YAML ({yaml_error}): read as a manifest fragment, taking "
                        "only its '- --flag' list items", None, code="manifest-fragment")
        _read_fragment(lines, reader)
        return reader.done("manifest-fragment")
    _read_plain(lines, reader)
    return reader.done("flags")


# -- YAML forms ---------------------------------------------------------------------------------

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
#: Only these forms are YAML, and each names its ``kind``; other text skips the YAML parser.
_KIND_LINE_RE = re.compile(r"""^\s*["']?kind["']?\s*:""", re.MULTILINE)


def _check_bounds(text: str) -> None:
    """Refuse alias-heavy or deeply nested YAML before building anything from it."""
    aliases = depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise FlagSourceError(
                    f"more than {MAX_YAML_ALIASES} YAML aliases: refused (a manifest or kubeadm "
                    "config needs none)")
        elif isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise FlagSourceError(
                    f"YAML nested more than {MAX_YAML_DEPTH} levels deep: refused")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _compose(text: str) -> tuple[list[Node] | None, str]:
    """The YAML documents as nodes (they keep line numbers), or None and why it is not YAML."""
    try:
        _check_bounds(text)
        return [d for d in yaml.compose_all(text, Loader=_LOADER) if d is not None], ""
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return None, f"{where}{exc.problem or exc}"
    except yaml.YAMLError as exc:
        return None, str(exc)


def _get(node: Node | None, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    found: Node | None = None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            found = v
    return found


def _scalar(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def _items(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def _line(node: Node, offset: int = 0) -> int:
    return int(node.start_mark.line) + 1 + offset


def _read_structured(docs: list[Node], reader: _Reader, offset: int = 0) -> str | None:
    """Read recognised documents; None when no document is a form we know."""
    form: str | None = None
    for doc in docs:
        kind = _scalar(_get(doc, "kind"))
        if kind == "ClusterConfiguration":
            _read_kubeadm(doc, reader, offset)
            form = form or "kubeadm"
        elif kind == "Cluster" and (_scalar(_get(doc, "apiVersion")) or "").startswith("kind."):
            _read_kind(doc, reader)
            form = form or "kind"
        elif _containers(doc):
            _read_workload(doc, reader)
            form = form or "static-pod"
    return form


def _containers(doc: Node) -> list[Node]:
    spec = _get(doc, "spec")
    template_spec = _get(_get(spec, "template"), "spec")
    return _items(_get(spec, "containers")) or _items(_get(template_spec, "containers"))


def _is_apiserver(word: str) -> bool:
    return word.rsplit("/", 1)[-1] == "kube-apiserver"


def _read_workload(doc: Node, reader: _Reader) -> None:
    for container in _containers(doc):
        command = _items(_get(container, "command"))
        words = [_scalar(n) or "" for n in command]
        named = _scalar(_get(container, "name")) == "kube-apiserver"
        if not named and not any(_is_apiserver(w) for w in words[:2]):
            continue
        if len(words) >= 3 and words[0].rsplit("/", 1)[-1] in _SHELLS and words[1] == "-c":
            _read_shell_script(words[2], _line(command[2]), reader)
            return
        items = command + _items(_get(container, "args"))
        if items and _is_apiserver(_scalar(items[0]) or ""):
            items = items[1:]
        for item in items:
            value = _scalar(item)
            if value is None:
                reader.refuse("a command element that is not a string, ignored", _line(item),
                              code="flag-syntax")
            else:
                reader.args.append(FlagArg(value, _line(item)))
        return
    raise FlagSourceError(
        "a Pod manifest without a kube-apiserver container (no container is named "
        "kube-apiserver or runs it)")


def _read_shell_script(script: str, line: int, reader: _Reader) -> None:
    try:
        words = shlex.split(script)
    except ValueError as exc:
        raise FlagSourceError(f"line {line}: the sh -c script cannot be split: {exc}") from None
    starts = [i for i, w in enumerate(words) if _is_apiserver(w)]
    if not starts:
        raise FlagSourceError(f"line {line}: the sh -c script does not run kube-apiserver")
    reader.args += [FlagArg(w, line) for w in words[starts[0] + 1:]]


def _read_kubeadm(doc: Node, reader: _Reader, offset: int) -> None:
    api_version = _scalar(_get(doc, "apiVersion")) or ""
    extra = _get(_get(doc, "apiServer"), "extraArgs")
    if extra is None:
        return
    if isinstance(extra, MappingNode):
        if api_version.endswith("/v1beta4"):
            reader.refuse(f"{api_version} takes extraArgs as a list of name/value pairs; kubeadm "
                          "refuses this map", _line(extra, offset), code="extra-args-form")
        for key, value in extra.value:
            name = _scalar(key) or ""
            if not isinstance(value, ScalarNode):
                reader.refuse(f"apiServer.extraArgs.{name}: not a string; kubeadm refuses the "
                              "config", _line(value, offset), code="extra-args-type")
                continue
            if value.tag != _STR_TAG:
                reader.refuse(f"apiServer.extraArgs.{name}: {value.value} is not a string; "
                              f'kubeadm refuses the config (quote it: "{value.value}")',
                              _line(value, offset), code="extra-args-type")
            reader.args.append(FlagArg(f"--{name}={value.value}", _line(key, offset)))
        return
    if isinstance(extra, SequenceNode):
        if api_version and not api_version.endswith("/v1beta4"):
            reader.refuse(f"{api_version} takes extraArgs as a map; kubeadm refuses this list",
                          _line(extra, offset), code="extra-args-form")
        for item in extra.value:
            item_name = _scalar(_get(item, "name"))
            text = _scalar(_get(item, "value"))
            if not item_name:
                reader.refuse("apiServer.extraArgs entry without a name, ignored",
                              _line(item, offset), code="extra-args-form")
                continue
            reader.args.append(FlagArg(f"--{item_name}={text or ''}", _line(item, offset)))
        return
    reader.refuse("apiServer.extraArgs is neither a map nor a list, ignored",
                  _line(extra, offset), code="extra-args-form")


def _read_kind(doc: Node, reader: _Reader) -> None:
    patches = list(_items(_get(doc, "kubeadmConfigPatches")))
    for node in _items(_get(doc, "nodes")):
        if (_scalar(_get(node, "role")) or "control-plane") == "control-plane":
            patches += _items(_get(node, "kubeadmConfigPatches"))
    for key in ("kubeadmConfigPatchesJSON6902",):
        found = _get(doc, key)
        if found is not None:
            reader.note(f"{key} is not read: flags it sets are not checked", _line(found))
    for patch in patches:
        if not isinstance(patch, ScalarNode):
            continue
        text = patch.value
        # A block scalar's text starts on the line after its indicator.
        offset = int(patch.start_mark.line) + (1 if patch.style in ("|", ">") else 0)
        docs, _ = _compose(text)
        if docs is None:
            reader.note("a kubeadmConfigPatches entry that is not YAML, ignored", _line(patch))
            continue
        for sub in docs:
            if _scalar(_get(sub, "kind")) == "ClusterConfiguration":
                _read_kubeadm(sub, reader, offset)


# -- text forms ---------------------------------------------------------------------------------

def _is_flag_item(line: str) -> bool:
    match = _LIST_ITEM_RE.match(line)
    return bool(match) and _unquote(match.group(1) if match else "").startswith("-")


def _unquote(item: str) -> str:
    if len(item) >= 2 and item[0] == item[-1] and item[0] in "'\"":
        try:
            value = yaml.safe_load(item)
        except yaml.YAMLError:
            return item[1:-1]
        return value if isinstance(value, str) else item[1:-1]
    return item


def _read_fragment(lines: list[str], reader: _Reader) -> None:
    """``- --flag`` list items as pasted from a manifest; every other line is skipped."""
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LIST_ITEM_RE.match(line)
        item = _unquote(match.group(1)) if match else ""
        if item.startswith("-"):
            reader.args.append(FlagArg(item, number))
        elif _YAML_KEY_RE.match(line):
            reader.structure += 1
            reader.first_structure = reader.first_structure or stripped
        else:
            reader.skip(number, line)


def _split_line(line: str, number: int, reader: _Reader, *, comments: bool) -> list[str]:
    if not _SHELL_SYNTAX_RE.search(line):
        return line.split()  # nothing to unquote: the same words, much faster than shlex
    try:
        return shlex.split(line, comments=comments)
    except ValueError as exc:
        reader.refuse(f"cannot split this line ({exc}), ignored: {line.strip()!r}", number,
                      code="flag-syntax")
        return []


def _continued(line: str) -> tuple[str, bool]:
    stripped = line.rstrip()
    if stripped.endswith("\\"):
        return stripped[:-1], True
    return line, False


def _read_systemd(lines: list[str], reader: _Reader) -> None:
    """The last non-empty ``ExecStart=`` (systemd runs that one), with its continuations."""
    starts = [(i, str(m.group(1))) for i, line in enumerate(lines)
              if (m := _EXEC_START_RE.match(line)) and m.group(1).strip()]
    if not starts:
        raise FlagSourceError("the unit's ExecStart= lines are all empty")
    first, text = starts[-1]
    words: list[FlagArg] = []
    index = first
    continued = True
    while continued:
        body, continued = _continued(text)
        number = index + 1
        if index != first and body.lstrip()[:1] in ("#", ";"):
            continued = True  # systemd drops comment lines inside a continued value
        elif _DOTS_RE.match(body) and body.strip():
            reader.skip(number, body)
        else:
            words += [FlagArg(w, number)
                      for w in _split_line(body, number, reader, comments=False)]
        index += 1
        if not continued or index >= len(lines):
            break
        text = lines[index]
    # Flag lines right after the command without a trailing "\": systemd would not read
    # them, but they are plainly meant as part of it; read them and say so.
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith("-"):
            reader.note("systemd ends ExecStart= at the previous line (no trailing \"\\\"); "
                        "this flag is read as part of the command anyway", index + 1,
                        code="unit-continuation")
            words += [FlagArg(w, index + 1)
                      for w in _split_line(_continued(line)[0], index + 1, reader,
                                           comments=False)]
        elif _DOTS_RE.match(line) and stripped:
            reader.skip(index + 1, line)
        else:
            break
        index += 1
    _append_command(words, reader, what="ExecStart=")


def _append_command(words: list[FlagArg], reader: _Reader, *, what: str) -> None:
    """Drop everything up to the kube-apiserver program; note unexpanded variables."""
    program = next((i for i, w in enumerate(words)
                    if not w.text.startswith("--") and _is_apiserver(w.text.lstrip("-@:+!"))),
                   None)
    if program is None and words and not words[0].text.startswith("-"):
        raise FlagSourceError(
            f"line {words[0].line}: {what} runs {words[0].text!r}, not kube-apiserver")
    for word in words[(program + 1) if program is not None else 0:]:
        if _ENV_REF_RE.match(word.text):
            reader.note(f"{word.text} is expanded by systemd from outside this file: the flags "
                        "it holds are not checked", word.line, code="unexpanded-variable")
            continue
        reader.args.append(word)


def _read_plain(lines: list[str], reader: _Reader) -> None:
    """Shell-quoted words, any number per line; ``#`` comments, ``\\`` continuations."""
    words: list[FlagArg] = []
    for number, line in enumerate(lines, 1):
        body = _continued(line)[0]
        if _DOTS_RE.match(body) and body.strip():
            reader.skip(number, body)
            continue
        words += [FlagArg(w, number) for w in _split_line(body, number, reader, comments=True)]
    # A pasted command line may start with a wrapper (`sudo -E`, `exec`): the argv is what
    # follows the kube-apiserver word, when one comes before the first --flag.
    leading = next((i for i, w in enumerate(words) if w.text.startswith("--")), len(words))
    program = next((i for i in range(leading) if _is_apiserver(words[i].text)), None)
    reader.args += words[program + 1:] if program is not None else words


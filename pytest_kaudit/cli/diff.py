"""``kaudit diff OLD NEW``: every class of requests whose level or omitted stages change.

Exact, not sampled: both policies' rules cut the request space into classes
(:class:`pytest_kaudit.policy.space.RequestSpace`). Each product cell is decided for both
policies; cells whose decision differs are merged back into readable lines, a dimension
collapsing to "any" when all its classes show the same change.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_kaudit.cli import Command
from pytest_kaudit.cli.base import (
    EXIT_FINDINGS,
    EXIT_OK,
    Streams,
    add_format_option,
    add_policy_options,
    enum_text,
    load_policy,
)
from pytest_kaudit.policy.model import LEVEL_RANK
from pytest_kaudit.policy.space import (
    SENSITIVE,
    Dimension,
    RequestSpace,
    factorize,
    first_rule,
)

if TYPE_CHECKING:
    from pytest_kaudit.policy import Policy, RequestAttributes

# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True, order=True)
class Outcome:
    """A policy's decision for a class: level, effective omitted stages, deciding rule."""

    level: str
    omit_stages: tuple[str, ...]
    rule: int | None

    def describe(self, *, show_stages: bool) -> str:
        """``Metadata`` or ``Metadata (omit RequestReceived)``."""
        if show_stages and self.level != "None":
            omitted = ", ".join(self.omit_stages) or "none"
            return f"{self.level} (omit {omitted})"
        return self.level

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"level": self.level, "omit_stages": list(self.omit_stages), "rule": self.rule}


def _outcomes(policy: Policy) -> Callable[[int | None], Outcome]:
    def outcome(index: int | None) -> Outcome:
        decision = policy.decision_of_rule(index)
        omitted = tuple(s.value for s in sorted(decision.omit_stages, key=lambda s: s.rank))
        return Outcome(enum_text(decision.level), omitted, index)

    return outcome


def changed(old: Outcome, new: Outcome) -> bool:
    """Level differs, or stages differ while something is logged."""
    if old.level != new.level:
        return True
    return old.level != "None" and old.omit_stages != new.omit_stages


# --------------------------------------------------------------------------- rendering


def _render_values(
    members: Sequence[Any],
    domain: Sequence[Any],
    other: Any,
    label: Callable[[Any], str],
    noun: str,
) -> str:
    """``a, b`` / ``any NOUN`` / ``any NOUN except a, b`` for a subset of a dimension's domain."""
    chosen = set(members)
    if chosen >= set(domain):
        return f"any {noun}"
    if other in chosen:
        missing = [label(v) for v in domain if v not in chosen]
        return f"any {noun} except {', '.join(missing)}"
    return ", ".join(label(v) for v in domain if v in chosen)


def _render_users(space: RequestSpace, members: Sequence[Any], dim: Dimension) -> str:
    text = _render_values(members, dim.domain, space.other_user, str, "user")
    if text == "any user":
        return ""
    return text if text.startswith("any") else f"user{'s' if len(members) > 1 else ''} {text}"


def _render_groups(space: RequestSpace, members: Sequence[Any], dim: Dimension) -> str:
    if len(members) >= len(dim.domain):
        return ""
    parts = []
    listed = sorted({g for rep in dim.domain for g in rep})
    for rep in members:
        parts.append(f"in {'+'.join(rep)}" if rep else f"not in {', '.join(listed)}")
    return " or ".join(parts)


def _render_verbs(space: RequestSpace, members: Sequence[Any], dim: Dimension) -> str:
    return _render_values(members, dim.domain, space.other_verb, str, "verb")


def _render_namespaces(space: RequestSpace, members: Sequence[Any], dim: Dimension) -> str:
    def label(ns: str) -> str:
        return '"" (cluster-scoped/all namespaces)' if ns == "" else ns

    text = _render_values(members, dim.domain, space.other_ns, label, "namespace")
    return "in " + text if text.startswith("any") else "in namespace " + text


def _render_paths(space: RequestSpace, members: Sequence[Any], dim: Dimension) -> str:
    if set(members) >= set(dim.domain):
        return "any non-resource URL"
    return ", ".join(space.path_labels[m] for m in dim.domain if m in set(members))


def _render_targets(space: RequestSpace, members: Sequence[Any], dim: Dimension) -> str:
    chosen = set(members)
    full = set(dim.domain)
    if chosen >= full:
        return "any resource"
    direct = _render_target_set(space, chosen)
    rest = full - chosen
    if len(rest) < len(chosen):
        alt = "any resource except " + _render_target_set(space, rest)
        if len(alt) < len(direct):
            return alt
    return direct


def _render_target_set(space: RequestSpace, points: set[Any]) -> str:
    terms = factorize({tuple((x,) for x in p) for p in points}, 4)
    rendered = [_render_target_term(space, t, space.target_domains) for t in terms]
    return "; ".join(sorted(rendered))


def _render_target_term(
    space: RequestSpace, term: tuple[frozenset[Any], ...], domains: Any
) -> str:
    groups, resources, subs, names = term
    group_dom, _res_dom, sub_dom, name_dom = domains
    # resources: the domain within these groups is what the grid enumerated
    res_domain: set[str] = {space.other_resource}
    for g in groups:
        res_domain |= space.group_resources.get(g, set())
    if set(resources) >= res_domain:
        res_text = "any resource"
    elif space.other_resource in resources:
        res_text = "any resource except " + ", ".join(sorted(res_domain - set(resources)))
    else:
        res_text = ", ".join(sorted(resources))
    sub_set = set(subs)
    if sub_set >= set(sub_dom):
        res_text += " (and subresources)"
    elif sub_set == {""}:
        pass
    else:
        shown = [s for s in sub_dom if s in sub_set and s]
        labels = ["*other*" if s == space.other_sub else s for s in shown]
        if "" in sub_set:
            res_text += " (and /" + ", /".join(labels) + ")"
        else:
            res_text += "/" + (labels[0] if len(labels) == 1 else "{" + ", ".join(labels) + "}")
    group_set = set(groups)
    if group_set >= set(group_dom):
        res_text += " in any API group"
    elif group_set == {""}:
        pass
    else:
        labels = [
            "core" if g == "" else ("other groups" if g == space.other_group else g)
            for g in group_dom
            if g in group_set
        ]
        res_text += " (group " + ", ".join(labels) + ")"
    name_set = set(names)
    if len(name_dom) > 1 and not name_set >= set(name_dom):
        res_text += " named " + _render_values(
            list(name_set),
            name_dom,
            space.other_name,
            lambda n: '""' if n == "" else n,
            "name",
        )
    return res_text


_RENDER: dict[str, Callable[[RequestSpace, Sequence[Any], Dimension], str]] = {
    "user": _render_users,
    "groups": _render_groups,
    "verb": _render_verbs,
    "namespace": _render_namespaces,
    "path": _render_paths,
    "target": _render_targets,
}


# --------------------------------------------------------------------------- change classes


@dataclass(frozen=True)
class ChangeClass:
    """A set of requests (a product of per-dimension classes) whose decision changes alike.

    ``axes`` maps each dimension name to the signatures (rule masks) it covers; a request
    belongs to the class when, on every axis, its own signature is one of them.
    """

    kind: str  # "resource" | "non-resource"
    axes: tuple[tuple[str, frozenset[int]], ...]
    old: Outcome
    new: Outcome
    text: str
    sensitive: tuple[str, ...]
    _space: RequestSpace = field(repr=False, compare=False, hash=False)

    def contains(self, attrs: RequestAttributes) -> bool:
        """Whether a concrete request falls in this class."""
        if (self.kind == "resource") != bool(attrs.is_resource_request):
            return False
        dims = {
            d.name: d
            for d in self._space.dimensions(
                "resource" if attrs.is_resource_request else "nonresource"
            )
        }
        return all(dims[name].signature(attrs) in masks for name, masks in self.axes)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "kind": self.kind,
            "text": self.text,
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "sensitive": list(self.sensitive),
        }


def _sensitive_in(
    targets: Iterable[tuple[str, str, str, str]], old: Outcome, new: Outcome
) -> tuple[str, ...]:
    if LEVEL_RANK[new.level] < 2 or LEVEL_RANK[old.level] >= LEVEL_RANK[new.level]:
        return ()
    found = []
    for g, res, sub, label in ((g, r, s, (f"{r}/{s}" if s else r)) for g, r, s in SENSITIVE):
        if any(t[0] == g and t[1] == res and t[2] == sub for t in targets):
            found.append(label)
    return tuple(found)


def diff_classes(old: Policy, new: Policy) -> list[ChangeClass]:
    """Every class of requests whose level or omitted stages differ between two policies."""
    space = RequestSpace([old, new])
    n_old = len(old.rules)
    old_all = (1 << n_old) - 1
    old_outcome, new_outcome = _outcomes(old), _outcomes(new)

    out: list[ChangeClass] = []
    for kind in ("resource", "nonresource"):
        dims = space.dimensions(kind)
        changes: dict[tuple[Outcome, Outcome], set[tuple[tuple[int, ...], ...]]] = defaultdict(set)
        idx_cache: dict[int, tuple[Outcome, Outcome]] = {}

        # nested product with partial masks (bound as defaults: the closure runs in this iteration)
        def walk(
            level: int,
            mask: int,
            cell: tuple[int, ...],
            dims: list[Dimension] = dims,
            idx_cache: dict[int, tuple[Outcome, Outcome]] = idx_cache,
            changes: dict[tuple[Outcome, Outcome], set[tuple[tuple[int, ...], ...]]] = changes,
        ) -> None:
            if level == len(dims):
                pair = idx_cache.get(mask)
                if pair is None:
                    o = first_rule(mask & old_all)
                    n = first_rule(mask >> n_old)
                    pair = (old_outcome(o), new_outcome(n))
                    idx_cache[mask] = pair
                if changed(*pair):
                    changes[pair].add(tuple((i,) for i in cell))
                return
            for i, c in enumerate(dims[level].classes):
                walk(level + 1, mask & c.mask, (*cell, i))

        if kind == "nonresource" and not space.path.classes:
            continue
        walk(0, -1, ())
        for (o, n), cells in changes.items():
            for term in factorize(cells, len(dims)):
                out.append(_make_class(space, kind, dims, term, o, n))
    out.sort(key=lambda c: (not c.sensitive, c.kind != "resource", c.text))
    return out


def _make_class(
    space: RequestSpace,
    kind: str,
    dims: list[Dimension],
    term: tuple[frozenset[int], ...],
    old: Outcome,
    new: Outcome,
) -> ChangeClass:
    axes = tuple(
        (d.name, frozenset(d.classes[i].mask for i in idxs))
        for d, idxs in zip(dims, term, strict=True)
    )
    members = {
        d.name: [m for i in sorted(idxs) for m in d.classes[i].members]
        for d, idxs in zip(dims, term, strict=True)
    }
    labels = {d.name: _RENDER[d.name](space, members[d.name], d) for d in dims}
    sensitive: tuple[str, ...] = ()
    if kind == "resource":
        sensitive = _sensitive_in(members["target"], old, new)
    show_stages = old.level == new.level or (
        old.omit_stages != new.omit_stages and "None" not in (old.level, new.level)
    )
    target = labels["target"] if kind == "resource" else labels["path"]
    on = " on" if labels["verb"].startswith("any verb") or target.startswith("any") else ""
    what = f"{labels['verb']}{on} {target}"
    if kind == "resource":
        what += f" {labels['namespace']}"
    user, groups = labels["user"], labels["groups"]
    if user and groups:
        who = f"by {user} {groups}"
    elif user:
        who = f"by {user}"
    elif groups:
        who = f"by anyone {groups}"
    else:
        who = "by anyone"
    rules = f"{_rule_name(old.rule)} → {_rule_name(new.rule)}"
    text = (
        f"{what} {who}: {old.describe(show_stages=show_stages)} → "
        f"{new.describe(show_stages=show_stages)} ({rules})"
    )
    return ChangeClass(kind, axes, old, new, text, sensitive, space)


def _rule_name(index: int | None) -> str:
    return "no rule" if index is None else f"rule {index}"


# --------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``diff``'s arguments."""
    parser.add_argument("old", metavar="OLD", help="The current audit policy")
    parser.add_argument("new", metavar="NEW", help="The candidate audit policy")
    add_policy_options(parser)
    add_format_option(parser)


def run(args: argparse.Namespace, streams: Streams) -> int:
    """Print the changed request classes; exit 1 when there are any."""
    old = load_policy(args.old, lenient=args.lenient, target_version=args.target_version)
    new = load_policy(args.new, lenient=args.lenient, target_version=args.target_version)
    classes = diff_classes(old, new)
    if args.format == "json":
        streams.json({"old": args.old, "new": args.new, "changes": [c.to_dict() for c in classes]})
        return EXIT_FINDINGS if classes else EXIT_OK
    if not classes:
        streams.print(f"no differences: {args.old} and {args.new} decide every request alike")
        return EXIT_OK
    for c in classes:
        streams.print(c.text)
        if c.sensitive:
            streams.print(
                f"  [!] newly logs request bodies of {', '.join(c.sensitive)} "
                f"(level {c.new.level}): these carry credentials"
            )
    n_sens = sum(1 for c in classes if c.sensitive)
    tail = f", {n_sens} newly logging secret bodies" if n_sens else ""
    streams.print(f"{len(classes)} changed request class{'es' if len(classes) != 1 else ''}{tail}")
    return EXIT_FINDINGS


COMMAND = Command(
    name="diff",
    help="List every class of requests whose audit level or stages change between two policies",
    add_arguments=add_arguments,
    run=run,
    description=__doc__,
)

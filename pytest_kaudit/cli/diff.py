"""``kaudit diff OLD NEW``: every class of requests whose level or omitted stages change.

Exact, not sampled. The request space is partitioned by every value either policy mentions
(users, groups, verbs, namespaces, API groups, resources, subresources, names, URL paths)
plus one "anything else" representative per dimension. Values that no rule can tell apart
are merged first (they have the same *signature*: the set of rules whose field accepts them),
so the product of the per-dimension classes stays small. Each product cell is decided for
both policies; cells whose decision differs are merged back into readable lines, a dimension
collapsing to "any" when all its classes show the same change.

Signatures use the checker's own per-field predicates (:mod:`pytest_kaudit.cli.matching`),
and the first matching rule of a cell is the lowest rule whose bit survives the AND of the
cell's signatures: that is exactly first-match-wins.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_kaudit.cli import Command, matching
from pytest_kaudit.cli.base import (
    EXIT_FINDINGS,
    EXIT_OK,
    LEVEL_RANK,
    STAGE_ORDER,
    Streams,
    add_format_option,
    add_policy_options,
    enum_text,
    load_policy,
)

if TYPE_CHECKING:
    from pytest_kaudit.policy import Policy, PolicyRule, RequestAttributes

#: Representatives for "any value no rule mentions"; suffixed if a policy uses them.
OTHER_USER = "kaudit:other-user"
OTHER_VERB = "kaudit-other-verb"
OTHER_NAMESPACE = "kaudit-other-namespace"
OTHER_GROUP = "kaudit-other.example.com"
OTHER_RESOURCE = "kaudit-other-resources"
OTHER_SUBRESOURCE = "kaudit-other-subresource"
OTHER_NAME = "kaudit-other-name"
OTHER_PATH = "/kaudit-other-path"

#: Resources whose bodies hold credentials: (api_group, resource, subresource).
SENSITIVE = (
    ("", "secrets", ""),
    ("", "configmaps", ""),
    ("authentication.k8s.io", "tokenreviews", ""),
    ("", "serviceaccounts", "token"),
)


def _unique(value: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    out = value
    while out in taken:
        out += "-x"
    return out


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
    policy_omit = {enum_text(s) for s in policy.omit_stages}

    def outcome(index: int | None) -> Outcome:
        if index is None:
            return Outcome("None", tuple(s for s in STAGE_ORDER if s in policy_omit), None)
        rule = policy.rules[index]
        omit = policy_omit | {enum_text(s) for s in rule.omit_stages}
        return Outcome(enum_text(rule.level), tuple(s for s in STAGE_ORDER if s in omit), index)

    return outcome


def changed(old: Outcome, new: Outcome) -> bool:
    """Level differs, or stages differ while something is logged."""
    if old.level != new.level:
        return True
    return old.level != "None" and old.omit_stages != new.omit_stages


# --------------------------------------------------------------------------- dimensions


@dataclass
class DimClass:
    """Values of one dimension that every rule treats alike (same signature)."""

    mask: int
    representative: Any
    members: list[Any] = field(default_factory=list)


@dataclass
class Dimension:
    """One axis of the request space with its classes and its signature function."""

    name: str
    classes: list[DimClass]
    signature: Callable[[RequestAttributes], int]
    domain: list[Any]
    render: Callable[[Sequence[Any], Dimension], str]

    def index_of_mask(self) -> dict[int, int]:
        """mask -> class index."""
        return {c.mask: i for i, c in enumerate(self.classes)}


def _classes(values: Iterable[Any], sig: Callable[[Any], int]) -> list[DimClass]:
    by_mask: dict[int, DimClass] = {}
    for v in values:
        m = sig(v)
        cls = by_mask.get(m)
        if cls is None:
            by_mask[m] = DimClass(m, v, [v])
        else:
            cls.members.append(v)
    return list(by_mask.values())


def _value_dimension(
    name: str,
    domain: list[Any],
    sig: Callable[[Any], int],
    value_of: Callable[[RequestAttributes], Any],
    render: Callable[[Sequence[Any], Dimension], str],
) -> Dimension:
    """A dimension over one attribute's values, classed by their signature ``sig``."""
    return Dimension(name, _classes(domain, sig), lambda a: sig(value_of(a)), domain, render)


def _mask(rules: Sequence[PolicyRule], pred: Callable[[PolicyRule], bool]) -> int:
    m = 0
    for i, r in enumerate(rules):
        if pred(r):
            m |= 1 << i
    return m


def _bits_with(rules: Sequence[PolicyRule], attr: str, value: str) -> int:
    """Mask of the rules whose list field ``attr`` contains ``value``."""
    return _mask(rules, lambda r: value in getattr(r, attr))


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


class RequestSpace:
    """The partition of the request space induced by two (or more) policies' rules."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        self.rules: list[PolicyRule] = [r for p in policies for r in p.rules]
        self.offsets: list[int] = []
        total = 0
        for p in policies:
            self.offsets.append(total)
            total += len(p.rules)
        rules = self.rules
        mentioned_users = sorted({u for r in rules for u in r.users})
        mentioned_groups = sorted({g for r in rules for g in r.user_groups})
        mentioned_verbs = sorted({v for r in rules for v in r.verbs})
        mentioned_ns = sorted({n for r in rules for n in r.namespaces} | {""})
        self.other_user = _unique(OTHER_USER, mentioned_users)
        self.other_verb = _unique(OTHER_VERB, mentioned_verbs)
        self.other_ns = _unique(OTHER_NAMESPACE, mentioned_ns)

        # ---- per-rule constant masks
        self.m_users_any = _mask(rules, lambda r: not r.users)
        self.m_groups_any = _mask(rules, lambda r: not r.user_groups)
        self.m_verbs_any = _mask(rules, lambda r: not r.verbs)
        self.user_bits = {u: _bits_with(rules, "users", u) for u in mentioned_users}
        self.group_bits = {g: _bits_with(rules, "user_groups", g) for g in mentioned_groups}
        self.verb_bits = {v: _bits_with(rules, "verbs", v) for v in mentioned_verbs}
        self.m_resource_rule = _mask(rules, matching.is_resource_rule)
        self.m_nonresource_rule = _mask(
            rules, lambda r: bool(r.non_resource_urls) and not matching.is_resource_rule(r)
        )
        self.m_plain = _mask(
            rules, lambda r: not matching.is_resource_rule(r) and not r.non_resource_urls
        )

        # ---- user
        self.user = _value_dimension(
            "user",
            [*mentioned_users, self.other_user],
            self._user_sig_value,
            lambda a: a.user,
            self._render_users,
        )
        # ---- groups: reachable unions of single-group signatures
        base = self.m_groups_any
        reach: dict[int, tuple[str, ...]] = {base: ()}
        for g in mentioned_groups:
            bit = self.group_bits[g]
            for m, rep in list(reach.items()):
                reach.setdefault(m | bit, (*rep, g))
        group_classes = [DimClass(m, rep, [rep]) for m, rep in reach.items()]
        self.groups = Dimension(
            "groups",
            group_classes,
            lambda a: self._groups_sig_value(a.user, a.groups),
            [c.representative for c in group_classes],
            self._render_groups,
        )
        # ---- verb
        self.verb = _value_dimension(
            "verb",
            [*mentioned_verbs, self.other_verb],
            self._verb_sig_value,
            lambda a: a.verb,
            self._render_verbs,
        )
        # ---- namespace (resource requests)
        self.namespace = _value_dimension(
            "namespace",
            [*mentioned_ns, self.other_ns],
            self._ns_sig_value,
            lambda a: a.namespace,
            self._render_namespaces,
        )
        # ---- resource target grid (api_group, resource, subresource, name)
        self.target = self._build_targets()
        # ---- non-resource path
        self.path = self._build_paths()

    # ---------------------------------------------------------------- signatures
    def _user_sig_value(self, user: str | None) -> int:
        if user is None:
            return self.m_users_any
        return self.m_users_any | self.user_bits.get(user, 0)

    def _groups_sig_value(self, user: str | None, groups: Sequence[str]) -> int:
        m = self.m_groups_any
        if user is not None:
            for g in groups:
                m |= self.group_bits.get(g, 0)
        return m

    def _verb_sig_value(self, verb: str) -> int:
        return self.m_verbs_any | self.verb_bits.get(verb, 0)

    def _ns_sig_value(self, namespace: str) -> int:
        m = self.m_plain
        for i, r in enumerate(self.rules):
            if matching.is_resource_rule(r) and matching.namespace_matches(r, namespace):
                m |= 1 << i
        return m

    def target_sig(self, api_group: str, resource: str, subresource: str, name: str) -> int:
        """Rules whose ``resources`` accept this target (plus rules with no target fields)."""
        m = self.m_plain
        for i, r in enumerate(self.rules):
            if matching.is_resource_rule(r) and matching.resources_match(
                r, api_group, resource, subresource, name
            ):
                m |= 1 << i
        return m

    def path_sig(self, path: str) -> int:
        """Rules whose ``nonResourceURLs`` accept this path (plus rules with no target fields)."""
        m = self.m_plain
        for i, r in enumerate(self.rules):
            if (
                r.non_resource_urls
                and not matching.is_resource_rule(r)
                and matching.path_matches(r, path)
            ):
                m |= 1 << i
        return m

    # ---------------------------------------------------------------- targets
    def _build_targets(self) -> Dimension:
        by_group: dict[str, set[str]] = defaultdict(set)
        subs: set[str] = set()
        names: set[str] = set()
        for r in self.rules:
            for gr in r.resources:
                names.update(gr.resource_names)
                for res in gr.resources:
                    head, _, sub = res.partition("/")
                    if head != "*":
                        by_group[gr.group].add(head)
                    if sub and sub != "*":
                        subs.add(sub)
                    elif sub == "*" and head == "*":
                        subs.add("*")  # "*/*" only matches a literal "*" subresource
                by_group.setdefault(gr.group, set())
        for g, res, sub in SENSITIVE:
            by_group[g].add(res)
            if sub:
                subs.add(sub)
        wildcard = by_group.pop("*", set())
        groups = sorted(by_group)
        other_group = _unique(OTHER_GROUP, groups)
        all_res = {x for s in by_group.values() for x in s} | wildcard
        other_res = _unique(OTHER_RESOURCE, all_res)
        sub_values = ["", *sorted(subs), _unique(OTHER_SUBRESOURCE, subs)]
        name_values = [*sorted(names | {""}), _unique(OTHER_NAME, names)] if names else [""]
        self.other_group, self.other_resource = other_group, other_res
        self.other_sub, self.other_name = sub_values[-1], name_values[-1]
        points = []
        self.group_resources = {
            g: by_group.get(g, set()) | wildcard | {other_res} for g in [*groups, other_group]
        }
        for g in [*groups, other_group]:
            for res in sorted(self.group_resources[g]):
                for sub in sub_values:
                    for name in name_values:
                        points.append((g, res, sub, name))
        self.target_domains = (
            [*groups, other_group],
            sorted(all_res) + [other_res],
            sub_values,
            name_values,
        )
        return Dimension(
            "target",
            _classes(points, lambda p: self.target_sig(*p)),
            lambda a: self.target_sig(a.api_group, a.resource, a.subresource, a.name),
            points,
            self._render_targets,
        )

    # ---------------------------------------------------------------- paths
    def _build_paths(self) -> Dimension:
        specs = {
            s for r in self.rules if not matching.is_resource_rule(r) for s in r.non_resource_urls
        }
        exact = {s for s in specs if s != "*" and not s.endswith("*")}
        prefixes = {s[:-1] for s in specs if s != "*" and s.endswith("*")}
        candidates: dict[str, str] = {}  # path -> label
        for s in sorted(exact):
            candidates[s] = s
        for p in sorted(prefixes):
            candidates.setdefault(p, p)
            for suffix in ("kaudit-other", "~kaudit-other", "-kaudit-other", "/kaudit-other", "Zz"):
                rep = p + suffix
                longer = [q for q in prefixes if len(q) > len(p) and rep.startswith(q)]
                if rep not in exact and not longer:
                    candidates[rep] = f"{p}* (other)"
                    break
        other = OTHER_PATH
        while other in exact or any(other.startswith(q) for q in prefixes if q):
            other += "-x"
            if len(other) > 200:  # a prefix like "/" catches everything: no "other" class
                other = ""
                break
        if other:
            candidates[other] = "any other path"
        self.path_labels = candidates
        self.other_path = other
        return Dimension(
            "path",
            _classes(list(candidates), self.path_sig),
            lambda a: self.path_sig(a.path or ""),
            list(candidates),
            self._render_paths,
        )

    # ---------------------------------------------------------------- rendering
    def _render_users(self, members: Sequence[Any], dim: Dimension) -> str:
        text = _render_values(members, dim.domain, self.other_user, str, "user")
        if text == "any user":
            return ""
        return text if text.startswith("any") else f"user{'s' if len(members) > 1 else ''} {text}"

    def _render_groups(self, members: Sequence[Any], dim: Dimension) -> str:
        if len(members) >= len(dim.domain):
            return ""
        parts = []
        listed = sorted({g for rep in dim.domain for g in rep})
        for rep in members:
            parts.append(f"in {'+'.join(rep)}" if rep else f"not in {', '.join(listed)}")
        return " or ".join(parts)

    def _render_verbs(self, members: Sequence[Any], dim: Dimension) -> str:
        return _render_values(members, dim.domain, self.other_verb, str, "verb")

    def _render_namespaces(self, members: Sequence[Any], dim: Dimension) -> str:
        def label(ns: str) -> str:
            return '"" (cluster-scoped/all namespaces)' if ns == "" else ns

        text = _render_values(members, dim.domain, self.other_ns, label, "namespace")
        return "in " + text if text.startswith("any") else "in namespace " + text

    def _render_paths(self, members: Sequence[Any], dim: Dimension) -> str:
        if set(members) >= set(dim.domain):
            return "any non-resource URL"
        return ", ".join(self.path_labels[m] for m in dim.domain if m in set(members))

    def _render_targets(self, members: Sequence[Any], dim: Dimension) -> str:
        chosen = set(members)
        full = set(dim.domain)
        if chosen >= full:
            return "any resource"
        direct = self._render_target_set(chosen)
        rest = full - chosen
        if len(rest) < len(chosen):
            alt = "any resource except " + self._render_target_set(rest)
            if len(alt) < len(direct):
                return alt
        return direct

    def _render_target_set(self, points: set[Any]) -> str:
        terms = _factorize({tuple((x,) for x in p) for p in points}, 4)
        rendered = [self._render_target_term(t, self.target_domains) for t in terms]
        return "; ".join(sorted(rendered))

    def _render_target_term(self, term: tuple[frozenset[Any], ...], domains: Any) -> str:
        groups, resources, subs, names = term
        group_dom, _res_dom, sub_dom, name_dom = domains
        # resources: the domain within these groups is what the grid enumerated
        res_domain: set[str] = {self.other_resource}
        for g in groups:
            res_domain |= self.group_resources.get(g, set())
        if set(resources) >= res_domain:
            res_text = "any resource"
        elif self.other_resource in resources:
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
            labels = ["*other*" if s == self.other_sub else s for s in shown]
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
                "core" if g == "" else ("other groups" if g == self.other_group else g)
                for g in group_dom
                if g in group_set
            ]
            res_text += " (group " + ", ".join(labels) + ")"
        name_set = set(names)
        if len(name_dom) > 1 and not name_set >= set(name_dom):
            res_text += " named " + _render_values(
                list(name_set),
                name_dom,
                self.other_name,
                lambda n: '""' if n == "" else n,
                "name",
            )
        return res_text

    # ---------------------------------------------------------------- cells
    def dimensions(self, kind: str) -> list[Dimension]:
        """The axes of resource or non-resource requests, in merge order."""
        if kind == "resource":
            return [self.groups, self.user, self.namespace, self.verb, self.target]
        return [self.groups, self.user, self.verb, self.path]

    def representative(self, kind: str, cell: Sequence[int]) -> RequestAttributes:
        """Concrete attributes for one cell (used to cross-check with the engine)."""
        from pytest_kaudit.policy import RequestAttributes

        dims = self.dimensions(kind)
        values = {d.name: d.classes[i].representative for d, i in zip(dims, cell, strict=True)}
        groups = tuple(values["groups"])
        if kind == "resource":
            g, res, sub, name = values["target"]
            return RequestAttributes(
                user=values["user"],
                groups=groups,
                verb=values["verb"],
                namespace=values["namespace"],
                resource=res,
                subresource=sub,
                name=name,
                api_group=g,
                api_version="v1",
                path="",
                is_resource_request=True,
            )
        return RequestAttributes(
            user=values["user"],
            groups=groups,
            verb=values["verb"],
            namespace="",
            resource="",
            subresource="",
            name="",
            api_group="",
            api_version="",
            path=values["path"],
            is_resource_request=False,
        )


def _factorize(
    cells: set[tuple[tuple[Any, ...], ...]], ndims: int
) -> list[tuple[frozenset[Any], ...]]:
    """Merge a set of product cells into fewer products covering exactly the same set.

    Repeatedly unions cells that agree on all dimensions but one, which is exact:
    ``(A x B) | (A' x B) == (A | A') x B``.
    """
    current: set[tuple[frozenset[Any], ...]] = {tuple(frozenset(v) for v in c) for c in cells}
    for _ in range(3):
        before = len(current)
        for d in range(ndims):
            buckets: dict[tuple[frozenset[Any], ...], set[Any]] = defaultdict(set)
            for c in current:
                buckets[c[:d] + c[d + 1 :]].update(c[d])
            current = {k[:d] + (frozenset(v),) + k[d:] for k, v in buckets.items()}
        if len(current) == before:
            break
    return sorted(current, key=lambda t: tuple(sorted(map(str, x)) for x in t))


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

    @property
    def escalates_secrets(self) -> bool:
        """Newly logs bodies (Request+) of credential-bearing resources."""
        return bool(self.sensitive)

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

    def first(mask: int) -> int | None:
        return (mask & -mask).bit_length() - 1 if mask else None

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
                    o = first(mask & old_all)
                    n = first(mask >> n_old)
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
            for term in _factorize(cells, len(dims)):
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
    labels = {d.name: d.render(members[d.name], d) for d in dims}
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

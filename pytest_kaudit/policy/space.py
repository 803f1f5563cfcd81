"""The exact partition of the request space that one or more policies induce.

Exact, not sampled. The request space is cut along every value the policies mention (users,
groups, verbs, namespaces, API groups, resources, subresources, names, URL paths) plus one
"anything else" representative per dimension. Values no rule can tell apart are merged first:
they have the same *signature*, the bit set of rules whose field accepts them. A request's
rules are then the AND of its per-dimension signatures, and the rule that decides it is the
lowest surviving bit: first match wins, as in the checker.

``kaudit diff`` walks this partition to find every class whose decision changes; witnesses
walk it to find, per rule, a class that rule decides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_kaudit.policy import matching
from pytest_kaudit.policy.sensitive import SENSITIVE_KEYS

if TYPE_CHECKING:
    from pytest_kaudit.policy.model import Policy, PolicyRule
    from pytest_kaudit.policy.request import RequestAttributes

#: Representatives for "any value no rule mentions"; suffixed if a policy uses them.
OTHER_USER = "kaudit:other-user"
OTHER_VERB = "kaudit-other-verb"
OTHER_NAMESPACE = "kaudit-other-namespace"
OTHER_GROUP = "kaudit-other.example.com"
OTHER_RESOURCE = "kaudit-other-resources"
OTHER_SUBRESOURCE = "kaudit-other-subresource"
OTHER_NAME = "kaudit-other-name"
OTHER_PATH = "/kaudit-other-path"

#: Resources whose bodies hold confidential data: (api_group, resource, subresource).
SENSITIVE = SENSITIVE_KEYS


def unique_value(value: str, taken: Iterable[str]) -> str:
    """``value``, suffixed with ``-x`` until it is none of ``taken``."""
    taken = set(taken)
    out = value
    while out in taken:
        out += "-x"
    return out


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


def classes_of(values: Iterable[Any], sig: Callable[[Any], int]) -> list[DimClass]:
    """Group ``values`` by signature, in first-seen order."""
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
) -> Dimension:
    """A dimension over one attribute's values, classed by their signature ``sig``."""
    return Dimension(name, classes_of(domain, sig), lambda a: sig(value_of(a)), domain)


def _mask(rules: Sequence[PolicyRule], pred: Callable[[PolicyRule], bool]) -> int:
    m = 0
    for i, r in enumerate(rules):
        if pred(r):
            m |= 1 << i
    return m


def _bits_with(rules: Sequence[PolicyRule], attr: str, value: str) -> int:
    """Mask of the rules whose list field ``attr`` contains ``value``."""
    return _mask(rules, lambda r: value in getattr(r, attr))


def first_rule(mask: int) -> int | None:
    """The lowest set bit of ``mask``: the rule that decides a cell (None: no rule)."""
    return (mask & -mask).bit_length() - 1 if mask else None


class RequestSpace:
    """The partition of the request space induced by the rules of ``policies`` (concatenated).

    With several policies, rule ``j`` of policy ``k`` is bit ``offsets[k] + j``.
    """

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
        self.mentioned_groups = mentioned_groups
        self.mentioned_verbs = mentioned_verbs
        self.other_user = unique_value(OTHER_USER, mentioned_users)
        self.other_verb = unique_value(OTHER_VERB, mentioned_verbs)
        self.other_ns = unique_value(OTHER_NAMESPACE, mentioned_ns)

        # ---- per-rule constant masks
        self.m_users_any = _mask(rules, lambda r: not r.users)
        self.m_groups_any = _mask(rules, lambda r: not r.user_groups)
        self.m_verbs_any = _mask(rules, lambda r: not r.verbs)
        self.user_bits = {u: _bits_with(rules, "users", u) for u in mentioned_users}
        self.group_bits = {g: _bits_with(rules, "user_groups", g) for g in mentioned_groups}
        self.verb_bits = {v: _bits_with(rules, "verbs", v) for v in mentioned_verbs}
        self.m_plain = _mask(
            rules, lambda r: not matching.is_resource_rule(r) and not r.non_resource_urls
        )

        self.user = _value_dimension(
            "user", [*mentioned_users, self.other_user], self.user_sig, lambda a: a.user
        )
        # groups: the reachable unions of single-group signatures
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
            lambda a: self.groups_sig(a.user, a.groups),
            [c.representative for c in group_classes],
        )
        self.verb = _value_dimension(
            "verb", [*mentioned_verbs, self.other_verb], self.verb_sig, lambda a: a.verb
        )
        self.namespace = _value_dimension(
            "namespace", [*mentioned_ns, self.other_ns], self.namespace_sig, lambda a: a.namespace
        )
        self.target = self._build_targets()
        self.path = self._build_paths()

    # ---------------------------------------------------------------- signatures
    def user_sig(self, user: str | None) -> int:
        """Rules whose ``users`` accept ``user`` (None: unauthenticated)."""
        if user is None:
            return self.m_users_any
        return self.m_users_any | self.user_bits.get(user, 0)

    def groups_sig(self, user: str | None, groups: Sequence[str]) -> int:
        """Rules whose ``userGroups`` accept a caller in ``groups``."""
        m = self.m_groups_any
        if user is not None:
            for g in groups:
                m |= self.group_bits.get(g, 0)
        return m

    def verb_sig(self, verb: str) -> int:
        """Rules whose ``verbs`` accept ``verb``."""
        return self.m_verbs_any | self.verb_bits.get(verb, 0)

    def namespace_sig(self, namespace: str) -> int:
        """Rules whose ``namespaces`` accept ``namespace`` (plus rules with no target fields)."""
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
        other_group = unique_value(OTHER_GROUP, groups)
        all_res = {x for s in by_group.values() for x in s} | wildcard
        other_res = unique_value(OTHER_RESOURCE, all_res)
        sub_values = ["", *sorted(subs), unique_value(OTHER_SUBRESOURCE, subs)]
        name_values = [*sorted(names | {""}), unique_value(OTHER_NAME, names)] if names else [""]
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
            classes_of(points, lambda p: self.target_sig(*p)),
            lambda a: self.target_sig(a.api_group, a.resource, a.subresource, a.name),
            points,
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
        return Dimension(
            "path",
            classes_of(list(candidates), self.path_sig),
            lambda a: self.path_sig(a.path or ""),
            list(candidates),
        )

    # ---------------------------------------------------------------- cells
    def dimensions(self, kind: str) -> list[Dimension]:
        """The axes of ``resource`` or ``nonresource`` requests, in merge order."""
        if kind == "resource":
            return [self.groups, self.user, self.namespace, self.verb, self.target]
        return [self.groups, self.user, self.verb, self.path]

    def representative(self, kind: str, cell: Sequence[int]) -> RequestAttributes:
        """Concrete attributes for one cell (one class index per dimension)."""
        from pytest_kaudit.policy.request import RequestAttributes

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
            path=values["path"],
            is_resource_request=False,
        )


def factorize(
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

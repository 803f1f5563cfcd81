"""One concrete request per rule that this rule decides, found in the exact request partition.

The partition is :class:`~pytest_kaudit.policy.space.RequestSpace`, the one ``kaudit diff``
walks. A rule's witnesses live in the cells whose lowest surviving rule bit is that rule. Not
every cell can be sent: every authenticated caller is in ``system:authenticated``, verbs come
from HTTP methods, and a path must parse back into the same attributes. So the search runs over
the *sendable* realisation of each class (a :class:`~pytest_kaudit.traffic.RequestSpec` whose
path the apiserver's RequestInfo maps back to exactly those attributes), and a rule with no
sendable cell is told apart from a rule with no cell at all (shadowed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import product
from typing import Any, Literal

from pytest_kaudit.policy import Decision, Policy, PolicyRule, RequestAttributes, matching
from pytest_kaudit.policy.request import NON_RESOURCE_VERBS
from pytest_kaudit.policy.request import RESOURCE_VERBS as REQUEST_INFO_VERBS
from pytest_kaudit.policy.space import (
    DimClass,
    RequestSpace,
    first_rule,
    unique_value,
)
from pytest_kaudit.traffic.request import AUTHENTICATED, Identity, RequestSpec

#: Resource-request verbs a client can send, most natural first (``proxy`` comes only from a
#: legacy path prefix that serves nothing).
RESOURCE_VERBS = tuple(verb for verb in REQUEST_INFO_VERBS if verb != "proxy")
#: Non-resource verbs are lower-cased HTTP methods.
NONRESOURCE_VERBS = NON_RESOURCE_VERBS
#: The object name witnesses use where the policy names none.
WITNESS_NAME = "kaudit-witness"
#: Watches end by themselves after this many seconds (the server closes them).
WATCH_SECONDS = "1"
#: Member combinations tried per class combination before calling it unsendable.
_MAX_TRIES = 400
#: Partition cells one search may visit; a policy needing more is refused for that rule.
MAX_CELLS = 2_000_000


class SearchLimit(Exception):
    """A search visited :data:`MAX_CELLS` cells without an answer."""

Status = Literal["reachable", "unreachable", "unsendable"]


@dataclass(frozen=True)
class WitnessRequest:
    """A request to send, the attributes the checker sees for it, and the policy's decision."""

    spec: RequestSpec
    attributes: RequestAttributes
    decision: Decision


@dataclass(frozen=True)
class NearMiss:
    """A request just outside a rule (one field changed) that a later rule or no rule decides."""

    request: WitnessRequest
    changed: str  # the field that was changed: verb, namespace, user, groups, resource, ...


@dataclass(frozen=True)
class RuleWitness:
    """What the search found for one rule."""

    index: int
    rule: PolicyRule
    status: Status
    witness: WitnessRequest | None = None
    near_misses: tuple[NearMiss, ...] = ()
    #: For an unreachable rule: the earlier rules that decide every request it matches.
    covered_by: tuple[int, ...] = ()
    #: Why a rule is unreachable or cannot be sent.
    reason: str = ""


# ------------------------------------------------------------------------------ realisation


@dataclass(frozen=True)
class _Shape:
    """Everything of a request but who sends it."""

    verb: str
    namespace: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


def _spec(shape: _Shape, identity: Identity) -> RequestSpec:
    """The RequestSpec for a shape: names of list/watch travel as a field selector."""
    query: list[tuple[str, str]] = []
    if shape.is_resource and shape.verb in ("list", "watch") and shape.name:
        query.append(("fieldSelector", f"metadata.name={shape.name}"))
    if shape.verb == "watch":
        query.append(("timeoutSeconds", WATCH_SECONDS))
    return RequestSpec(
        verb=shape.verb, resource=shape.resource, subresource=shape.subresource,
        group=shape.group, namespace=shape.namespace, name=shape.name, path=shape.path,
        identity=identity, query=tuple(query),
    )


def _derived(shape: _Shape) -> RequestAttributes | None:
    """The attributes the apiserver derives from the shape's HTTP request (None: unsendable)."""
    spec = _spec(shape, Identity.human("kaudit:probe"))
    try:
        attrs = RequestAttributes.from_http(spec.method, spec.url_path(), user="kaudit:probe")
    except ValueError:
        return None
    return attrs


def realizes(shape: _Shape) -> bool:
    """Whether sending the shape gives the checker exactly the shape's attributes."""
    if shape.is_resource:
        if shape.verb not in RESOURCE_VERBS or not shape.resource or "/" in shape.resource:
            return False
    elif shape.verb not in NONRESOURCE_VERBS or not shape.path.startswith("/"):
        return False
    spec_path = _spec(shape, Identity.human("kaudit:probe")).url_path().partition("?")[0]
    if "//" in spec_path or spec_path.endswith("/"):  # an empty segment: not a real request
        return False
    attrs = _derived(shape)
    if attrs is None or attrs.is_resource_request != shape.is_resource or attrs.verb != shape.verb:
        return False
    if not shape.is_resource:
        return attrs.path == shape.path
    return (attrs.namespace, attrs.api_group, attrs.resource, attrs.subresource, attrs.name) == (
        shape.namespace, shape.group, shape.resource, shape.subresource, shape.name)


# ------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class _Option:
    """One class of a dimension: its rule mask and its sendable values, preferred first."""

    mask: int
    values: tuple[Any, ...]


def _verb_values(cls: DimClass, other: str, mentioned: Sequence[str],
                 sendable: Sequence[str]) -> tuple[str, ...]:
    members = [m for m in cls.members if m in sendable]
    if other in cls.members:  # every unmentioned verb behaves like the representative
        members += [v for v in sendable if v not in mentioned]
    return tuple(members)


class _Space:
    """The sendable realisation of a policy's request partition."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.space = space = RequestSpace([policy])
        self.n = len(policy.rules)
        # every authenticated caller carries system:authenticated: realise group classes so
        groups: dict[int, tuple[str, ...]] = {}
        for cls in space.groups.classes:
            sent = tuple(sorted({*cls.representative, AUTHENTICATED}))
            groups.setdefault(space.groups_sig("u", sent), sent)
        self.groups = [_Option(m, (g,)) for m, g in groups.items()]
        self.users = [_Option(c.mask, tuple(c.members)) for c in space.user.classes]
        self.namespaces = [_Option(c.mask, tuple(c.members)) for c in space.namespace.classes]
        # a name no rule mentions behaves like "" wherever no resourceNames apply: offer one,
        # since get/update/patch/delete need a name
        names = {n for r in policy.rules for gr in r.resources for n in gr.resource_names}
        self.any_name = unique_value(WITNESS_NAME, names)
        self.targets = [_Option(c.mask, self.with_names(c.members)) for c in space.target.classes]
        self.paths = [_Option(c.mask, tuple(c.members)) for c in space.path.classes]
        self.verbs = {
            kind: [
                _Option(c.mask, _verb_values(c, space.other_verb, space.mentioned_verbs, sendable))
                for c in space.verb.classes
            ]
            for kind, sendable in (("resource", RESOURCE_VERBS), ("nonresource", NONRESOURCE_VERBS))
        }
        self._shape_cache: dict[tuple[int, ...], bool] = {}

    def with_names(self, members: Sequence[Any]) -> tuple[Any, ...]:
        """Target points plus, for each nameless one, the same point with a fresh name."""
        out = list(members)
        for g, res, sub, name in members:
            if name == "" and self.space.target_sig(g, res, sub, self.any_name) == \
                    self.space.target_sig(g, res, sub, ""):
                out.append((g, res, sub, self.any_name))
        return tuple(out)

    # -- shapes -------------------------------------------------------------------------
    def shapes(self, kind: str, verb: _Option, *rest: _Option,
               prefer: Callable[[_Shape], tuple[int, ...]] | None = None) -> Iterator[_Shape]:
        """Sendable shapes in one combination of classes (best first when ``prefer`` given)."""
        candidates: Iterable[_Shape]
        if kind == "resource":
            ns_opt, target_opt = rest
            candidates = (_Shape(v, ns, *t) for v, ns, t in
                          product(verb.values, ns_opt.values, target_opt.values))
        else:
            (path_opt,) = rest
            candidates = (_Shape(v, path=p) for v, p in product(verb.values, path_opt.values))
        if prefer is not None:
            first = (s for _, s in zip(range(_MAX_TRIES * 10), candidates, strict=False))
            candidates = sorted(first, key=prefer)
        for n, shape in enumerate(candidates):
            if n >= _MAX_TRIES:
                return
            if realizes(shape):
                yield shape

    def sendable(self, kind: str, verb: _Option, *rest: _Option) -> bool:
        """Whether some request of this class combination can be sent (cached)."""
        key = (0 if kind == "resource" else 1, id(verb), *(id(r) for r in rest))
        found = self._shape_cache.get(key)
        if found is None:
            found = next(self.shapes(kind, verb, *rest), None) is not None
            self._shape_cache[key] = found
        return found

    # -- the search ---------------------------------------------------------------------
    def dims(self, kind: str) -> list[list[_Option]]:
        """Target-like dimensions first: they prune the most."""
        if kind == "resource":
            return [self.targets, self.verbs[kind], self.namespaces, self.users, self.groups]
        return [self.paths, self.verbs[kind], self.users, self.groups]

    def find(self, index: int, kind: str,
             order: Callable[[int, _Option], tuple[int, ...]] | None = None, *,
             realised: bool = True, sendable_only: bool = True) -> tuple[_Option, ...] | None:
        """The first cell (in ``order``) that rule ``index`` decides, or None.

        ``realised``: callers carry system:authenticated; ``sendable_only``: the cell's verb,
        namespace and target (or path) must form a request that can be sent.
        """
        source = self.dims(kind) if realised else self.raw_dims(kind)
        if order is not None:
            source = [sorted(opts, key=lambda o, d=d: order(d, o))  # type: ignore[misc]
                      for d, opts in enumerate(source)]
        dims = source
        lower = (1 << index) - 1
        bit = 1 << index
        # bits every option of every remaining dimension keeps: they can never be cleared
        keep = [0] * (len(dims) + 1)
        keep[len(dims)] = -1
        for d in range(len(dims) - 1, -1, -1):
            acc = -1
            for o in dims[d]:
                acc &= o.mask
            keep[d] = keep[d + 1] & acc
        chosen: list[_Option] = []
        visits = [0]

        def walk(d: int, mask: int) -> bool:
            visits[0] += 1
            if visits[0] > MAX_CELLS:
                raise SearchLimit
            if not mask & bit or mask & lower & keep[d]:
                return False
            if d == len(dims):
                if first_rule(mask) != index:
                    return False
                if sendable_only and realised:
                    verb, *rest = _shape_options(kind, chosen)
                    return self.sendable(kind, verb, *rest)
                return True
            for opt in dims[d]:
                chosen.append(opt)
                if walk(d + 1, mask & opt.mask):
                    return True
                chosen.pop()
            return False

        return tuple(chosen) if walk(0, (1 << self.n) - 1) else None

    def raw_dims(self, kind: str) -> list[list[_Option]]:
        """The whole partition in search order, sendable or not (groups as they are)."""
        s = self.space
        raw = {d.name: [_Option(c.mask, ()) for c in d.classes] for d in s.dimensions(kind)}
        if kind == "resource":
            return [raw["target"], raw["verb"], raw["namespace"], raw["user"], raw["groups"]]
        return [raw["path"], raw["verb"], raw["user"], raw["groups"]]

    def deciders(self, index: int, kind: str) -> set[int]:
        """The rules that decide the requests rule ``index`` matches (full partition)."""
        dims = self.raw_dims(kind)
        bit = 1 << index
        out: set[int] = set()
        visits = [0]

        def walk(d: int, mask: int) -> None:
            visits[0] += 1
            if visits[0] > MAX_CELLS:
                raise SearchLimit
            if not mask & bit:
                return
            if d == len(dims):
                rule = first_rule(mask)
                if rule is not None:
                    out.add(rule)
                return
            for opt in dims[d]:
                walk(d + 1, mask & opt.mask)

        walk(0, (1 << self.n) - 1)
        return out


def _shape_options(kind: str, chosen: Sequence[_Option]) -> tuple[_Option, ...]:
    """(verb, namespace, target) or (verb, path) out of a cell in search order."""
    if kind == "resource":
        target, verb, ns = chosen[0], chosen[1], chosen[2]
        return verb, ns, target
    return chosen[1], chosen[0]


# ------------------------------------------------------------------------------ preferences


def _own(rule: PolicyRule) -> dict[str, set[Any]]:
    """The rule's own vocabulary, per dimension."""
    targets: set[tuple[str, str, str]] = set()
    names: set[str] = set()
    for gr in rule.resources:
        names.update(gr.resource_names)
        for res in gr.resources:
            head, _, sub = res.partition("/")
            targets.add((gr.group, head, sub))
    return {
        "users": set(rule.users), "groups": set(rule.user_groups), "verbs": set(rule.verbs),
        "namespaces": set(rule.namespaces), "targets": targets, "names": names,
        "paths": {p.rstrip("*") for p in rule.non_resource_urls},
        "exact_paths": {p for p in rule.non_resource_urls if not p.endswith("*")},
    }


def _target_score(own: dict[str, set[Any]], point: tuple[str, str, str, str]) -> tuple[int, ...]:
    group, resource, sub, name = point
    exact = (group, resource, sub) in own["targets"]
    loose = any(g in (group, "*") and r in (resource, "*") for g, r, _ in own["targets"])
    return (
        0 if exact else 1 if loose else 2,
        0 if (name in own["names"] if own["names"] else name in ("", WITNESS_NAME)) else 1,
        0 if sub == "" or (group, resource, sub) in own["targets"] else 1,
        0 if "kaudit-other" not in resource else 1,
    )


def _shape_score(own: dict[str, set[Any]], shape: _Shape) -> tuple[int, ...]:
    verb_rank = (0 if shape.verb in own["verbs"] else 1,
                 (RESOURCE_VERBS if shape.is_resource else NONRESOURCE_VERBS).index(shape.verb))
    if not shape.is_resource:
        exact = shape.path in own["exact_paths"]
        prefix = any(shape.path.startswith(p) for p in own["paths"])
        return (0 if exact else 1 if prefix else 2, *verb_rank)
    ns = (0 if shape.namespace in own["namespaces"] else 1 if shape.namespace else 2)
    point = (shape.group, shape.resource, shape.subresource, shape.name)
    return (*_target_score(own, point), *verb_rank, ns)


def _order(space: _Space, rule: PolicyRule, kind: str
           ) -> Callable[[int, _Option], tuple[int, ...]]:
    own = _own(rule)
    other_user, other_ns = space.space.other_user, space.space.other_ns

    def user_rank(o: _Option) -> tuple[int, ...]:
        if own["users"]:
            return (0 if own["users"] & set(o.values) else 1,)
        return (0 if other_user in o.values else 1,)

    def group_rank(o: _Option) -> tuple[int, ...]:
        (groups,) = o.values
        hit = 0 if own["groups"] & set(groups) else 1
        return (hit if own["groups"] else 0, len(groups))

    def verb_rank(o: _Option, sendable: Sequence[str]) -> tuple[int, ...]:
        if not o.values:
            return (9,)
        first = min(sendable.index(v) for v in o.values)
        return (0 if own["verbs"] & set(o.values) else 1, first)

    def order(d: int, o: _Option) -> tuple[int, ...]:
        if kind == "resource":
            if d == 0:
                return min(_target_score(own, p) for p in o.values)
            if d == 1:
                return verb_rank(o, RESOURCE_VERBS)
            if d == 2:
                if own["namespaces"]:
                    return (0 if own["namespaces"] & set(o.values) else 1,)
                return (0 if other_ns in o.values else 1 if "" not in o.values else 2,)
            return user_rank(o) if d == 3 else group_rank(o)
        if d == 0:
            return min(_shape_score(own, _Shape("get", path=p))[:1] for p in o.values)
        if d == 1:
            return verb_rank(o, NONRESOURCE_VERBS)
        return user_rank(o) if d == 2 else group_rank(o)

    return order


# ------------------------------------------------------------------------------ entry point


def _kinds(rule: PolicyRule) -> tuple[str, ...]:
    if matching.is_resource_rule(rule):
        return ("resource",)
    if rule.non_resource_urls:
        return ("nonresource",)
    return ("resource", "nonresource")


def _request(space: _Space, kind: str, cell: tuple[_Option, ...], rule: PolicyRule
             ) -> WitnessRequest:
    own = _own(rule)
    verb, *rest = _shape_options(kind, cell)
    shape = next(space.shapes(kind, verb, *rest, prefer=lambda s: _shape_score(own, s)))
    if kind == "resource":
        user_opt, group_opt = cell[3], cell[4]
    else:
        user_opt, group_opt = cell[2], cell[3]
    users = user_opt.values
    user = next((u for u in users if u in own["users"]), None)
    if user is None:
        user = space.space.other_user if space.space.other_user in users else users[0]
    return make_request(space.policy, shape, user, group_opt.values[0])


def make_request(policy: Policy, shape: _Shape, user: str, groups: Sequence[str]
                 ) -> WitnessRequest:
    """The witness for a shape sent by ``user`` (``groups`` may include system:authenticated)."""
    sent_groups = tuple(g for g in groups if g != AUTHENTICATED)
    spec = _spec(shape, Identity.human(user, sent_groups))
    attrs = RequestAttributes.from_http(spec.method, spec.url_path(), user=user,
                                        groups=(*sent_groups, AUTHENTICATED))
    return WitnessRequest(spec, attrs, policy.evaluate_attributes(attrs))


def witnesses(policy: Policy) -> list[RuleWitness]:
    """One :class:`RuleWitness` per rule of ``policy``, in rule order."""
    space = _Space(policy)
    out = []
    for index, rule in enumerate(policy.rules):
        out.append(_witness(space, index, rule))
    return out


def _witness(space: _Space, index: int, rule: PolicyRule) -> RuleWitness:
    try:
        return _search(space, index, rule)
    except SearchLimit:
        return RuleWitness(index, rule, "unsendable", reason=(
            f"the search gave up after {MAX_CELLS:,} cells of the request partition; the "
            "policy distinguishes too many values to search exhaustively"))


def _search(space: _Space, index: int, rule: PolicyRule) -> RuleWitness:
    for kind in _kinds(rule):
        cell = space.find(index, kind, _order(space, rule, kind))
        if cell is not None:
            request = _request(space, kind, cell, rule)
            if request.decision.rule_index != index:  # the partition and the engine disagree
                raise AssertionError(f"witness for rule {index} is decided by "
                                     f"{request.decision.rule_index}: {request.spec.describe()}")
            return RuleWitness(index, rule, "reachable", request,
                               tuple(near_misses(space, index, rule, request)))
    kinds = _kinds(rule)
    if any(space.find(index, k, sendable_only=False) for k in kinds):
        return RuleWitness(index, rule, "unsendable", reason=_unsendable_reason(rule))
    if any(space.find(index, k, realised=False, sendable_only=False) for k in kinds):
        return RuleWitness(index, rule, "unsendable", reason=(
            f"only callers outside {AUTHENTICATED} reach it (anonymous requests); witnesses "
            "are sent by authenticated users"))
    covering = sorted(set().union(*(space.deciders(index, k) for k in kinds)))
    if covering:
        names = ", ".join(f"rules[{i}]" for i in covering)
        reason = f"every request it matches is decided earlier, by {names}"
    else:
        reason = "it matches no request at all"
    return RuleWitness(index, rule, "unreachable", covered_by=tuple(covering), reason=reason)


def _unsendable_reason(rule: PolicyRule) -> str:
    verbs = set(rule.verbs)
    if verbs and not verbs & {*RESOURCE_VERBS, *NONRESOURCE_VERBS}:
        return (f"its verbs ({', '.join(rule.verbs)}) are checked by authorizers, but no HTTP "
                "request carries them")
    return ("no HTTP request maps to the attributes it decides (e.g. a name on a create, a "
            "subresource without a name, or a verb no method gives)")


# ------------------------------------------------------------------------------ near misses


def _variants(space: _Space, index: int, rule: PolicyRule, w: WitnessRequest
              ) -> Iterator[tuple[str, _Shape, str, tuple[str, ...]]]:
    """Requests differing from the witness in one field the rule restricts."""
    s = space.space
    a = w.attributes
    user, groups = a.user or "", a.groups
    shape = _Shape(a.verb, a.namespace, a.api_group, a.resource, a.subresource, a.name,
                   "" if a.is_resource_request else a.path)
    sendable = RESOURCE_VERBS if a.is_resource_request else NONRESOURCE_VERBS
    if rule.verbs:
        for v in sendable:
            if v not in rule.verbs:
                yield "verb", replace(shape, verb=v), user, groups
    if rule.namespaces:
        for ns in [s.other_ns, *sorted({n for r in s.rules for n in r.namespaces})]:
            if ns not in rule.namespaces:
                yield "namespace", replace(shape, namespace=ns), user, groups
    if rule.users:
        for u in [s.other_user, *sorted(s.user_bits)]:
            if u not in rule.users:
                yield "user", shape, u, groups
    if rule.user_groups:
        for opt in sorted(space.groups, key=lambda o: len(o.values[0])):
            (gs,) = opt.values
            if not set(gs) & set(rule.user_groups):
                yield "groups", shape, user, gs
    if rule.resources and a.is_resource_request:
        if any(gr.resource_names for gr in rule.resources):
            yield "name", replace(shape, name=s.other_name), user, groups
        outside = (p for c in s.target.classes if not c.mask & (1 << index) for p in c.members)
        # another resource of the same group reads best; a made-up one or a subresource less
        points = sorted(outside, key=lambda p: (p[0] != a.api_group, p[2] != "",
                                                "kaudit-other" in p[1], p[1] != a.resource,
                                                p[3] != a.name))
        for point in points[:50]:
            for g, res, sub, name in space.with_names((point,)):
                yield "resource", replace(shape, group=g, resource=res, subresource=sub,
                                           name=name), user, groups
    if rule.non_resource_urls and not a.is_resource_request:
        for p in s.path.domain:
            if not matching.path_matches(rule, p):
                yield "path", replace(shape, path=p), user, groups


def near_misses(space: _Space, index: int, rule: PolicyRule, w: WitnessRequest,
                *, limit: int = 2) -> list[NearMiss]:
    """Up to ``limit`` requests just outside rule ``index`` that a later rule (or none)
    decides, changing different fields, those whose level differs from the rule's first."""
    found: dict[str, NearMiss] = {}
    for changed, shape, user, groups in _variants(space, index, rule, w):
        if changed in found or not realizes(shape):
            continue
        req = make_request(space.policy, shape, user, groups)
        decided = req.decision.rule_index
        if decided is not None and decided <= index:
            continue
        found[changed] = NearMiss(req, changed)
    ranked = sorted(found.values(), key=lambda m: m.request.decision.level == rule.level)
    return ranked[:limit]

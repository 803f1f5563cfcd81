"""Decide requirements: first with the policy engine (instant), then on a real apiserver.

:func:`predict_all` answers every requirement from the policy alone (``--offline``).
:func:`prove_all` sends each requirement's requests through a
:class:`~pytest_kaudit.traffic.TrafficSession`, judges the log the apiserver wrote, and
reports any request whose real events contradict the engine as an engine bug.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_kaudit.backends.base import Credentials
from pytest_kaudit.compliance.canary import Canary, Step, canary_plan, issued_token, scan_log
from pytest_kaudit.compliance.discovery import Target, gap_specs, load_snapshot, server_targets
from pytest_kaudit.compliance.model import FlagCheck, Requirement
from pytest_kaudit.compliance.results import CheckResult, Failure, RuleRef, Status
from pytest_kaudit.policy import Decision, Level, Policy, RequestAttributes
from pytest_kaudit.policy.flags import _go_parse_int
from pytest_kaudit.traffic import Logged, RequestSpec, evidence, predict

if TYPE_CHECKING:  # the session brings the kubernetes client, which --offline never needs
    from pytest_kaudit.traffic import Sent, TrafficSession

#: The admin the local backend runs as; offline predictions assume it.
OFFLINE_ADMIN = Credentials("kaudit-admin", ("system:masters",))
#: Flags that name files on the deployment's own machine: checked as declared, never passed on.
PATH_FLAGS = ("audit-log-path", "audit-policy-file")
_MAX_FAILURES_SHOWN = 20


@dataclass
class CheckContext:
    """What every check needs: the policy, the flags in force, and who the admin is."""

    policy: Policy
    policy_path: str
    flags: dict[str, str]
    admin: Credentials = OFFLINE_ADMIN
    canary_namespace: str = "kaudit-canary"
    gap_targets: list[Target] = field(default_factory=load_snapshot)


def rule_ref(policy: Policy, decision: Decision) -> RuleRef:
    """The deciding rule of ``decision`` for reports."""
    idx = decision.rule_index
    rule = policy.rules[idx] if idx is not None else None
    return RuleRef(idx, rule.line if rule else None, rule.summary() if rule else None,
                   policy.source or "<policy>")


def _status(failures: Sequence[Failure]) -> Status:
    return "fail" if failures else "pass"


# -- traffic ---------------------------------------------------------------------------------

def traffic_failures(req: Requirement, policy: Policy,
                     items: Sequence[tuple[RequestSpec, RequestAttributes, Logged,
                                           Sequence[str]]]) -> list[Failure]:
    """Failures of a traffic requirement over (request, attributes, what was logged, evidence)."""
    assert req.want is not None
    out = []
    for spec, attrs, logged, ev in items:
        problems = req.want.failures(spec, logged)
        if problems:
            decision = policy.evaluate_attributes(attrs)
            out.append(Failure(spec.describe(), tuple(problems), rule_ref(policy, decision),
                               tuple(ev)))
    return out


def predict_traffic(req: Requirement, ctx: CheckContext) -> list[Failure]:
    """Engine-only failures of a traffic requirement."""
    items = []
    for spec in req.specs():
        attrs = spec.attributes(ctx.admin)
        logged = predict(ctx.policy, attrs, sends_body=sends_body(spec),
                         authorized=True if spec.identity.kind == "admin" else None,
                         impersonated_user=spec.identity.user
                         if spec.identity.kind == "impersonated" else None)
        # "not logged" is already the problem's own words; a logged level is worth showing
        ev = [f"predicted: {logged.describe()}"] if logged.is_logged else []
        items.append((spec, attrs, logged, ev))
    return traffic_failures(req, ctx.policy, items)


def sends_body(spec: RequestSpec) -> bool:
    from pytest_kaudit.traffic import with_default_body

    return with_default_body(spec).has_body


# -- flags -----------------------------------------------------------------------------------

def flag_failures(check: FlagCheck, flags: Mapping[str, str], policy: Policy,
                  *, origin: str) -> list[Failure]:
    """Whether the flag set meets ``check``; ``origin`` says where the flags came from."""
    value = flags.get(check.name)
    subject = f"--{check.name} ({origin})"
    if value is None or value == "":
        return [Failure(subject, ("not set",))]
    if check.at_least is not None:
        try:
            number = _go_parse_int(value)
        except ValueError:
            return [Failure(subject, (f"{value!r} is not a whole number",))]
        if number < check.at_least:
            return [Failure(subject, (f"is {number}, must be at least {check.at_least}",))]
    if check.policy_has_rules and not policy.rules:
        return [Failure(subject, ("the policy has no rules, so nothing is logged",))]
    return []


def declared_flags(flags: Mapping[str, str], *, from_file: bool, policy_path: str
                   ) -> dict[str, str]:
    """The flags a run is checked against, before any cluster exists.

    With a flags file, it describes the whole deployment. Otherwise the cluster ``kaudit
    check`` runs sets the policy file and the log path itself, so those count as set.
    """
    out = {} if from_file else {"audit-policy-file": policy_path,
                                "audit-log-path": "(set by the test cluster)"}
    out.update(flags)
    return out


def real_flags(running: Mapping[str, str], declared: Mapping[str, str], *,
               from_file: bool) -> dict[str, str]:
    """The running apiserver's flags, with the file paths a flags file declared."""
    out = dict(running)
    if from_file:
        for name in PATH_FLAGS:
            if name in declared:
                out[name] = declared[name]
            else:
                out.pop(name, None)
    return out


# -- canary ----------------------------------------------------------------------------------

def canary_leaks(policy: Policy, step: Step, admin: Credentials) -> tuple[bool, Decision, Logged]:
    attrs = step.spec.attributes(admin)
    logged = predict(policy, attrs, sends_body=sends_body(step.spec), authorized=True)
    in_request = step.carrier in ("request", "both") and bool(logged.request_body)
    in_response = step.carrier in ("response", "both") and bool(logged.response_body)
    return in_request or in_response, policy.evaluate_attributes(attrs), logged


def predict_canary(ctx: CheckContext) -> list[Failure]:
    """Requests whose canary the engine lets into the log."""
    out = []
    for step in canary_plan(Canary("x", "y"), ctx.canary_namespace):
        if step.carrier is None:
            continue
        leaks, decision, logged = canary_leaks(ctx.policy, step, ctx.admin)
        if leaks:
            out.append(Failure(step.spec.describe(),
                               (f"the canary would be logged ({logged.describe()})",),
                               rule_ref(ctx.policy, decision)))
    return out


# -- gap -------------------------------------------------------------------------------------

def names_resource(policy: Policy, index: int | None, target: Target) -> bool:
    """Whether rule ``index`` names ``target``'s resource explicitly (not by wildcard)."""
    if index is None:
        return False
    for gr in policy.rules[index].resources:
        if gr.group == target.group and target.resource in gr.resources:
            return True
    return False


def gap_failures(policy: Policy, items: Sequence[tuple[Target, RequestSpec, RequestAttributes,
                                                       Logged, Sequence[str]]]) -> list[Failure]:
    """Writes not logged at Metadata or above whose deciding rule does not name them."""
    out = []
    for target, spec, attrs, logged, ev in items:
        if logged.is_logged and logged.level >= Level.METADATA:
            continue
        decision = policy.evaluate_attributes(attrs)
        if names_resource(policy, decision.rule_index, target):
            continue
        out.append(Failure(spec.describe(), ("a write that is not logged, and no rule names "
                                             "this resource",),
                           rule_ref(policy, decision), tuple(ev)))
    return out


def predict_gap(ctx: CheckContext) -> list[Failure]:
    """Engine-only gap check over the packaged discovery snapshot."""
    items = []
    for target, spec in gap_specs(ctx.gap_targets):
        attrs = spec.attributes(ctx.admin)
        logged = predict(ctx.policy, attrs, sends_body=True, authorized=None)
        items.append((target, spec, attrs, logged, [f"predicted: {logged.describe()}"]))
    return gap_failures(ctx.policy, items)


# -- whole runs ------------------------------------------------------------------------------

def predict_one(req: Requirement, ctx: CheckContext) -> tuple[Status, list[Failure]]:
    """The engine's answer for one requirement."""
    if req.kind == "traffic":
        failures = predict_traffic(req, ctx)
    elif req.kind == "flag":
        assert req.flag is not None
        failures = flag_failures(req.flag, ctx.flags, ctx.policy, origin="declared")
    elif req.kind == "canary":
        failures = predict_canary(ctx)
    else:
        failures = predict_gap(ctx)
    return _status(failures), failures


def predict_all(requirements: Sequence[Requirement], ctx: CheckContext) -> list[CheckResult]:
    """Every requirement decided by the engine alone."""
    out = []
    for req in requirements:
        status, failures = predict_one(req, ctx)
        out.append(CheckResult(req, predicted=status, status=status,
                               failures=failures[:_MAX_FAILURES_SHOWN],
                               requests=len(req.specs()), note=_more(failures)))
    return out


def _more(failures: Sequence[Failure]) -> str:
    extra = len(failures) - _MAX_FAILURES_SHOWN
    return f"{extra} more failing request(s) not shown" if extra > 0 else ""


def prove_all(requirements: Sequence[Requirement], ctx: CheckContext, session: TrafficSession,
              *, running_flags: Mapping[str, str], flags_from_file: bool) -> list[CheckResult]:
    """Send every requirement's requests to the real apiserver and judge the log."""
    predicted = {r.id: predict_one(r, ctx) for r in requirements}
    traffic = [r for r in requirements if r.kind == "traffic"]
    plan: list[tuple[Requirement, list[RequestSpec]]] = [(r, r.specs()) for r in traffic]
    gap_items: list[tuple[Target, RequestSpec]] = []
    if any(r.kind == "gap" for r in requirements):
        gap_items = gap_specs(server_targets(session))
    canary = Canary.new()
    steps = canary_plan(canary, ctx.canary_namespace) if any(
        r.kind == "canary" for r in requirements) else []
    batch = [s for _, specs in plan for s in specs] + [s for _, s in gap_items]
    with ThreadPoolExecutor(max_workers=1) as background:
        # the canary's requests depend on each other (create, then update...): one thread
        # sends them in order while the independent requests go out concurrently
        canary_future = background.submit(lambda: [session.send(st.spec) for st in steps])
        sent = session.send_all(batch)
        canary_sent = list(zip(steps, canary_future.result(), strict=True))
    verdicts = session.judge(sent + [s for _, s in canary_sent])
    by_spec = iter(verdicts[:len(batch)])
    results = []
    flags = real_flags(running_flags, ctx.flags, from_file=flags_from_file)
    traffic_verdicts = {r.id: [next(by_spec) for _ in specs] for r, specs in plan}
    gap_verdicts = [next(by_spec) for _ in gap_items]
    canary_verdicts = verdicts[len(batch):]
    for req in requirements:
        p_status, _ = predicted[req.id]
        bugs: list[str] = []
        n = 0
        if req.kind == "traffic":
            vs = traffic_verdicts[req.id]
            n = len(vs)
            items = [(v.sent.spec, v.sent.attributes, v.observed, evidence(v.events)
                      or ["no events logged"]) for v in vs]
            failures = traffic_failures(req, ctx.policy, items)
            bugs = [f"{v.sent.spec.describe()} (auditID {v.sent.audit_id}): "
                    + "; ".join(v.engine_disagreements) for v in vs if v.engine_disagreements]
        elif req.kind == "flag":
            assert req.flag is not None
            failures = flag_failures(req.flag, flags, ctx.policy, origin="running apiserver")
        elif req.kind == "gap":
            n = len(gap_verdicts)
            gitems = [(t, v.sent.spec, v.sent.attributes, v.observed, evidence(v.events))
                      for (t, _), v in zip(gap_items, gap_verdicts, strict=True)]
            failures = gap_failures(ctx.policy, gitems)
            bugs = [f"{v.sent.spec.describe()} (auditID {v.sent.audit_id}): "
                    + "; ".join(v.engine_disagreements) for v in gap_verdicts
                    if v.engine_disagreements]
        else:
            n = len(canary_sent)
            failures = _canary_failures(ctx, session, canary, canary_sent)
            bugs = [f"{v.sent.spec.describe()} (auditID {v.sent.audit_id}): "
                    + "; ".join(v.engine_disagreements) for v in canary_verdicts
                    if v.engine_disagreements]
        status = _status(failures)
        if status != p_status:
            bugs.append(f"the engine predicted {p_status}, the real log says {status}")
        results.append(CheckResult(req, predicted=p_status, status=status,
                                   failures=failures[:_MAX_FAILURES_SHOWN], engine_bugs=bugs,
                                   requests=n, proven=True, note=_more(failures)))
    return results


def _canary_failures(ctx: CheckContext, session: TrafficSession, canary: Canary,
                     sent: Sequence[tuple[Step, Sent]]) -> list[Failure]:
    tokens = [t for _, s in sent if (t := issued_token(s.response))]
    hits, _ = scan_log(session.handle.log_source, canary.forms(extra=tokens))
    by_id = {s.audit_id: s for _, s in sent}
    forms_at: dict[tuple[str, int], list[str]] = {}
    ids_at: dict[tuple[str, int], str | None] = {}
    for hit in hits:
        forms_at.setdefault((hit.file, hit.line), []).append(hit.form)
        ids_at[(hit.file, hit.line)] = hit.audit_id
    out = []
    for (file, line), forms in forms_at.items():
        s = by_id.get(ids_at[(file, line)] or "")
        subject = s.spec.describe() if s else f"auditID {ids_at[(file, line)] or 'unknown'}"
        rule = rule_ref(ctx.policy, ctx.policy.evaluate_attributes(s.attributes)) if s else None
        out.append(Failure(subject, (f"{file}:{line} holds the {', the '.join(forms)}",), rule))
    return out

"""One ``kaudit check`` run: choose requirements, predict, prove on a real cluster, fix, report.

Used by the CLI and by the pytest integration alike, so both answer the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from pytest_kaudit.backends.base import Backend, ClusterHandle, ClusterSpec
from pytest_kaudit.compliance import DEFAULT_PACKS
from pytest_kaudit.compliance.checks import (
    CheckContext,
    declared_flags,
    predict_all,
    prove_all,
)
from pytest_kaudit.compliance.fixes import suggest_fix
from pytest_kaudit.compliance.load import load_requirements
from pytest_kaudit.compliance.model import Requirement
from pytest_kaudit.compliance.packs import PACKS, available, load_pack
from pytest_kaudit.compliance.results import CheckResult, Report
from pytest_kaudit.errors import KauditError
from pytest_kaudit.policy import Policy


@dataclass(frozen=True)
class CheckOptions:
    """What to check, and against which flags."""

    policy_path: str
    packs: tuple[str, ...] = DEFAULT_PACKS
    flags: dict[str, str] = field(default_factory=dict)
    flags_from_file: bool = False
    offline: bool = False
    boot_timeout: float = 120.0
    timeout: float = 10.0


def select_requirements(packs: Sequence[str], files: Sequence[str]) -> list[Requirement]:
    """Built-in packs then user files, in order; ids must be unique across all of them.

    Raises:
        KauditError: an unknown pack or a repeated id.
        RequirementsError: a user file with problems (file:line for each).
    """
    have = available()
    out: list[Requirement] = []
    for name in packs:
        if name not in have:
            known = ", ".join(have) or "none"
            hint = " (it is not built yet)" if name in PACKS else ""
            raise KauditError(f"unknown pack {name!r}{hint}; packs: {known}")
        out += load_pack(name)
    for path in files:
        out += load_requirements(path)
    seen: dict[str, Requirement] = {}
    for req in out:
        if req.id in seen:
            raise KauditError(f"requirement id {req.id!r} is defined twice: "
                              f"{seen[req.id].where} and {req.where}")
        seen[req.id] = req
    return out


def conflicts(requirements: Sequence[Requirement]) -> list[str]:
    """Plain sentences for every pair of selected requirements that cannot both be met."""
    by_id = {r.id: r for r in requirements}
    out = []
    done: set[frozenset[str]] = set()
    for req in requirements:
        for other_id in req.conflicts_with:
            other = by_id.get(other_id)
            pair = frozenset((req.id, other_id))
            if other is None or pair in done:
                continue
            done.add(pair)
            out.append(f"{req.id} ({req.title}) and {other.id} ({other.title}) cannot both "
                       "be met by one policy: one of them will fail whatever the policy says.")
    return out


#: Declared flags the test cluster runs with, so the real run reads them back from it. Paths
#: name the deployment's machine; format, mode and truncation would change what is judged.
PASSED_FLAGS = ("audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize",
                "audit-log-compress")


def passable_flags(flags: dict[str, str]) -> dict[str, str]:
    """The declared rotation flags, for the test cluster."""
    return {k: v for k, v in flags.items() if k in PASSED_FLAGS}


def run_check(policy: Policy, requirements: Sequence[Requirement], opts: CheckOptions, *,
              backend: Callable[[], Backend] | None = None) -> Report:
    """Check ``requirements`` against ``policy``: offline, or proven on a cluster that
    ``backend()`` boots for this run and stops afterwards."""
    if opts.offline or backend is None:
        return check_on(policy, requirements, opts, handle=None)
    engine = backend()
    handle = engine.start(cluster_spec(policy, opts))
    try:
        return check_on(policy, requirements, opts, handle=handle)
    finally:
        engine.stop(handle)
        stop_all = getattr(engine, "stop_all", None)
        if stop_all is not None:
            stop_all()


def cluster_spec(policy: Policy, opts: CheckOptions) -> ClusterSpec:
    """The cluster a real run needs: the policy, and the audit log flags it can run with."""
    return ClusterSpec(policy=policy, flags=passable_flags(opts.flags),
                       timeout=opts.boot_timeout)


def check_on(policy: Policy, requirements: Sequence[Requirement], opts: CheckOptions, *,
             handle: ClusterHandle | None) -> Report:
    """Check on a running cluster (``handle``), or with the engine only (``None``)."""
    started = time.monotonic()
    flags = declared_flags(opts.flags, from_file=opts.flags_from_file,
                           policy_path=opts.policy_path)
    ctx = CheckContext(policy=policy, policy_path=opts.policy_path, flags=flags)
    backend_name = version = ""
    if handle is None:
        results = predict_all(requirements, ctx)
    else:
        backend_name = handle.backend
        version = f"{handle.version[0]}.{handle.version[1]}"
        real_ctx = replace(ctx, admin=handle.admin)
        from pytest_kaudit.traffic import TrafficSession  # the kubernetes client: not offline

        with TrafficSession(handle, policy, name="kaudit check",
                            timeout=opts.timeout) as session:
            results = prove_all(requirements, real_ctx, session,
                                running_flags=handle.apiserver_flags,
                                flags_from_file=opts.flags_from_file)
    _add_fixes(results, ctx)
    return Report(policy=opts.policy_path, policy_text=policy.text or "",
                  packs=list(dict.fromkeys(r.pack for r in requirements)),
                  mode="offline" if handle is None else "real",
                  results=results, conflicts=conflicts(requirements), backend=backend_name,
                  apiserver_version=version, seconds=time.monotonic() - started,
                  policy_warnings=[str(w) for w in policy.warnings])


def _add_fixes(results: list[CheckResult], ctx: CheckContext) -> None:
    for result in results:
        if result.predicted == "fail":
            result.fix = suggest_fix(result.requirement, ctx)

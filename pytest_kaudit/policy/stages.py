"""Which stages kube-apiserver logs for one request under a policy decision.

The audit filter (kubernetes ``staging/src/k8s.io/apiserver/pkg/endpoints/filters/audit.go``)
logs every audited request at RequestReceived and, when the handler returns, at
ResponseComplete; a long-running request (``RequestAttributes.is_long_running``) is also
logged at ResponseStarted when its answer begins, and a handler that panics is logged at Panic
instead of ResponseComplete. A request that fails authentication never reaches that filter:
``authn_audit.go`` in the same folder logs it once, at ResponseStarted. The policy's
``omitStages`` (``staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go``) then drop
stages, and level None logs nothing.
"""

from __future__ import annotations

from collections.abc import Set

from pytest_kaudit.policy.model import Decision, Level, Stage
from pytest_kaudit.policy.request import RequestAttributes

#: The stages that close a request: one of them ends every request the filter saw through.
FINAL_STAGES = frozenset({Stage.RESPONSE_COMPLETE, Stage.PANIC})

_FAILED_AUTHENTICATION = frozenset({Stage.RESPONSE_STARTED})
_SHORT = frozenset({Stage.REQUEST_RECEIVED, Stage.RESPONSE_COMPLETE})
_LONG = _SHORT | {Stage.RESPONSE_STARTED}


def emitted_stages(
    level: Level,
    omit_stages: Set[Stage] = frozenset(),
    *,
    unauthenticated: bool,
    long_running: bool,
    panicked: bool = False,
) -> frozenset[Stage]:
    """The stages logged for a request decided at ``level`` with ``omit_stages``.

    ``unauthenticated``: the request failed authentication (a 401 with no user);
    ``panicked``: its handler panicked (Panic replaces ResponseComplete; never predicted
    unless a logged event says so).
    """
    if level == Level.NONE:
        return frozenset()
    if unauthenticated:
        stages = _FAILED_AUTHENTICATION
    else:
        stages = _LONG if long_running else _SHORT
        if panicked:
            stages = (stages - {Stage.RESPONSE_COMPLETE}) | {Stage.PANIC}
    return stages - omit_stages


def stages_for(attrs: RequestAttributes, decision: Decision, *,
               panicked: bool = False) -> frozenset[Stage]:
    """The stages logged for the request ``attrs`` under ``decision``."""
    return emitted_stages(decision.level, decision.omit_stages,
                          unauthenticated=attrs.user is None,
                          long_running=attrs.is_long_running, panicked=panicked)

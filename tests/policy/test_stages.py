"""The one stage-emission rule, case by case."""

from __future__ import annotations

from pytest_kaudit.policy import Decision, Level, RequestAttributes, Stage
from pytest_kaudit.policy.stages import FINAL_STAGES, emitted_stages, stages_for

RR, RS, RC, PANIC = (Stage.REQUEST_RECEIVED, Stage.RESPONSE_STARTED, Stage.RESPONSE_COMPLETE,
                     Stage.PANIC)


def _stages(level: Level = Level.METADATA, omit: frozenset[Stage] = frozenset(), *,
            unauthenticated: bool = False, long_running: bool = False,
            panicked: bool = False) -> frozenset[Stage]:
    return emitted_stages(level, omit, unauthenticated=unauthenticated,
                          long_running=long_running, panicked=panicked)


def test_each_case() -> None:
    assert _stages() == {RR, RC}
    assert _stages(long_running=True) == {RR, RS, RC}
    assert _stages(unauthenticated=True) == {RS}
    assert _stages(unauthenticated=True, long_running=True, panicked=True) == {RS}
    assert _stages(panicked=True) == {RR, PANIC}
    assert _stages(long_running=True, panicked=True) == {RR, RS, PANIC}
    assert _stages(omit=frozenset({RR})) == {RC}
    assert _stages(omit=frozenset({RS}), unauthenticated=True) == frozenset()
    assert _stages(Level.NONE) == frozenset()
    assert _stages(Level.REQUEST_RESPONSE) == _stages(Level.METADATA)
    assert FINAL_STAGES == {RC, PANIC}


def test_from_attributes_and_decision() -> None:
    watch = RequestAttributes.from_http("GET", "/api/v1/pods?watch=1", user="a")
    get = RequestAttributes.from_http("GET", "/api/v1/namespaces/n/pods/p", user="a")
    exec_ = RequestAttributes.from_http("POST", "/api/v1/namespaces/n/pods/p/exec", user="a")
    anonymous = RequestAttributes.from_http("GET", "/api/v1/pods")
    decided = Decision(Level.METADATA, omit_stages=frozenset({RR}))
    assert stages_for(watch, decided) == {RS, RC}
    assert stages_for(exec_, decided) == {RS, RC}
    assert stages_for(get, decided) == {RC}
    assert stages_for(anonymous, decided) == {RS}
    assert stages_for(get, Decision(Level.NONE)) == frozenset()

"""``kaudit.expect(...).logged()`` and ``.not_logged()``: assertions over the real audit log.

``logged`` waits, up to one deadline, for a matching event and then checks level, stages and
bodies. ``not_logged`` never waits for time to pass: it sends a barrier request that is known
to be logged and, once the barrier's event is in the file, everything sent before it is too.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_kaudit.errors import KauditError
from pytest_kaudit.events.model import AuditEvent
from pytest_kaudit.expect.criteria import Criteria, parse_user_level, parse_user_stages
from pytest_kaudit.expect.report import (
    Prediction,
    contradiction,
    describe_event,
    failure_message,
    stage_list,
)
from pytest_kaudit.policy.bodies import request_body_logged, response_body_logged
from pytest_kaudit.policy.model import Decision, Level, Stage
from pytest_kaudit.policy.stages import stages_for

_POLL_INTERVAL = 0.01


class EventWindow(Protocol):
    """What an expectation needs from the test it runs in (the ``kaudit`` fixture)."""

    def poll_events(self, scope: str) -> list[AuditEvent]:
        """Every event of the scope logged so far in this test (reads what is new first)."""
        ...

    def barrier(self, timeout: float) -> str:
        """Send a request known to be logged, wait for its event; describe it."""
        ...

    def predict(self, criteria: Criteria, events: Sequence[AuditEvent]) -> Prediction | None:
        """The policy's decision for the request the criteria describe."""
        ...

    def decide(self, event: AuditEvent) -> Decision | None:
        """The policy's decision for the request behind a logged event."""
        ...

    def request_had_body(self, audit_id: str) -> bool | None:
        """Whether our client sent a body with that request (None: not sent by us)."""
        ...

    def describe_scope(self, scope: str, count: int) -> str:
        """Where was searched, for the failure message."""
        ...

    default_timeout: float


@dataclass(frozen=True)
class _Request:
    """All logged stages of one request (one auditID)."""

    audit_id: str
    events: tuple[AuditEvent, ...]

    @property
    def stages(self) -> frozenset[Stage]:
        return frozenset(e.stage for e in self.events)

    @property
    def final(self) -> AuditEvent:
        return self.events[-1]


def _group(events: Iterable[AuditEvent]) -> list[_Request]:
    by_id: dict[str, list[AuditEvent]] = defaultdict(list)
    for event in events:
        by_id[event.audit_id].append(event)
    return [_Request(k, tuple(v)) for k, v in by_id.items()]


def predicted_stages(event: AuditEvent, decision: Decision) -> frozenset[Stage]:
    """The stages the apiserver emits for the request behind ``event``."""
    return stages_for(event.attributes, decision, panicked=event.stage == Stage.PANIC)


def _requests_of(matched: Sequence[AuditEvent], events: Sequence[AuditEvent]) -> list[_Request]:
    ids = {e.audit_id for e in matched}
    return _group(e for e in events if e.audit_id in ids)


class Expectation:
    """An expectation over this test's audit events; see :meth:`logged` and :meth:`not_logged`."""

    def __init__(self, window: EventWindow, criteria: Criteria, *, scope: str = "test") -> None:
        self._window = window
        self.criteria = criteria
        self.scope = scope

    def __repr__(self) -> str:
        return f"<Expectation {self.criteria!r}>"

    def _matching(self) -> tuple[list[AuditEvent], list[AuditEvent]]:
        events = self._window.poll_events(self.scope)
        return events, [e for e in events if self.criteria.match(e)]

    def _expected_stages(self, req: _Request,
                         stages: frozenset[Stage] | None) -> frozenset[Stage] | None:
        if stages is not None:
            return stages
        decision = self._window.decide(req.final)
        return predicted_stages(req.final, decision) if decision is not None else None

    def logged(
        self,
        *,
        level: Level | str | None = None,
        stages: Iterable[Stage | str] | None = None,
        count: int | None = None,
        request_object: bool | None = None,
        response_object: bool | None = None,
        timeout: float | None = None,
    ) -> list[AuditEvent]:
        """Wait until matching events are logged, check them, and return them.

        Args:
            level: the level every matching event must carry.
            stages: the exact set of stages each matching request must have logged. By
                default the stages the policy implies: RequestReceived and ResponseComplete
                (+ ResponseStarted for long-running requests) minus the omitted ones; an
                omitted stage that shows up fails the expectation.
            count: how many distinct requests (auditIDs) must match.
            request_object: require (True) or forbid (False) a request body. By default it is
                required where the level is Request+ and our client sent a body, and forbidden
                below Request.
            response_object: likewise for the response body (RequestResponse only).
            timeout: seconds to wait (default: the ``kaudit_timeout`` setting).

        Returns:
            The matching events, in log order.

        Raises:
            AssertionError: explaining what was expected, what the policy predicts and the
                nearest events that were logged.
        """
        __tracebackhide__ = True
        want_level = parse_user_level(level, "logged(level=...)") if level is not None else None
        want_stages = (parse_user_stages(stages, "logged(stages=...)") if stages is not None
                       else None)
        wait = timeout if timeout is not None else self._window.default_timeout
        deadline = time.monotonic() + wait
        fenced = False
        while True:
            events, matched = self._matching()
            # a request's stages are judged on all its events: RequestReceived, for one, has
            # no impersonatedUser or decision, so filters on those never match it
            requests = _requests_of(matched, events)
            if matched and self._complete(requests, want_stages, count):
                break
            if matched and not fenced and not any(r.final.attributes.is_long_running
                                                  for r in requests):
                # Everything of a finished short request is logged once a later barrier is:
                # judge it now instead of waiting the whole timeout for stages never coming.
                fenced = self._fence(max(0.1, deadline - time.monotonic()))
                if fenced:
                    events, matched = self._matching()
                    requests = _requests_of(matched, events)
                    break
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_INTERVAL)

        problems: list[str] = []
        if not matched:
            at_level = f" at level {want_level.value}" if want_level else ""
            headline = (f"expected an audit event{at_level}"
                        f" matching the filters, found none")
            self._fail(headline, events, want_level, want_stages, expect_logged=True)
        if count is not None and len(requests) != count:
            problems.append(f"expected {count} matching request(s), found {len(requests)}")
        for req in requests:
            problems += self._check_request(req, want_level, want_stages,
                                            request_object=request_object,
                                            response_object=response_object)
        if problems:
            n = len(requests)
            headline = (f"{n} matching request{'s' if n != 1 else ''} logged, but "
                        f"{len(problems)} check{'s' if len(problems) != 1 else ''} failed")
            details = ["problems:"] + [f"  - {p}" for p in problems]
            details += ["matching events:"] + [f"  - {describe_event(e)}" for e in matched[:10]]
            self._fail(headline, events, want_level, want_stages, expect_logged=True,
                       details=details, show_near=False)
        return matched

    def _fence(self, timeout: float) -> bool:
        """Send a barrier; False when this cluster cannot have one (then keep waiting)."""
        try:
            self._window.barrier(timeout)
        except KauditError:
            return False
        return True

    def _complete(self, requests: list[_Request], stages: frozenset[Stage] | None,
                  count: int | None) -> bool:
        if count is not None and len(requests) < count:
            return False
        for req in requests:
            expected = self._expected_stages(req, stages)
            if expected is not None and not expected <= req.stages:
                return False
        return True

    def _check_request(self, req: _Request, level: Level | None, stages: frozenset[Stage] | None,
                       *, request_object: bool | None,
                       response_object: bool | None) -> list[str]:
        out: list[str] = []
        final = req.final
        who = f"request {req.audit_id} ({final.verb} {final.resource or final.path})"
        levels = {e.level for e in req.events}
        if level is not None and levels != {level}:
            out.append(f"{who} logged at {', '.join(sorted(lv.value for lv in levels))}, "
                       f"expected {level.value}")
        decision = self._window.decide(final)
        expected = self._expected_stages(req, stages)
        if expected is not None and req.stages != expected:
            missing, extra = expected - req.stages, req.stages - expected
            text = f"{who} logged stages {stage_list(req.stages)}; expected {stage_list(expected)}"
            if missing:
                text += f" (missing {stage_list(missing)})"
            if extra:
                omitted = extra & decision.omit_stages if decision else frozenset()
                text += f" (unexpected {stage_list(extra)}"
                text += ", which the policy omits)" if omitted else ")"
            out.append(text)
        out += self._check_bodies(req, who, request_object=request_object,
                                  response_object=response_object)
        return out

    def _check_bodies(self, req: _Request, who: str, *, request_object: bool | None,
                      response_object: bool | None) -> list[str]:
        out: list[str] = []
        final = req.final
        has_req = any(e.has_request_object for e in req.events)
        has_resp = any(e.has_response_object for e in req.events)
        lvl = final.level
        attrs, status = final.attributes, final.response_code
        if request_object is None:
            request_object = request_body_logged(
                lvl, attrs, req.stages, sends_body=self._window.request_had_body(req.audit_id),
                status=status)
        if response_object is None:
            response_object = response_body_logged(lvl, attrs, req.stages, status=status)
        for name, want, has in (("request", request_object, has_req),
                                ("response", response_object, has_resp)):
            if want is True and not has:
                out.append(f"{who} has no {name} body (requestObject/responseObject), "
                           f"expected one at level {lvl.value}")
            elif want is False and has:
                out.append(f"{who} carries a {name} body, expected none at level {lvl.value}")
        return out

    def not_logged(self, *, timeout: float | None = None) -> None:
        """Assert that no matching event was logged in this test.

        Sound, not hopeful: first a barrier request known to be logged is sent and its event
        awaited, so every request this test sent before is already in the log.
        """
        __tracebackhide__ = True
        barrier = self._window.barrier(
            timeout if timeout is not None else self._window.default_timeout
        )
        events, matched = self._matching()
        if matched:
            n = len(matched)
            self._fail(
                f"expected no audit event matching the filters, found {n}",
                matched, None, None, expect_logged=False,
                details=[f"log complete up to: {barrier}"],
                near_title="offending events",
            )

    def _fail(self, headline: str, events: Sequence[AuditEvent], level: Level | None,
              stages: frozenset[Stage] | None, *, expect_logged: bool,
              details: Sequence[str] = (), show_near: bool = True,
              near_title: str = "nearest events logged in this test") -> None:
        __tracebackhide__ = True
        prediction = self._window.predict(self.criteria, events)
        message = failure_message(
            headline,
            self.criteria,
            prediction=prediction,
            contradicts=contradiction(prediction, level, stages, expect_logged=expect_logged),
            scope=self._window.describe_scope(self.scope, len(events)),
            events=events,
            details=details,
            near_title=near_title,
            show_near=show_near,
        )
        raise AssertionError(message)

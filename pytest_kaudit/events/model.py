"""A typed, read-only view of one audit event line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_kaudit.events.attributes import attributes_from_event, group_version
from pytest_kaudit.policy.model import Level, Stage
from pytest_kaudit.policy.request import RequestAttributes


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One ``audit.k8s.io`` Event as the apiserver wrote it.

    Fields speak the audit API's words in snake_case (``objectRef.apiGroup`` → ``api_group``).
    ``raw`` is the decoded JSON object, untouched; ``file`` says which log it was read from.
    """

    level: Level
    stage: Stage
    verb: str
    audit_id: str
    user: str
    groups: tuple[str, ...]
    impersonated_user: str | None
    impersonated_groups: tuple[str, ...]
    namespace: str
    resource: str
    subresource: str
    name: str
    api_group: str
    response_code: int | None
    # Bodies stay out of repr: an assert that shows an event must not print Secret data.
    request_object: Any = field(repr=False)
    response_object: Any = field(repr=False)
    annotations: Mapping[str, str] = field(repr=False)
    request_uri: str = ""
    user_agent: str = ""
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    file: str = ""

    @property
    def code(self) -> int | None:
        """Alias of ``response_code``, the name filters use."""
        return self.response_code

    @property
    def decision(self) -> str | None:
        """``authorization.k8s.io/decision``: ``allow`` or ``forbid`` (None if not authorised
        yet).
        """
        return self.annotations.get("authorization.k8s.io/decision")

    @property
    def has_request_object(self) -> bool:
        """True when the event carries a request body."""
        return "requestObject" in self.raw

    @property
    def has_response_object(self) -> bool:
        """True when the event carries a response body."""
        return "responseObject" in self.raw

    @property
    def path(self) -> str:
        """The request path without its query string."""
        return self.request_uri.split("?", 1)[0]

    @property
    def is_resource_request(self) -> bool:
        """Resource requests carry an ``objectRef``; non-resource ones (``/healthz``) do not."""
        return "objectRef" in self.raw

    @property
    def attributes(self) -> RequestAttributes:
        """What the apiserver's policy checker saw for this event's request."""
        return attributes_from_event(self.raw)


def event_from_dict(obj: Mapping[str, Any], *, file: str = "") -> AuditEvent:
    """Build an :class:`AuditEvent` from one decoded JSON object (v1, v1beta1 or v1alpha1).

    Raises:
        ValueError: the object is not an audit Event (no ``stage`` / ``auditID``).
    """
    if obj.get("kind", "Event") != "Event" or "stage" not in obj or "auditID" not in obj:
        raise ValueError("not an audit.k8s.io Event (missing kind/stage/auditID)")
    user = obj.get("user") or {}
    imp = obj.get("impersonatedUser") or {}
    ref = obj.get("objectRef") or {}
    status = obj.get("responseStatus") or {}
    api_group, _ = group_version(ref)
    level_raw = obj.get("level", "None")
    stage_raw = obj["stage"]
    return AuditEvent(
        level=Level(level_raw) if level_raw in Level._value2member_map_ else Level.NONE,
        stage=Stage(stage_raw),
        verb=obj.get("verb", ""),
        audit_id=obj["auditID"],
        user=user.get("username", ""),
        groups=tuple(user.get("groups") or ()),
        impersonated_user=imp.get("username") if imp else None,
        impersonated_groups=tuple(imp.get("groups") or ()),
        namespace=ref.get("namespace", ""),
        resource=ref.get("resource", ""),
        subresource=ref.get("subresource", ""),
        name=ref.get("name", ""),
        api_group=api_group,
        response_code=status.get("code"),
        request_object=obj.get("requestObject"),
        response_object=obj.get("responseObject"),
        annotations=obj.get("annotations") or {},
        request_uri=obj.get("requestURI", ""),
        user_agent=obj.get("userAgent", ""),
        raw=obj,
        file=file,
    )

"""One audit log line decoded into a typed record that holds only what replay needs.

msgspec decodes a line straight into these structs in C: fields replay does not read are
skipped without building Python objects, and the request/response bodies are kept as
:class:`msgspec.Raw` slices of the line, so their size is known without decoding them.
Types are checked while decoding: ``level: 5``, ``stage: "Bogus"`` or a timestamp that is not
RFC 3339 with a zone make the line a rejected one, with a reason that names the field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Generic, Literal, TypeVar

import msgspec

from pytest_kaudit._suggest import did_you_mean
from pytest_kaudit.policy.model import Level, Stage

#: The apiserver's own spelling of each level and stage, from the enums.
LEVEL_OF: Final[Mapping[str, Level]] = {level.value: level for level in Level}
STAGE_OF: Final[Mapping[str, Stage]] = {stage.value: stage for stage in Stage}

if TYPE_CHECKING:
    LevelName = str
    StageName = str
else:
    # Decoded as literals, msgspec checks the value in C and hands back the one shared string
    # object of each spelling: hashed once, compared by identity in the per-line counters.
    LevelName = Literal[tuple(LEVEL_OF)]
    StageName = Literal[tuple(STAGE_OF)]

_NO_BODY: Final = msgspec.Raw(b"")


class UserRecord(msgspec.Struct, frozen=True, gc=False):
    """``user``: who sent the request (``{}`` for a request that failed authentication)."""

    username: str = ""
    groups: tuple[str, ...] = ()


class RequestRef(msgspec.Struct, frozen=True, gc=False):
    """``objectRef`` without namespace and name: all a policy that lists neither can see.

    Hashable, so the engine can look the target of a request up without building a key.
    """

    resource: str = ""
    subresource: str = ""
    api_group: str = msgspec.field(default="", name="apiGroup")
    api_version: str = msgspec.field(default="", name="apiVersion")


class NamespacedRef(RequestRef, frozen=True, gc=False):
    """``objectRef`` with its namespace, for policies whose rules list namespaces."""

    namespace: str = ""


class ObjectRefRecord(NamespacedRef, frozen=True, gc=False):
    """The whole ``objectRef`` replay knows of, for policies whose rules list object names."""

    name: str = ""


RefT = TypeVar("RefT", bound=RequestRef)


class EventRecord(msgspec.Struct, Generic[RefT], kw_only=True, gc=False):
    """The fields of an ``audit.k8s.io`` Event that replay reads; the rest are skipped.

    ``RefT`` is how much of ``objectRef`` is decoded (see :func:`ref_type_for`).

    ``level`` and ``stage`` stay strings here (the enums' values; :data:`LEVEL_OF` and
    :data:`STAGE_OF` turn them into members) because strings hash faster than enum members
    in the per-line counters.
    """

    level: LevelName
    stage: StageName
    audit_id: str = msgspec.field(name="auditID")
    verb: str = ""
    request_uri: str = msgspec.field(default="", name="requestURI")
    user: UserRecord
    object_ref: RefT | None = msgspec.field(default=None, name="objectRef")
    request_object: msgspec.Raw = msgspec.field(default=_NO_BODY, name="requestObject")
    response_object: msgspec.Raw = msgspec.field(default=_NO_BODY, name="responseObject")
    received: Annotated[datetime, msgspec.Meta(tz=True)] = msgspec.field(
        name="requestReceivedTimestamp"
    )

    def as_event(self) -> dict[str, Any]:
        """The record as the decoded JSON the event-to-attributes function takes."""
        event: dict[str, Any] = {
            "level": self.level,
            "stage": self.stage,
            "auditID": self.audit_id,
            "verb": self.verb,
            "requestURI": self.request_uri,
            "user": {"username": self.user.username, "groups": list(self.user.groups)},
        }
        ref = self.object_ref
        if ref is not None:
            event["objectRef"] = {
                "resource": ref.resource,
                "namespace": ref.namespace if isinstance(ref, NamespacedRef) else "",
                "name": ref.name if isinstance(ref, ObjectRefRecord) else "",
                "apiGroup": ref.api_group,
                "apiVersion": ref.api_version,
                "subresource": ref.subresource,
            }
        return event


def ref_type_for(*, namespaces: bool, names: bool) -> type[RequestRef]:
    """The smallest ``objectRef`` record that still holds what a policy's rules look at."""
    if names:
        return ObjectRefRecord
    return NamespacedRef if namespaces else RequestRef


@functools.cache
def record_decoder(ref_type: type[RefT]) -> Callable[[bytes], EventRecord[RefT]]:
    """A decoder of one line into a record; raises :class:`msgspec.DecodeError`."""
    decoder: msgspec.json.Decoder[EventRecord[RefT]] = msgspec.json.Decoder(
        EventRecord[ref_type]  # type: ignore[valid-type]
    )
    return decoder.decode


#: Decodes one line with the whole ``objectRef``.
decode_record = record_decoder(ObjectRefRecord)

_ANY = msgspec.json.Decoder()
_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)



def rejection(line: bytes, error: msgspec.DecodeError) -> str:
    """Why ``line`` is not a usable event, naming the field; never quotes a body or name.

    Called only for rejected lines, so it can afford a second, untyped decode to tell "not
    an audit event at all" from "an event with one bad field".
    """
    if not isinstance(error, msgspec.ValidationError):
        return "not JSON"
    try:
        obj = _ANY.decode(line)
    except msgspec.DecodeError:
        return "not JSON"
    if not isinstance(obj, dict):
        return "not a JSON object"
    if "stage" not in obj or "auditID" not in obj:
        return "not an audit event (no stage/auditID)"
    if not isinstance(obj.get("user"), dict):
        return "not an audit event (no user)"
    for key, table, what in (("level", LEVEL_OF, "level"), ("stage", STAGE_OF, "stage")):
        if key not in obj:
            return f"{key}: missing"
        value = obj[key]
        if not isinstance(value, str):
            return f"{key}: expected a string, got {_json_type(value)}"
        if value not in table:
            return (
                f"{key}: {_clip(value)!r} is not an audit {what} (expected "
                f"{', '.join(table)}{did_you_mean(value, table)})"
            )
    match = _AT.match(str(error))
    assert match is not None  # the pattern matches any text
    what, path = match["what"], match["path"]
    if what.startswith("Object missing required field"):
        field = what.rsplit(" ", 1)[-1].strip("`")
        return f"{(path + '.' if path else '')[1:]}{field}: missing"
    where = (path or "").lstrip(".") or "event"
    if "datetime" in what or "RFC3339" in what:
        return f"{where}: not an RFC 3339 time with a zone (such as 2024-01-02T03:04:05.000000Z)"
    return f"{where}: {what[:1].lower()}{what[1:]}"


def _json_type(value: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", list: "an array",
            dict: "an object"}.get(type(value), "null")


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

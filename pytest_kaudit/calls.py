"""One Kubernetes call through an ``ApiClient``'s REST layer, answered with the client's model.

The generated API classes are the client's heaviest import: ``CoreV1Api``'s module loads about
250 model classes (0.6 s on a 2-core machine, where a whole warm run now costs about 1 s beyond
its tests), while creating and reading a Secret needs three. The plugin's actions and
housekeeping therefore send the request a generated method would send (method, path, ``Accept``,
``Content-Type``, ``User-Agent`` and a JSON body) through ``api.rest_client.request``, the one
funnel ``client.py`` tags with Audit-IDs, and build only the model class the answer is. Callers
still get the client's own ``V1Secret``, and an error answer still raises its ``ApiException``
(the status's subclass where the release has them), as a generated method does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol, TypeVar, cast

import kubernetes.client
from kubernetes.client.exceptions import ApiException

ModelT = TypeVar("ModelT")
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


class _Response(Protocol):
    status: int
    reason: str | None
    data: bytes | str | None


def send(api: kubernetes.client.ApiClient, method: str, path: str, *, body: object = None,
         content_type: str = JSON) -> _Response:
    """Send one request and return the REST layer's response, read.

    Client releases whose REST layer raises ``ApiException`` on an error answer raise it here;
    later releases return the answer, and :func:`call` raises.
    """
    headers = {**api.default_headers, "Accept": JSON}
    if body is not None:
        headers["Content-Type"] = content_type
    response = api.rest_client.request(  # type: ignore[no-untyped-call]
        method.upper(), api.configuration.host + path, headers=headers, body=body)
    if getattr(response, "data", None) is None and callable(getattr(response, "read", None)):
        response.read()  # releases that read the body on demand
    return cast(_Response, response)


def call(api: kubernetes.client.ApiClient, method: str, path: str, returns: type[ModelT], *,
         body: object = None, content_type: str = JSON) -> ModelT:
    """Send one request and build its answer as ``returns``; an error answer raises."""
    response = send(api, method, path, body=body, content_type=content_type)
    raw = response.data or b""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if not 200 <= response.status <= 299:
        from_response = getattr(ApiException, "from_response", None)
        if from_response is not None:
            from_response(http_resp=response, body=text, data=None)  # raises the status's class
        raise ApiException(http_resp=response)
    return _model(api, returns, text)


def _model(api: kubernetes.client.ApiClient, returns: type[ModelT], text: str) -> ModelT:
    from_dict = getattr(returns, "from_dict", None)
    if from_dict is not None:  # the pydantic models of recent releases
        return cast(ModelT, from_dict(json.loads(text)))
    # earlier releases' models: their deserializer takes (response with ``.data``, class)
    deserialize: Callable[[_Text, type[ModelT]], ModelT] = api.deserialize  # type: ignore[assignment]
    return deserialize(_Text(text), returns)


class _Text:
    """A read response, as the deserializer of earlier client releases takes it."""

    def __init__(self, data: str) -> None:
        self.data = data

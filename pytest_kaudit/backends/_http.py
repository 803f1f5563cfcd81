"""HTTPS to an apiserver: one TLS context builder, one request, one wait-with-deadline.

Every backend probes its apiserver the same way: verify the server against the cluster's CA
(or the system trust store), authenticate with a client certificate or a bearer token, and
poll until a condition holds or a deadline passes, saying what was seen last.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pytest_kaudit.backends.base import Credentials

T = TypeVar("T")

#: Seconds between two attempts of :func:`wait_for`.
POLL = 0.1


def tls_context(
    ca_file: Path | None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    *,
    insecure: bool = False,
) -> ssl.SSLContext:
    """TLS context verifying the server against ``ca_file``, with an optional client cert.

    ``ca_file=None`` verifies with the system trust store. Verification is turned off only
    when ``insecure`` is true (the user's kubeconfig says ``insecure-skip-tls-verify``).
    """
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_file is not None and key_file is not None:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


def ssl_context(
    ca_file: Path | None, creds: Credentials | None = None, *, insecure: bool = False
) -> ssl.SSLContext:
    """:func:`tls_context` presenting ``creds``' client certificate, if it has one."""
    if creds is None:
        return tls_context(ca_file, insecure=insecure)
    return tls_context(ca_file, creds.cert_file, creds.key_file, insecure=insecure)


def request(
    server: str,
    path: str,
    ctx: ssl.SSLContext | None,
    *,
    creds: Credentials | None = None,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """Send one request; returns (status, body) for any HTTP status, raises OSError otherwise.

    A bearer token in ``creds`` is sent as ``Authorization``; ``ctx=None`` is for plain HTTP.
    """
    req = urllib.request.Request(
        server.rstrip("/") + path, data=body, headers=dict(headers or {}), method=method
    )
    if creds is not None and creds.token:
        req.add_header("Authorization", f"Bearer {creds.token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_for(
    attempt: Callable[[], T | None],
    *,
    timeout: float,
    on_timeout: Callable[[], str],
    poll: float = POLL,
) -> T:
    """Call ``attempt`` until it returns a value other than None; give up after ``timeout``.

    ``attempt`` may raise to stop waiting early (e.g. the process it waits for exited).

    Raises:
        TimeoutError: with ``on_timeout()`` as the message (say what was seen last).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = attempt()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(on_timeout())
        time.sleep(poll)

"""Reading a kubeconfig context into a server URL, a CA file and admin credentials.

Shared by the backends that are handed a kubeconfig (``existing``, ``k3s``); the key
material is copied into the cluster's private directory with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import logging
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from pytest_kaudit.backends._clientcert import identity_of, write_private
from pytest_kaudit.backends.base import Credentials
from pytest_kaudit.errors import BackendError

log = logging.getLogger(__name__)


class KubeconfigAccess(NamedTuple):
    """What a kubeconfig context says about reaching the apiserver."""

    server: str
    ca_file: Path | None  # None: verify with the system trust store
    admin: Credentials
    #: The cluster entry says ``insecure-skip-tls-verify: true``: do not verify TLS.
    insecure: bool = False


def _entries(doc: dict[str, Any], section: str, body: str, path: Path) -> dict[str, Any]:
    """``{name: body}`` of a kubeconfig list (contexts, clusters, users), checked."""
    entries = doc.get(section) or []
    if not isinstance(entries, list):
        raise BackendError(f"kubeconfig {path}: {section} must be a list")
    out: dict[str, Any] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise BackendError(f"kubeconfig {path}: {section}[{index}] has no name")
        value = entry.get(body) or {}
        if not isinstance(value, dict):
            raise BackendError(
                f"kubeconfig {path}: {section}[{index}] ({entry['name']!r}): {body} must be "
                "a mapping"
            )
        out[str(entry["name"])] = value
    return out


def credentials_from_kubeconfig(
    path: Path, context: str | None, workdir: Path
) -> KubeconfigAccess:
    """Server, CA file and admin credentials of one kubeconfig context (copied 0600).

    Without a certificate authority the server is verified with the system trust store;
    verification is skipped only when the cluster entry says ``insecure-skip-tls-verify``.

    Raises:
        BackendError: the file, context or user is missing or malformed (the message names
            the file and the field), or uses an auth method we cannot replay (exec plugins,
            auth providers).
    """
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise BackendError(f"cannot read kubeconfig {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise BackendError(f"kubeconfig {path} is not valid YAML{where}: {problem}") from None
    if not isinstance(doc, dict):
        raise BackendError(f"kubeconfig {path} is not a kubeconfig (a YAML mapping)")
    name = context or doc.get("current-context")
    contexts = _entries(doc, "contexts", "context", path)
    if name not in contexts:
        raise BackendError(
            f"kubeconfig {path} has no context {name!r} (contexts: {sorted(contexts)})"
        )
    ctx = contexts[name]
    clusters = _entries(doc, "clusters", "cluster", path)
    users = _entries(doc, "users", "user", path)
    cluster = clusters.get(ctx.get("cluster"))
    user = users.get(ctx.get("user"), {})
    if cluster is None:
        raise BackendError(f"kubeconfig {path}: context {name!r} names unknown cluster")
    if not cluster.get("server"):
        raise BackendError(
            f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server"
        )
    base = path.parent

    def material(data_key: str, file_key: str, section: dict[str, Any], what: str) -> bytes | None:
        if section.get(data_key):
            try:
                text = "".join(str(section[data_key]).split())  # line breaks are allowed
                return base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError, TypeError) as exc:
                raise BackendError(
                    f"kubeconfig {path}: {what} {data_key} is not valid base64: {exc}"
                ) from None
        if section.get(file_key):
            file = (base / str(section[file_key])).expanduser()
            try:
                return file.read_bytes()
            except OSError as exc:
                raise BackendError(
                    f"kubeconfig {path}: {what} {file_key} {file}: {exc.strerror or exc}"
                ) from None
        return None

    cluster_what = f"cluster {ctx.get('cluster')!r}"
    user_what = f"user {ctx.get('user')!r}"
    insecure = cluster.get("insecure-skip-tls-verify") in (True, "true")
    ca = material("certificate-authority-data", "certificate-authority", cluster, cluster_what)
    ca_file = None
    if ca is not None:
        ca_file = workdir / "ca.crt"
        ca_file.write_bytes(ca)
    if insecure:
        log.warning(
            "kubeconfig %s: insecure-skip-tls-verify is set; the server's TLS certificate "
            "is not verified",
            path,
        )
    elif ca is None:
        log.info("kubeconfig %s: no certificate-authority; using the system trust store", path)
    cert = material("client-certificate-data", "client-certificate", user, user_what)
    key = material("client-key-data", "client-key", user, user_what)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token_file = (base / str(user["tokenFile"])).expanduser()
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise BackendError(
                f"kubeconfig {path}: {user_what} tokenFile {token_file}: {exc.strerror or exc}"
            ) from None
    if cert and key:
        try:
            user_name, groups = identity_of(cert)
        except ValueError as exc:
            raise BackendError(
                f"kubeconfig {path}: {user_what} client certificate is not a PEM "
                f"certificate: {exc}"
            ) from None
        creds = Credentials(
            user=user_name,
            groups=groups,
            cert_file=write_private(workdir / "admin.crt", cert),
            key_file=write_private(workdir / "admin.key", key),
            token=token,
        )
    elif token:
        creds = Credentials(user=str(ctx.get("user")), token=str(token))
    else:
        raise BackendError(
            f"kubeconfig {path}: user {ctx.get('user')!r} has neither a client certificate "
            "nor a token (exec plugins and auth providers are not supported); create a "
            "kubeconfig with a certificate or token for the admin"
        )
    return KubeconfigAccess(str(cluster["server"]), ca_file, creds, insecure)

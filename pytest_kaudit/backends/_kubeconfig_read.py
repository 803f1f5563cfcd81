"""Reading a kubeconfig context into a server URL, a CA file and admin credentials.

Shared by the backends that are handed a kubeconfig (``existing``, ``k3s``); the key
material is copied into the cluster's private directory with mode 0600.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import yaml

from pytest_kaudit.backends._clientcert import identity_of, write_private
from pytest_kaudit.backends.base import Credentials
from pytest_kaudit.errors import BackendError

log = logging.getLogger(__name__)


def credentials_from_kubeconfig(
    path: Path, context: str | None, workdir: Path
) -> tuple[str, Path | None, Credentials]:
    """Server, CA file and admin credentials of one kubeconfig context (copied 0600).

    Raises:
        BackendError: the file, context or user is missing, or uses an auth method we
            cannot replay (exec plugins, auth providers).
    """
    try:
        doc: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise BackendError(f"cannot read kubeconfig {path}: {exc}") from None
    name = context or doc.get("current-context")
    contexts = {c["name"]: c.get("context") or {} for c in doc.get("contexts") or []}
    if name not in contexts:
        raise BackendError(
            f"kubeconfig {path} has no context {name!r} (contexts: {sorted(contexts)})"
        )
    ctx = contexts[name]
    clusters = {c["name"]: c.get("cluster") or {} for c in doc.get("clusters") or []}
    users = {u["name"]: u.get("user") or {} for u in doc.get("users") or []}
    cluster = clusters.get(ctx.get("cluster"))
    user = users.get(ctx.get("user"), {})
    if cluster is None:
        raise BackendError(f"kubeconfig {path}: context {name!r} names unknown cluster")
    base = path.parent

    def material(data_key: str, file_key: str, section: dict[str, Any]) -> bytes | None:
        if section.get(data_key):
            return base64.b64decode(section[data_key])
        if section.get(file_key):
            return (base / str(section[file_key])).expanduser().read_bytes()
        return None

    ca = material("certificate-authority-data", "certificate-authority", cluster)
    ca_file = None
    if ca is not None:
        ca_file = workdir / "ca.crt"
        ca_file.write_bytes(ca)
    elif not cluster.get("insecure-skip-tls-verify"):
        ca_file = None  # system trust store is not used by our probes; skip verification
        log.warning("kubeconfig %s: no certificate-authority; TLS is not verified", path)
    cert = material("client-certificate-data", "client-certificate", user)
    key = material("client-key-data", "client-key", user)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / str(user["tokenFile"])).read_text().strip()
    if cert and key:
        user_name, groups = identity_of(cert)
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
    return str(cluster["server"]), ca_file, creds

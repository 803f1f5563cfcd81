"""Writing a kubeconfig for a cluster we own (never the user's ``~/.kube/config``)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from pytest_kaudit.backends.base import Credentials


def write_kubeconfig(path: Path, *, server: str, ca_file: Path | None, creds: Credentials,
                     name: str = "kaudit", insecure_skip_tls_verify: bool = False) -> Path:
    """Write a one-context kubeconfig for ``creds``, created 0600.

    Without ``ca_file`` clients verify against the system trust store; verification is only
    skipped when explicitly asked for.
    """
    cluster: dict[str, object] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    if insecure_skip_tls_verify:
        cluster["insecure-skip-tls-verify"] = True
    user: dict[str, object] = {}
    if creds.cert_file is not None:
        user["client-certificate"] = str(creds.cert_file)
        user["client-key"] = str(creds.key_file)
    if creds.token:
        user["token"] = creds.token
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": creds.user, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": creds.user}}],
        "current-context": name,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    return path

"""Writing a kubeconfig for a cluster we own (never the user's ``~/.kube/config``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from pytest_kaudit.backends._private import write_private
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
    return write_private(path, yaml.safe_dump(doc, sort_keys=False).encode())

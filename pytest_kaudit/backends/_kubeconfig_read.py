"""Reading a kubeconfig context into a server URL, a CA file and admin credentials.

The one kubeconfig reader of the backends: ``existing`` and ``k3s`` read the file they are
handed, ``kind`` the one ``kind get kubeconfig`` prints. Key material is copied into the
cluster's private directory with mode 0600.

A ``KUBECONFIG``-style list (``a:b``) is merged as kubectl merges it (client-go
``tools/clientcmd/loader.go``): files that do not exist are skipped, the first file that
names a context, cluster or user wins for that name, the first non-empty
``current-context`` wins, and relative paths are resolved against the file that holds the
entry. A user authenticated by an exec plugin or auth provider is resolved with the
``kubernetes`` client's own loader, once, when the cluster is attached.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from pytest_kaudit.backends._clientcert import identity_of
from pytest_kaudit.backends._private import write_private
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


class _Entry(NamedTuple):
    """One named entry of a kubeconfig list and the file it came from."""

    body: dict[str, Any]
    source: Path


def kubeconfig_paths(
    value: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[Path]:
    """The files of a kubeconfig setting: a string may list several, like ``KUBECONFIG``."""
    if isinstance(value, str):
        parts: Sequence[str | os.PathLike[str]] = [p for p in value.split(os.pathsep) if p]
    elif isinstance(value, os.PathLike):
        parts = [value]
    else:
        parts = list(value)
    return [Path(p).expanduser() for p in parts]


def _load(path: Path) -> dict[str, Any]:
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
    return doc


def _entries(doc: dict[str, Any], section: str, body: str, path: Path) -> dict[str, _Entry]:
    """``{name: entry}`` of a kubeconfig list (contexts, clusters, users), checked."""
    entries = doc.get(section) or []
    if not isinstance(entries, list):
        raise BackendError(f"kubeconfig {path}: {section} must be a list")
    out: dict[str, _Entry] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise BackendError(f"kubeconfig {path}: {section}[{index}] has no name")
        value = entry.get(body) or {}
        if not isinstance(value, dict):
            raise BackendError(
                f"kubeconfig {path}: {section}[{index}] ({entry['name']!r}): {body} must be "
                "a mapping"
            )
        out.setdefault(str(entry["name"]), _Entry(value, path))
    return out


class _Merged(NamedTuple):
    current: str | None
    contexts: dict[str, _Entry]
    clusters: dict[str, _Entry]
    users: dict[str, _Entry]


def _merge(paths: Sequence[Path]) -> _Merged:
    """The files merged as kubectl does: for every name and for current-context, first wins."""
    existing = [p for p in paths if p.exists()] if len(paths) > 1 else list(paths)
    if not existing:
        _load(paths[0])  # raises: cannot read it
    current: str | None = None
    sections: dict[str, dict[str, _Entry]] = {"contexts": {}, "clusters": {}, "users": {}}
    for path in existing:
        doc = _load(path)
        for section, merged in sections.items():
            for name, entry in _entries(doc, section, section[:-1], path).items():
                merged.setdefault(name, entry)
        if current is None and doc.get("current-context"):
            current = str(doc["current-context"])
    return _Merged(current, sections["contexts"], sections["clusters"], sections["users"])


def _material(entry: _Entry, data_key: str, file_key: str, what: str) -> bytes | None:
    """Inline base64 data, or a file relative to the kubeconfig that holds the entry."""
    section, path = entry
    if section.get(data_key):
        try:
            text = "".join(str(section[data_key]).split())  # line breaks are allowed
            return base64.b64decode(text, validate=True)
        except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
            raise BackendError(
                f"kubeconfig {path}: {what} {data_key} is not valid base64: {exc}"
            ) from None
    if section.get(file_key):
        file = (path.parent / str(section[file_key])).expanduser()
        try:
            return file.read_bytes()
        except OSError as exc:
            raise BackendError(
                f"kubeconfig {path}: {what} {file_key} {file}: {exc.strerror or exc}"
            ) from None
    return None


def credentials_from_kubeconfig(
    path: Path | Sequence[Path], context: str | None, workdir: Path
) -> KubeconfigAccess:
    """Server, CA file and admin credentials of one kubeconfig context (copied 0600).

    ``path`` may be several files, merged like ``KUBECONFIG`` (see the module docstring).
    Without a certificate authority the server is verified with the system trust store;
    verification is skipped only when the cluster entry says ``insecure-skip-tls-verify``.
    A token-only user is named after its kubeconfig entry here; who the token really
    authenticates as is asked of the server (:func:`pytest_kaudit.backends._probe.whoami`).

    Raises:
        BackendError: the file, context or user is missing or malformed (the message names
            the file and the field), or the user has no way to authenticate we can replay.
    """
    paths = [path] if isinstance(path, Path) else list(path)
    merged = _merge(paths)
    where = os.pathsep.join(str(p) for p in paths)
    name = context or merged.current
    if name not in merged.contexts:
        raise BackendError(
            f"kubeconfig {where} has no context {name!r} (contexts: {sorted(merged.contexts)})"
        )
    ctx = merged.contexts[name].body
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    cluster = merged.clusters.get(str(cluster_name))
    user = merged.users.get(str(user_name), _Entry({}, merged.contexts[name].source))
    if cluster is None:
        raise BackendError(
            f"kubeconfig {merged.contexts[name].source}: context {name!r} names unknown cluster"
        )
    if not cluster.body.get("server"):
        raise BackendError(f"kubeconfig {cluster.source}: cluster {cluster_name!r} has no server")

    cluster_what = f"cluster {cluster_name!r}"
    user_what = f"user {user_name!r}"
    insecure = cluster.body.get("insecure-skip-tls-verify") in (True, "true")
    ca = _material(cluster, "certificate-authority-data", "certificate-authority", cluster_what)
    ca_file = None
    if ca is not None:
        ca_file = workdir / "ca.crt"
        ca_file.write_bytes(ca)
    if insecure:
        log.warning(
            "kubeconfig %s: insecure-skip-tls-verify is set; the server's TLS certificate "
            "is not verified",
            cluster.source,
        )
    elif ca is None:
        log.info(
            "kubeconfig %s: no certificate-authority; using the system trust store", cluster.source
        )
    cert = _material(user, "client-certificate-data", "client-certificate", user_what)
    key = _material(user, "client-key-data", "client-key", user_what)
    token = user.body.get("token")
    if not token and user.body.get("tokenFile"):
        token_file = (user.source.parent / str(user.body["tokenFile"])).expanduser()
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise BackendError(
                f"kubeconfig {user.source}: {user_what} tokenFile {token_file}: "
                f"{exc.strerror or exc}"
            ) from None
    if not (cert and key) and not token and ("exec" in user.body or "auth-provider" in user.body):
        cert, key, token = _from_plugin(name, ctx, cluster, user, workdir)
    if cert and key:
        try:
            cn, groups = identity_of(cert)
        except ValueError as exc:
            raise BackendError(
                f"kubeconfig {user.source}: {user_what} client certificate is not a PEM "
                f"certificate: {exc}"
            ) from None
        creds = Credentials(
            user=cn,
            groups=groups,
            cert_file=write_private(workdir / "admin.crt", cert),
            key_file=write_private(workdir / "admin.key", key),
            token=token,
        )
    elif token:
        creds = Credentials(user=str(user_name), token=str(token))
    else:
        raise BackendError(
            f"kubeconfig {user.source}: user {user_name!r} has neither a client certificate "
            "nor a token (and no exec plugin or auth provider that gave one); create a "
            "kubeconfig with a certificate or token for the admin"
        )
    return KubeconfigAccess(str(cluster.body["server"]), ca_file, creds, insecure)


def _from_plugin(
    context: str, ctx: dict[str, Any], cluster: _Entry, user: _Entry, workdir: Path
) -> tuple[bytes | None, bytes | None, str | None]:
    """Run the user's exec plugin or auth provider through the ``kubernetes`` client's loader.

    Returns (certificate, key, token); all None when the plugin gave nothing (the loader
    logs why).
    """
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    doc = {
        "current-context": context,
        "contexts": [{"name": context, "context": ctx}],
        "clusters": [{"name": str(ctx.get("cluster")), "cluster": cluster.body}],
        "users": [{"name": str(ctx.get("user")), "user": user.body}],
    }
    scratch = workdir / "plugin"
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = Configuration()
    try:
        loader = KubeConfigLoader(  # type: ignore[no-untyped-call]
            doc, config_base_path=str(user.source.parent), temp_file_path=str(scratch)
        )
        loader.load_and_set(config)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, ValueError) as exc:
        raise BackendError(
            f"kubeconfig {user.source}: user {ctx.get('user')!r}: its exec plugin or auth "
            f"provider failed: {exc}"
        ) from None
    bearer = str(config.api_key.get("BearerToken") or config.api_key.get("authorization") or "")
    token = bearer.removeprefix("Bearer ").strip() or None
    cert = key = None
    if "exec" in user.body and config.cert_file and config.key_file:
        cert, key = Path(config.cert_file).read_bytes(), Path(config.key_file).read_bytes()
    return cert, key, token

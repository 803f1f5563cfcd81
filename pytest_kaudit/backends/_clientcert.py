"""Client certificates signed by a cluster's own CA (kind's or k3s's), and reading them back.

A certificate with CN = user and O = groups authenticates *as* that user, so audit events
carry the user itself in ``user`` (impersonation would record the admin there instead).
Shared by the container backends; the local backend has its own PKI.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pytest_kaudit.backends.base import Credentials

_VALIDITY = dt.timedelta(days=2)
#: A cached certificate closer than this to its expiry is issued anew (a kept cluster may
#: outlive the validity of the certificates minted for it).
_RENEW_BEFORE = dt.timedelta(hours=1)


def write_private(path: Path, data: bytes) -> Path:
    """Write a secret file created 0600 from the start."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


class CertMinter:
    """Mints client certificates with a CA given as PEM (e.g. ``/etc/kubernetes/pki/ca.*``)."""

    def __init__(self, ca_cert_pem: bytes, ca_key_pem: bytes, directory: Path) -> None:
        self._ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
        key = serialization.load_pem_private_key(ca_key_pem, password=None)
        self._ca_key = key
        self.directory = directory

    def mint(self, user: str, groups: tuple[str, ...] = ()) -> Credentials:
        """Return credentials for ``user`` in ``groups``; cached per (user, groups).

        A cached certificate is re-issued when it is unreadable or expires within an hour.
        """
        digest = hashlib.sha256("\0".join((user, *groups)).encode()).hexdigest()[:10]
        stem = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', user)[:40]}-{digest}"
        cert_file = self.directory / f"{stem}.crt"
        key_file = self.directory / f"{stem}.key"
        if not _still_valid(cert_file) or not key_file.exists():
            cert, key = self._issue(user, groups)
            write_private(key_file, key)
            write_private(cert_file, cert)
        return Credentials(user=user, groups=groups, cert_file=cert_file, key_file=key_file)

    def _issue(self, user: str, groups: tuple[str, ...]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self._ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _still_valid(cert_file: Path) -> bool:
    """The certificate exists, is readable and stays valid for at least :data:`_RENEW_BEFORE`."""
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return False
    expires = getattr(cert, "not_valid_after_utc", None)  # cryptography >= 42
    if expires is None:
        expires = cert.not_valid_after.replace(tzinfo=dt.timezone.utc)
    return bool(expires - dt.datetime.now(dt.timezone.utc) >= _RENEW_BEFORE)


def identity_of(cert_pem: bytes) -> tuple[str, tuple[str, ...]]:
    """(user, groups) a client certificate authenticates as: its CN and its O values."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (str(cns[0].value) if cns else "", tuple(str(o.value) for o in orgs))

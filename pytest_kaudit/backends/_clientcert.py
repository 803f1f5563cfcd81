"""Certificates signed by a cluster's own CA, and reading the identity back out of one.

A certificate with CN = user and O = groups authenticates *as* that user (kube-apiserver's
``--client-ca-file`` authenticator reads them so), so audit events carry the user itself in
``user``; impersonation would record the admin there instead. The one minter of the
backends: kind and k3s mint with the CA they read from the node, the local backend with the
CA it generated (and its serving certificate too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pytest_kaudit.backends._private import write_private
from pytest_kaudit.backends.base import Credentials

_VALIDITY = dt.timedelta(days=2)
#: A cached certificate closer than this to its expiry is issued anew (a kept cluster may
#: outlive the validity of the certificates minted for it).
_RENEW_BEFORE = dt.timedelta(hours=1)


def subject(common_name: str, organisations: tuple[str, ...] = ()) -> x509.Name:
    """The subject kube-apiserver reads a user from: O = each group, CN = the user."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organisations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM of a private key, unencrypted (it is written 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CertMinter:
    """Issues ECDSA P-256 certificates with one CA; client certificates cached per user.

    Args:
        ca_cert: the CA certificate.
        ca_key: its private key.
        directory: where client certificates are cached (created 0700; files 0600).
        validity: lifetime of each certificate; default two days.
    """

    def __init__(
        self,
        ca_cert: x509.Certificate,
        ca_key: CertificateIssuerPrivateKeyTypes,
        directory: Path,
        *,
        validity: dt.timedelta | None = None,
    ) -> None:
        self.ca_cert = ca_cert
        self._ca_key = ca_key
        self.directory = directory
        self._validity = validity

    @classmethod
    def from_pem(cls, ca_cert_pem: bytes, ca_key_pem: bytes, directory: Path) -> CertMinter:
        """A minter for a CA given as PEM (e.g. ``/etc/kubernetes/pki/ca.*`` of a node)."""
        key = serialization.load_pem_private_key(ca_key_pem, password=None)
        return cls(x509.load_pem_x509_certificate(ca_cert_pem), key, directory)  # type: ignore[arg-type]

    def issue(
        self,
        name: x509.Name,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> tuple[bytes, bytes]:
        """A new key and a certificate for it: (certificate PEM, key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + (self._validity or _VALIDITY))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), pem_key(key)

    def mint(self, user: str, groups: tuple[str, ...] = ()) -> Credentials:
        """Return credentials for ``user`` in ``groups``; cached per (user, groups).

        A cached certificate is re-issued when it is unreadable or expires within an hour.
        The key is renamed into place before the certificate, so a cached certificate
        always has its key.
        """
        digest = hashlib.sha256("\0".join((user, *groups)).encode()).hexdigest()[:10]
        stem = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', user)[:40]}-{digest}"
        cert_file = self.directory / f"{stem}.crt"
        key_file = self.directory / f"{stem}.key"
        if not _still_valid(cert_file) or not key_file.exists():
            cert, key = self.issue(subject(user, groups), ExtendedKeyUsageOID.CLIENT_AUTH)
            write_private(key_file, key)
            write_private(cert_file, cert)
        return Credentials(user=user, groups=groups, cert_file=cert_file, key_file=key_file)


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

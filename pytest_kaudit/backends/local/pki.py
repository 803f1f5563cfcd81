"""Certificates for a throwaway control plane: one CA, a serving cert, per-user client certs.

Client certificates carry the user as CN and the groups as O, which is how kube-apiserver's
``--client-ca-file`` authenticator reads them. Minting a certificate per user lets
``kaudit.client_for("alice")`` authenticate *as* alice (the audit event's ``user``), instead of
impersonating her from the admin (where ``user`` would stay the admin).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pytest_kaudit.backends.base import Credentials

_VALIDITY = dt.timedelta(days=7)


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file created 0600 from the start (never world-readable, not even briefly).

    Written to a temporary name and renamed, so a process sharing the directory (a warm
    control plane serves several pytest runs) never reads half a file.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organisations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organisations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


@dataclass
class ClusterPKI:
    """The key material of one cluster, kept in its private directory."""

    directory: Path
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey

    @property
    def ca_file(self) -> Path:
        """PEM of the CA that signs both the serving and the client certificates."""
        return self.directory / "ca.crt"

    @property
    def serving_cert_file(self) -> Path:
        """The apiserver's TLS certificate (``--tls-cert-file``)."""
        return self.directory / "apiserver.crt"

    @property
    def serving_key_file(self) -> Path:
        """The apiserver's TLS key (``--tls-private-key-file``)."""
        return self.directory / "apiserver.key"

    @property
    def sa_public_file(self) -> Path:
        """Service-account verification key (``--service-account-key-file``)."""
        return self.directory / "sa.pub"

    @property
    def sa_private_file(self) -> Path:
        """Service-account signing key (``--service-account-signing-key-file``)."""
        return self.directory / "sa.key"

    @classmethod
    def create(cls, directory: Path) -> ClusterPKI:
        """Generate a CA, the serving certificate and the service-account key pair."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        ca_name = _name("kaudit-ca", ("pytest-kaudit",))
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        pki = cls(directory, ca_cert, ca_key)
        pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_private(directory / "ca.key", _pem_key(ca_key))

        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        cert, key = pki._issue(_name("localhost"), ExtendedKeyUsageOID.SERVER_AUTH, sans)
        pki.serving_cert_file.write_bytes(cert)
        _write_private(pki.serving_key_file, key)

        # ES256 service-account tokens: kube-apiserver signs and verifies ECDSA keys as well
        # as RSA ones, and a P-256 key costs a fraction of an RSA-2048 one to generate
        sa_key = ec.generate_private_key(ec.SECP256R1())
        _write_private(pki.sa_private_file, _pem_key(sa_key))
        pki.sa_public_file.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return pki

    @classmethod
    def load(cls, directory: Path) -> ClusterPKI:
        """The PKI :meth:`create` wrote to ``directory`` (a warm control plane's, reattached).

        Raises:
            OSError / ValueError: missing or unreadable files.
        """
        ca_cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(),
                                                    password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / 'ca.key'} is not an ECDSA key")
        return cls(directory, ca_cert, ca_key)

    def _issue(
        self,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)

    def issue_client(self, user: str, groups: tuple[str, ...] = ()) -> Credentials:
        """Mint (or reuse) a client certificate authenticating as ``user`` in ``groups``."""
        stem = _safe_stem(user, groups)
        cert_file = self.directory / "users" / f"{stem}.crt"
        key_file = self.directory / "users" / f"{stem}.key"
        if not cert_file.exists():  # the key is renamed into place before the certificate
            cert_file.parent.mkdir(mode=0o700, exist_ok=True)
            cert, key = self._issue(_name(user, groups), ExtendedKeyUsageOID.CLIENT_AUTH)
            _write_private(key_file, key)
            _write_private(cert_file, cert)
        return Credentials(user=user, groups=groups, cert_file=cert_file, key_file=key_file)


def _safe_stem(user: str, groups: tuple[str, ...]) -> str:
    digest = hashlib.sha256("\0".join((user, *groups)).encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', user)[:40]}-{digest}"

"""Certificates for a throwaway control plane: one CA, a serving cert, per-user client certs.

Client certificates carry the user as CN and the groups as O, which is how kube-apiserver's
``--client-ca-file`` authenticator reads them. Minting a certificate per user lets
``kaudit.client_for("alice")`` authenticate *as* alice (the audit event's ``user``), instead of
impersonating her from the admin (where ``user`` would stay the admin).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from pytest_kaudit.backends._clientcert import CertMinter, pem_key, subject
from pytest_kaudit.backends._private import write_private
from pytest_kaudit.backends.base import Credentials

_VALIDITY = dt.timedelta(days=7)


@dataclass
class ClusterPKI:
    """The key material of one cluster, kept in its private directory."""

    directory: Path
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    _minter: CertMinter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._minter = CertMinter(
            self.ca_cert, self.ca_key, self.directory / "users", validity=_VALIDITY
        )

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
        ca_name = subject("kaudit-ca", ("pytest-kaudit",))
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
        write_private(directory / "ca.key", pem_key(ca_key))

        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        cert, key = pki._minter.issue(subject("localhost"), ExtendedKeyUsageOID.SERVER_AUTH, sans)
        pki.serving_cert_file.write_bytes(cert)
        write_private(pki.serving_key_file, key)

        # ES256 service-account tokens: kube-apiserver signs and verifies ECDSA keys as well
        # as RSA ones, and a P-256 key costs a fraction of an RSA-2048 one to generate
        sa_key = ec.generate_private_key(ec.SECP256R1())
        write_private(pki.sa_private_file, pem_key(sa_key))
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

    def issue_client(self, user: str, groups: tuple[str, ...] = ()) -> Credentials:
        """Mint (or reuse) a client certificate authenticating as ``user`` in ``groups``."""
        return self._minter.mint(user, groups)

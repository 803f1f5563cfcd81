"""Reading kubeconfigs (TLS verification, malformed input) and client-certificate renewal."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pytest_kaudit.backends import _clientcert
from pytest_kaudit.backends._clientcert import CertMinter
from pytest_kaudit.backends._http import ssl_context
from pytest_kaudit.backends._kubeconfig_read import credentials_from_kubeconfig
from pytest_kaudit.errors import BackendError


def kubeconfig(tmp_path: Path, cluster: dict[str, object], user: dict[str, object]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://h:6443", **cluster}}],
        "users": [{"name": "u", "user": user}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_ssl_context_verifies_with_the_system_trust_store_without_a_ca() -> None:
    ctx = ssl_context(None)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    insecure = ssl_context(None, insecure=True)
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname


def test_no_ca_means_system_trust_not_insecure(tmp_path: Path) -> None:
    access = credentials_from_kubeconfig(kubeconfig(tmp_path, {}, {"token": "t"}), None, tmp_path)
    assert access.ca_file is None and access.insecure is False
    assert access.admin.token == "t" and access.server == "https://h:6443"


def test_insecure_only_when_the_kubeconfig_says_so(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, {"insecure-skip-tls-verify": True}, {"token": "t"})
    assert credentials_from_kubeconfig(path, None, tmp_path).insecure is True


@pytest.mark.parametrize(
    ("cluster", "user", "message"),
    [
        ({"certificate-authority-data": "%%%"}, {"token": "t"},
         r"cluster 'k' certificate-authority-data is not valid base64"),
        ({"certificate-authority": "missing-ca.crt"}, {"token": "t"},
         r"cluster 'k' certificate-authority .*missing-ca\.crt: No such file"),
        ({}, {"tokenFile": "missing-token"},
         r"user 'u' tokenFile .*missing-token: No such file"),
        ({}, {"client-certificate-data": "bm8=", "client-key-data": "!!"},
         r"user 'u' client-key-data is not valid base64"),
    ],
    ids=["bad-base64-ca", "missing-ca-file", "missing-token-file", "bad-base64-key"],
)
def test_bad_material_names_file_and_field(
    tmp_path: Path, cluster: dict[str, object], user: dict[str, object], message: str
) -> None:
    path = kubeconfig(tmp_path, cluster, user)
    with pytest.raises(BackendError, match=rf"kubeconfig {path}: {message}"):
        credentials_from_kubeconfig(path, None, tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: [\n  {name: k\n", r"is not valid YAML \(line \d+\)"),
        ("current-context: c\ncontexts: [{context: {}}]\n", r": contexts\[0\] has no name"),
        (
            "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
            "clusters: [{name: k, cluster: {}}]\n",
            r": cluster 'k' has no server",
        ),
        ("- a\n", r"is not a kubeconfig"),
    ],
    ids=["yaml-syntax", "no-name", "no-server", "not-a-mapping"],
)
def test_malformed_kubeconfig_is_a_backend_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "kc"
    path.write_text(text)
    with pytest.raises(BackendError, match=rf"kubeconfig {path}\b.*{message}"):
        credentials_from_kubeconfig(path, None, tmp_path)


# --------------------------------------------------------------------------- client certs


def make_ca() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_minted_certificates_are_reused_until_an_hour_before_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    minter = CertMinter.from_pem(*make_ca(), tmp_path)
    first = minter.mint("alice", ("dev",))
    assert first.cert_file is not None
    pem = first.cert_file.read_bytes()
    assert minter.mint("alice", ("dev",)).cert_file.read_bytes() == pem  # type: ignore[union-attr]

    # a kept cluster outlives the 2-day validity: a cert about to expire is issued anew
    monkeypatch.setattr(_clientcert, "_VALIDITY", dt.timedelta(minutes=30))
    short = CertMinter.from_pem(*make_ca(), tmp_path / "short")
    expiring = short.mint("bob").cert_file
    assert expiring is not None
    old = expiring.read_bytes()
    monkeypatch.setattr(_clientcert, "_VALIDITY", dt.timedelta(days=2))
    renewed = short.mint("bob").cert_file
    assert renewed is not None and renewed.read_bytes() != old
    cert = x509.load_pem_x509_certificate(renewed.read_bytes())
    assert cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=1)
    assert oct(renewed.stat().st_mode & 0o777) == "0o600"


def test_unreadable_cached_certificate_is_issued_anew(tmp_path: Path) -> None:
    minter = CertMinter.from_pem(*make_ca(), tmp_path)
    cert_file = minter.mint("carol").cert_file
    assert cert_file is not None
    cert_file.write_bytes(b"garbage")
    assert minter.mint("carol").cert_file.read_bytes().startswith(b"-----BEGIN")  # type: ignore[union-attr]

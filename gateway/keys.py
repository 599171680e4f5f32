"""Key and certificate generation for the gateway and the demo operators (never committed: made at run time)."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def new_key(kind: str = "rsa"):
    """A fresh private key: 'rsa' (2048 bits) or 'p256' (ECDSA on P-256)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r} (rsa or p256)")


def self_signed(key, common_name: str, organization: str, *, days: int = 730,
                not_before: dt.datetime | None = None, public_key=None) -> x509.Certificate:
    """A self-signed signing certificate (digitalSignature + nonRepudiation) for `common_name`, for `key`'s
    public key or `public_key` (hsm.py re-signs such a draft in the token)."""
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public_key or key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))


def key_pem(key, passphrase: bytes | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only (0600), created that way: never world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def write_key_pair(directory: Path, stem: str, common_name: str, organization: str, kind: str = "rsa") -> Path:
    """Create `<stem>.key.pem` (0600) and `<stem>.cert.pem` in `directory`; return the certificate path."""
    key = new_key(kind)
    write_private(directory / f"{stem}.key.pem", key_pem(key))
    cert_path = directory / f"{stem}.cert.pem"
    cert_path.write_bytes(cert_pem(self_signed(key, common_name, organization)))
    return cert_path

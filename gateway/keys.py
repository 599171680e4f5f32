"""Key and certificate generation for the gateway and the demo operators (never committed: made at run time)."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.protocol import sm2


def new_key(kind: str = "rsa"):
    """A fresh private key: 'rsa' (2048 bits), 'p256' (ECDSA on P-256) or 'sm2' (GM/T 0003)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "sm2":
        return sm2.generate()
    raise ValueError(f"unknown key kind {kind!r} (rsa, p256 or sm2)")


def self_signed(key, common_name: str, organization: str, *, days: int = 730,
                not_before: dt.datetime | None = None, public_key=None) -> x509.Certificate:
    """A self-signed signing certificate (digitalSignature + nonRepudiation) for `common_name`, for `key`'s
    public key or `public_key` (hsm.py re-signs such a draft in the token)."""
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    if isinstance(key, sm2.PrivateKey):
        # cryptography builds no SM2 certificate: a throw-away P-256 key drafts the same certificate, and
        # sm2.certificate puts the SM2 key and algorithms in and signs it (as hsm.py does for a token key).
        from asn1crypto import x509 as asn1_x509
        draft = self_signed(ec.generate_private_key(ec.SECP256R1()), common_name, organization, days=days,
                            not_before=start)
        tbs = asn1_x509.Certificate.load(draft.public_bytes(serialization.Encoding.DER))["tbs_certificate"]
        return sm2.certificate(key, tbs)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public_key or key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))


def key_pem(key, passphrase: bytes | None = None) -> bytes:
    if isinstance(key, sm2.PrivateKey):
        if passphrase:
            raise ValueError("SM2 keys are written unencrypted (protect the file, or keep the key in a token)")
        return key.pem()
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

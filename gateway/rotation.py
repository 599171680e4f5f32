"""`directlink keys rotate`: a new gateway key and certificate without a flag day.

`--prepare` makes the next key and certificate beside the current ones; every replica publishes the next
certificate at GET /v1/certificates at once, so clients add it to their trust bundle while answers are
still signed with the current key. `--switch` then makes the next pair current and keeps the old
certificate published as the previous one; after a restart each replica signs with the new key, and clients
that trust the bundle keep working throughout. Without either, both steps run at once (the old behaviour:
clients that pin only the old certificate fail until they have the new one)."""
from __future__ import annotations

import os
from pathlib import Path

from gateway.keys import cert_pem, key_pem, new_key, self_signed, write_private
from gateway.settings import Settings


class RotationError(ValueError):
    """A rotation step that cannot be taken now; nothing was changed."""


def prepare_gateway_key(settings: Settings, kind: str = "rsa") -> Path:
    """Make the next key and certificate (not used for signing yet); returns the next certificate's path.
    With a PKCS#11 token the key is made in the token; only its certificate is written."""
    next_key, next_cert = settings.path(settings.gateway_next_key), settings.path(settings.gateway_next_cert)
    if next_cert.exists():
        raise RotationError(f"a next certificate is prepared already ({next_cert}): `keys rotate --switch` "
                            "makes it current")
    staged_cert = next_cert.with_suffix(".new")
    if settings.gateway_key_pkcs11 is not None:
        from gateway import hsm
        staged_cert.write_bytes(hsm.create_key(settings, kind, "DirectLink gateway", settings.bank_name))
    else:
        passphrase = settings.gateway_key_passphrase
        key = new_key(kind)
        write_private(next_key, key_pem(key, passphrase.get_secret_value().encode() if passphrase else None))
        staged_cert.write_bytes(cert_pem(self_signed(key, "DirectLink gateway", settings.bank_name)))
    # The certificate last: its presence is what says the next pair is complete.
    os.replace(staged_cert, next_cert)
    return next_cert


def switch_gateway_key(settings: Settings) -> Path:
    """Make the prepared pair current; the old certificate becomes the previous one (still published).
    Returns the new current certificate's path."""
    key_path, cert_path = settings.path(settings.gateway_key), settings.path(settings.gateway_cert)
    next_key, next_cert = settings.path(settings.gateway_next_key), settings.path(settings.gateway_next_cert)
    token = settings.gateway_key_pkcs11 is not None
    finishing = not token and not next_key.exists() and next_cert.exists() and _key_is_for(settings, next_cert)
    if not next_cert.exists() or (not token and not next_key.exists() and not finishing):
        raise RotationError("no next key is prepared: run `directlink keys rotate --prepare` first, and give "
                            "clients the published certificates before switching")
    previous = settings.path(settings.gateway_previous_cert)
    # Old certificate first, then the key, then the certificate: a crash in between leaves either the old
    # pair, or the new key with the next certificate still there for a second --switch to finish.
    if not finishing:
        previous.write_bytes(cert_path.read_bytes())
    if not token and not finishing:
        os.replace(next_key, key_path)
    os.replace(next_cert, cert_path)
    return cert_path


def _key_is_for(settings: Settings, certificate: Path) -> bool:
    """Whether the current key file is the key of `certificate` (a switch stopped half-way)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    passphrase = settings.gateway_key_passphrase
    try:
        key = serialization.load_pem_private_key(settings.path(settings.gateway_key).read_bytes(),
                                                 passphrase.get_secret_value().encode() if passphrase else None)
    except (OSError, ValueError, TypeError):
        return False
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(key.public_key().public_bytes(*spki)
                == x509.load_pem_x509_certificate(certificate.read_bytes()).public_key().public_bytes(*spki))


def rotate_gateway_key(settings: Settings, kind: str = "rsa") -> Path:
    """Both steps at once: replace the gateway key now; the old certificate moves to `gateway_previous_cert`.
    Returns the new certificate's path. Restart every replica afterwards (one at a time)."""
    prepare_gateway_key(settings, kind)
    return switch_gateway_key(settings)


def published(settings: Settings, current_pem: bytes) -> list[tuple[str, bytes]]:
    """The certificates the gateway publishes, as (role, PEM): the one it signs with now, the next one once
    prepared, the previous one after a switch. Read afresh each time, so a prepared certificate is
    published by every replica without a restart."""
    found = [("current", current_pem)]
    for role, path in (("next", settings.gateway_next_cert), ("previous", settings.gateway_previous_cert)):
        file = settings.path(path)
        if file.exists():
            found.append((role, file.read_bytes()))
    return found

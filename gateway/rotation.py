"""`directlink keys rotate`: a new gateway key and certificate, the old certificate kept for the overlap."""
from __future__ import annotations

import os
from pathlib import Path

from gateway.keys import cert_pem, key_pem, new_key, self_signed, write_private
from gateway.settings import Settings


def rotate_gateway_key(settings: Settings, kind: str = "p256") -> Path:
    """Replace the gateway key; the old certificate moves to `gateway_previous_cert`. Returns the new cert's path.

    Restart every replica afterwards (one at a time): each then signs with the new key and still publishes
    the old certificate at GET /v1/certificates, so clients can verify answers from either during the roll.

    With a PKCS#11 token the new key is made in the token under the same label; the certificate file says
    which of the two a replica signs with, and the old key stays in the token until the operator deletes it."""
    key_path, cert_path = settings.path(settings.gateway_key), settings.path(settings.gateway_cert)
    previous = settings.path(settings.gateway_previous_cert)
    staged_cert = cert_path.with_suffix(".new")
    if settings.gateway_key_pkcs11 is not None:
        from gateway import hsm
        staged_cert.write_bytes(hsm.create_key(settings, kind, "DirectLink gateway", settings.bank_name))
        previous.write_bytes(cert_path.read_bytes())
        os.replace(staged_cert, cert_path)
        return cert_path
    passphrase = settings.gateway_key_passphrase
    key = new_key(kind)
    staged_key = key_path.with_suffix(".new")
    write_private(staged_key, key_pem(key, passphrase.get_secret_value().encode() if passphrase else None))
    staged_cert.write_bytes(cert_pem(self_signed(key, "DirectLink gateway", settings.bank_name)))
    # Old certificate first, then the new pair: a crash in between leaves a usable (old or new) key.
    previous.write_bytes(cert_path.read_bytes())
    os.replace(staged_key, key_path)
    os.replace(staged_cert, cert_path)
    return cert_path

"""Catalogue section A, Signature (8 A): keys. SIG-09 key substitution (a cloned certificate), SIG-10 KeyValue
against the pinned certificate, no KeyInfo with an attacker key, SIG-16 a RetrievalMethod that is never
followed. Trust comes from the certificates pinned for the claimed operator, never from what KeyInfo holds.
"""
from __future__ import annotations

import time

import pytest

from gateway import keys
from security.attack_kit import (
    EVIL,
    attacker_key,
    clone_certificate,
    ds,
    dump,
    envelope,
    forge,
    outcomes,
    pay,
    post,
    refused,
    sig,
    tree,
)

# The attack kit forges RSA signatures with the demo operators' keys (the downgrades to RSA-SHA1, RSA-PSS and
# SHA-512 exist only for RSA): this module's gateway homes have RSA keys, not init's P-256 default.
pytestmark = pytest.mark.key_type("rsa")

# ---- keys (SIG-09/10/16) ---------------------------------------------------------------------------------

def test_cloned_certificate_in_keyinfo(maker, http, home, gateway):
    """Certificate cloning: the maker's subject, issuer, serial, validity and extensions with the attacker's
    key: only the pinned certificate (by fingerprint) is trusted, never what KeyInfo looks like."""
    key = attacker_key()
    clone = clone_certificate(maker.signer.certificate, key)
    assert clone.subject == maker.signer.certificate.subject
    assert clone.serial_number == maker.signer.certificate.serial_number
    body = forge(envelope(pay(EVIL)), key, keys.cert_pem(clone))
    refused(gateway, http, home, body, 401, "CERT_UNKNOWN")


def test_keyvalue_only_keyinfo_with_an_attacker_key(maker, http, home, gateway):
    """KeyInfo carries only an RSAKeyValue, the attacker's: no registered certificate verifies it."""
    body = forge(envelope(pay(EVIL)), attacker_key(), None, key_value=True)
    assert b"X509Certificate" not in body and b"RSAKeyValue" in body
    refused(gateway, http, home, body, 401, "SIG_INVALID")


def test_maker_certificate_in_keyinfo_but_attacker_key(maker, http, home, gateway):
    """KeyInfo names the real, registered maker certificate (and an attacker KeyValue): the attacker signs."""
    body = forge(envelope(pay(EVIL)), attacker_key(), maker.signer.cert_pem, key_value=True)
    refused(gateway, http, home, body, 401, "SIG_INVALID")


def test_no_keyinfo_with_an_attacker_key(maker, http, home, gateway):
    """No KeyInfo at all, so the gateway tries the maker's pinned certificates: none verifies."""
    body = forge(envelope(pay(EVIL)), attacker_key(), None)
    refused(gateway, http, home, body, 401, "SIG_INVALID")


def test_retrieval_method_in_keyinfo_is_never_followed(maker, http, home, gateway, listener):
    """KeyInfo holding only a RetrievalMethod that points at the listener (SIG-16): the key is never fetched;
    trust comes from the pinned certificate, so the maker's otherwise good request is executed as signed."""
    url, hits = listener
    root = envelope(pay(ref="RM-1"))
    body = forge(root, maker.signer.key.private, None)
    root = tree(body)
    sig(root).append(ds("KeyInfo", ds("RetrievalMethod", URI=f"{url}/key",
                                      Type="http://www.w3.org/2000/09/xmldsig#X509Data")))
    answer, _ = post(http, home, dump(root))
    assert answer.code in ("OK", "SIG_INVALID"), answer.detail
    if answer.code == "OK":
        assert outcomes(answer) == [("SETTLED", None)]
    time.sleep(0.05)
    assert hits == []

"""Catalogue section A, Signature (security.md 1.2 and 8 A): algorithms and transforms.
SIG-11 algorithm downgrade, SIG-12 HMAC algorithm confusion, SIG-16 transform abuse. First the control:
forge() makes real signatures, so every forge() attack in this folder is stopped by the rule it breaks.
"""
from __future__ import annotations

import pytest
from conftest import OPERATING, SUPPLIER

from gateway.protocol import signing
from security.attack_kit import (
    EVIL,
    HMAC_SHA256,
    RSA_PSS,
    RSA_SHA1,
    RSA_SHA512,
    SHA1_DIGEST,
    SHA512_DIGEST,
    Ref,
    balances,
    envelope,
    forge,
    outcomes,
    pay,
    post,
    refused,
)

# The attack kit forges RSA signatures with the demo operators' keys (the downgrades to RSA-SHA1, RSA-PSS and
# SHA-512 exist only for RSA): this module's gateway homes have RSA keys, not init's P-256 default.
pytestmark = pytest.mark.key_type("rsa")

C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
EXC_C14N_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XPATH_FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
BASE64_TRANSFORM = "http://www.w3.org/2000/09/xmldsig#base64"


# ---- the control: the hand-made signature is accepted when it follows the profile ------------------------

def test_forged_signature_in_the_profile_is_accepted(maker, http, home, gateway):
    """Proves forge() makes real signatures: with the profile's shape and the maker's key it is simply a good
    request. Every forge() attack below is therefore stopped by the rule it breaks, not by a bad signature."""
    body = forge(envelope(pay(ref="CTL-1")), maker.signer.key.private, maker.signer.cert_pem)
    before = balances(gateway.engine)
    answer, _ = post(http, home, body)
    assert outcomes(answer) == [("SETTLED", None)]
    after = balances(gateway.engine)
    assert after[OPERATING] - before[OPERATING] == -10000 and after[SUPPLIER] - before[SUPPLIER] == 10000


# ---- algorithms and transforms (SIG-11/12/16) ------------------------------------------------------------

ALGORITHMS = {   # case: forge() keyword arguments; every one is a real signature by the maker's key
    "XSLT transform": dict(refs=(Ref(transforms=(signing.ENVELOPED, XSLT, signing.EXC_C14N)),)),
    "XPath transform instead of enveloped": dict(refs=(Ref(transforms=(XPATH, signing.EXC_C14N)),)),
    "XPath Filter 2.0 transform": dict(refs=(Ref(transforms=(signing.ENVELOPED, XPATH_FILTER2,
                                                              signing.EXC_C14N)),)),
    "base64 transform": dict(refs=(Ref(transforms=(signing.ENVELOPED, BASE64_TRANSFORM, signing.EXC_C14N)),)),
    "transforms reversed": dict(refs=(Ref(transforms=(signing.EXC_C14N, signing.ENVELOPED)),)),
    "enveloped only": dict(refs=(Ref(transforms=(signing.ENVELOPED,)),)),
    "no Transforms": dict(refs=(Ref(transforms=()),)),
    "50 transforms": dict(refs=(Ref(transforms=(signing.ENVELOPED,) + (signing.EXC_C14N,) * 50),)),
    "SHA-1 digest": dict(refs=(Ref(digest=SHA1_DIGEST),)),
    "SHA-512 digest": dict(refs=(Ref(digest=SHA512_DIGEST),)),
    "RSA-SHA1": dict(method=RSA_SHA1),
    "RSA-SHA512": dict(method=RSA_SHA512),
    "RSA-PSS": dict(method=RSA_PSS),
    "inclusive C14N 1.0": dict(c14n=C14N_10, refs=(Ref(transforms=(signing.ENVELOPED, C14N_10)),)),
    "inclusive C14N 1.0 for SignedInfo only": dict(c14n=C14N_10),
    "exclusive C14N with comments": dict(c14n=EXC_C14N_COMMENTS,
                                         refs=(Ref(transforms=(signing.ENVELOPED, EXC_C14N_COMMENTS)),)),
}


@pytest.mark.parametrize("case", ALGORITHMS)
def test_algorithm_forbidden(maker, http, home, gateway, case):
    """Anything but enveloped + exc-C14N, SHA-256 and RSA/ECDSA-SHA256 is SIG_ALGORITHM_FORBIDDEN, checked
    before any cryptography (so an XSLT or XPath transform is never run)."""
    body = forge(envelope(pay()), maker.signer.key.private, maker.signer.cert_pem, **ALGORITHMS[case])
    refused(gateway, http, home, body, 401, "SIG_ALGORITHM_FORBIDDEN")


def test_hmac_keyed_with_the_public_certificate(maker, http, home, gateway):
    """Algorithm confusion (GHSA-6vx8-pcwv-xhf4): HMAC-SHA256 keyed with the maker's public certificate PEM,
    which anyone has, with that certificate in KeyInfo."""
    body = forge(envelope(pay(EVIL)), None, maker.signer.cert_pem, method=HMAC_SHA256,
                 hmac_key=maker.signer.cert_pem)
    refused(gateway, http, home, body, 401, "SIG_ALGORITHM_FORBIDDEN")
